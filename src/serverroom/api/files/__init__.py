"""Files: upload, list, retrieve, delete and download files (``/v1/files``)."""

from __future__ import annotations

from serverroom.api.files.router import router

__all__ = ["router"]
