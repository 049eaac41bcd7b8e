"""The platform's admin API: projects, project API keys, usage and costs
(``/v1/organization``)."""

from __future__ import annotations

from serverroom.api.organization.router import router

__all__ = ["router"]
