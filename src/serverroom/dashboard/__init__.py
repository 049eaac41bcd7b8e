"""The web dashboard at ``/dashboard``: usage charts, projects and keys, stored responses and
conversations, batches and files, and a streaming playground (docs/dashboard.md).

Server-rendered Jinja templates with htmx (vendored in ``static/vendor`` by
``scripts/vendor_dashboard.sh``: no CDN at run time); an admin key signs in
(``dashboard.session``).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from serverroom.dashboard import pages, playground, projects
from serverroom.dashboard.rendering import HERE

PREFIX = "/dashboard"


def install(app: FastAPI) -> None:
    """Mount the dashboard's pages and static files on ``app``."""
    for router in (pages.router, projects.router, playground.router):
        app.include_router(router, prefix=PREFIX)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")
