"""The Containers API: the code interpreter's containers and the files in them
(``/v1/containers``)."""

from __future__ import annotations

from serverroom.api.containers.router import router

__all__ = ["router"]
