"""Route for Embeddings."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serverroom.api.embeddings.schemas import EmbeddingRequest
from serverroom.api.embeddings.service import create_embeddings
from serverroom.api.routing import CheckedRoute
from serverroom.context import CallDep

router = APIRouter(tags=["embeddings"], route_class=CheckedRoute)


@router.post("/embeddings", response_model=None)
async def create_embedding(body: EmbeddingRequest, call: CallDep) -> JSONResponse:
    result, ticket = await create_embeddings(call, body)
    return JSONResponse(result, headers=ticket.headers)
