"""Routes for the model catalog (ids may contain ``/``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from openai.types import Model

from serverroom.api.routing import CheckedRoute
from serverroom.catalog import ModelEntry
from serverroom.context import Ctx
from serverroom.errors import PermissionDeniedError

router = APIRouter(tags=["models"], route_class=CheckedRoute)


def model_object(entry: ModelEntry) -> dict[str, Any]:
    return Model(
        id=entry.id, object="model", created=entry.created, owned_by=entry.owned_by
    ).model_dump(mode="json")


@router.get("/models")
async def list_models(ctx: Ctx) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(e) for e in ctx.catalog.entries()]}


@router.delete("/models/{model_id:path}")
async def delete_model(model_id: str, ctx: Ctx) -> dict[str, Any]:
    """Only fine-tuned models can be deleted on the platform; the catalog holds none."""
    entry = ctx.catalog.resolve(model_id)  # 404 model_not_found for an unknown id
    raise PermissionDeniedError(
        f"You have insufficient permissions to delete model {entry.id}: only fine-tuned"
        " models can be deleted, and this server's models come from its catalog.",
        code="model_not_deletable",
    )


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, ctx: Ctx) -> dict[str, Any]:
    return model_object(ctx.catalog.resolve(model_id))
