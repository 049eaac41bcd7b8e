"""What ``serverroom serve`` says once the default model is ready: where to point the SDK.

One block: the base URL, whether API keys are enforced, the models served, the engine's
settings and the two environment variables a user exports for the official SDK.
"""

from __future__ import annotations

import asyncio
import logging

from serverroom.context import AppContext

logger = logging.getLogger("serverroom")


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/v1"


async def _auth_line(ctx: AppContext) -> tuple[str, str]:
    """The auth line and the key to export."""
    accounts = ctx.accounts
    if accounts is None or not await accounts.auth.enforced():
        mode = ctx.settings.auth.mode
        return f"open (auth.mode={mode}): any API key is accepted", "sk-anything"
    return "API keys enforced: use a project key (docs/accounts.md)", "sk-<your project key>"


def _models_line(ctx: AppContext) -> str:
    by_target: dict[str, list[str]] = {}
    for entry in ctx.catalog.entries():
        by_target.setdefault(entry.target, []).append(entry.id)
    return "; ".join(f"{', '.join(names)} -> {target}" for target, names in by_target.items())


def _engine_line(ctx: AppContext) -> str:
    model = ctx.settings.default_model
    engine = ctx.engines.engine(model)
    shape = f"{ctx.settings.engine.slots} slots x {engine.context_length if engine else '?'} tokens"
    how = engine.describe() if engine is not None else ""
    return f"{model}, {shape}" + (f", {how}" if how else "")


async def render(ctx: AppContext) -> str:
    url = base_url(ctx.settings.host, ctx.settings.port)
    auth, key = await _auth_line(ctx)
    return "\n".join(
        [
            f"serverroom is ready at {url}",
            f"  auth:    {auth}",
            f"  models:  {_models_line(ctx)}",
            f"  engine:  {_engine_line(ctx)}",
            "  point the openai SDK here with:",
            f"    export OPENAI_BASE_URL={url}",
            f"    export OPENAI_API_KEY={key}",
        ]
    )


async def announce_when_ready(ctx: AppContext, loading: asyncio.Task[None]) -> None:
    """Log the banner once the default model has loaded (or say why it did not)."""
    await asyncio.shield(loading)
    model = ctx.settings.default_model
    failure = ctx.engines.failure(model)
    if failure is not None:
        logger.error(
            "serverroom is NOT ready: the default model %s cannot be served (%s);"
            " /health answers 503. `serverroom doctor` reports the machine and settings.",
            model,
            failure,
        )
        return
    logger.info("%s", await render(ctx))
