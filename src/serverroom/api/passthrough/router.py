"""Routes passed on to upstream models: images and audio (see ``service``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from serverroom.api.passthrough.service import PATHS, pass_on
from serverroom.api.routing import CheckedRoute
from serverroom.context import CallDep, request_id_of

router = APIRouter(tags=["passthrough"], route_class=CheckedRoute)

PASSED_HEADERS = ("content-type", "content-disposition")


def _route(path: str) -> None:
    async def passed(request: Request, call: CallDep) -> Response:
        answer = await pass_on(call, path, request, request_id_of(request))
        headers = {k: v for k, v in answer.headers.items() if k.lower() in PASSED_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    router.add_api_route(path, passed, methods=["POST"], response_model=None, name=path)


for _path in PATHS:
    _route(_path)
