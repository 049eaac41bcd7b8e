"""The HTTP request a piece of work belongs to, as logs and metrics label it.

``RequestContextMiddleware`` opens a ``RequestInfo`` for each request and binds it to
``current_request`` for the request's task; code deeper down (the metering seam, which learns
the model and the project) fills it in, and the middleware reads it back when the reply is
done. A context variable is the per-request scope here: it holds no application state.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestInfo:
    request_id: str
    method: str
    path: str
    route: str = ""  # the route's template, once routing matched one
    model: str = ""  # the model name the client asked for, once known
    project: str = ""  # the calling project, once known
    started: float = field(default_factory=time.perf_counter)


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)


def note_call(model: str, project: str) -> None:
    """The request being served calls ``model`` for ``project``."""
    info = current_request.get()
    if info is not None:
        info.model, info.project = model, project
