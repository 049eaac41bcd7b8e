"""Route for Embeddings."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serverroom.api.embeddings.schemas import EmbeddingRequest
from serverroom.api.embeddings.service import create_embeddings
from serverroom.api.routing import CheckedRoute
from serverroom.context import Caller, Ctx

router = APIRouter(tags=["embeddings"], route_class=CheckedRoute)


@router.post("/embeddings", response_model=None)
async def create_embedding(body: EmbeddingRequest, ctx: Ctx, principal: Caller) -> JSONResponse:
    result, ticket = await create_embeddings(ctx, body, principal)
    return JSONResponse(result, headers=ticket.headers)
