"""The Batch API: ``/v1/batches`` and the background worker that runs batches."""
