"""Files: upload, list, retrieve, delete and download files (``/v1/files``)."""
