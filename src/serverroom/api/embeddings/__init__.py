"""Embeddings: ``POST /v1/embeddings`` on local embedding models."""
