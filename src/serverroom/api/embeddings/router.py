"""Route for Embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from serverroom.api.embeddings.schemas import EmbeddingRequest
from serverroom.api.embeddings.service import create_embeddings
from serverroom.api.routing import CheckedRoute
from serverroom.context import AppContext, get_context, get_principal
from serverroom.principal import Principal

router = APIRouter(tags=["embeddings"], route_class=CheckedRoute)


@router.post("/embeddings", response_model=None)
async def create_embedding(
    body: EmbeddingRequest,
    ctx: AppContext = Depends(get_context),
    principal: Principal = Depends(get_principal),
) -> JSONResponse:
    result, ticket = await create_embeddings(ctx, body, principal)
    return JSONResponse(result, headers=ticket.headers)
