"""How dashboard routes answer: HTML from Jinja templates, and errors as HTML too.

``PageRoute`` is the route class of every dashboard router. Without a session a page redirects
to the sign-in page (an htmx request gets ``HX-Redirect``); a change without the page token is a
403; an ``APIError`` or a form that does not validate becomes an error fragment with the error's
status, which htmx shows in place of the form's result (``base.html`` lets it swap errors).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from serverroom.api.errors import validation_error
from serverroom.api.routing import CheckedRoute
from serverroom.dashboard.session import LOGIN_PATH, ForbiddenChange, LoginRequired, Session
from serverroom.errors import APIError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: int | None) -> str:
    return "—" if not value else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(value))


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


templates.env.filters["when"] = _when
templates.env.filters["usd"] = _usd
templates.env.filters["num"] = lambda value: f"{int(value or 0):,}"
templates.env.filters["pct"] = lambda value: f"{100 * float(value or 0):.1f}%"


def page(
    request: Request, name: str, session: Session | None, status: int = 200, **values: Any
) -> HTMLResponse:
    """The template ``name`` rendered for ``session`` (its token goes into every change)."""
    values.update(session=session, token=session.token if session else "")
    return templates.TemplateResponse(request, name, values, status_code=status)


# An error swaps into the page's ``#flash`` box, wherever the form meant its result to go.
ERROR_SWAP = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML", "HX-Reselect": ".error"}


def error_fragment(request: Request, error: APIError) -> HTMLResponse:
    body = error.body()["error"]
    return templates.TemplateResponse(
        request, "_error.html", {"error": body}, status_code=error.status_code, headers=ERROR_SWAP
    )


class PageRoute(CheckedRoute):
    """A dashboard route: sign-in redirects and HTML errors (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": LOGIN_PATH})
                return RedirectResponse(LOGIN_PATH, status_code=303)
            except ForbiddenChange:
                return HTMLResponse("This change did not come from a dashboard page.", 403)
            except RequestValidationError as exc:
                return error_fragment(request, validation_error(exc))
            except ValidationError as exc:  # a form's value the admin API's models refuse
                return error_fragment(
                    request, validation_error(RequestValidationError(exc.errors()))
                )
            except APIError as exc:
                return error_fragment(request, exc)

        return route
