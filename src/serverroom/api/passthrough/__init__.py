"""Resources an upstream model serves that serverroom passes on: images and audio."""

from __future__ import annotations

from serverroom.api.passthrough.router import router

__all__ = ["router"]
