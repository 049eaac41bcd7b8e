"""The platform's parameter rules for reasoning models (``reasoning = true`` in the catalog).

On the platform an o-series model takes only the default ``temperature`` and ``top_p`` (1),
refuses Chat's ``max_tokens`` in favour of ``max_completion_tokens``, and only reasoning models
take a reasoning effort. Both APIs check their requests here, before any work, and take the
thinking phase an effort buys from :func:`thinking_for`.
"""

from __future__ import annotations

from serverroom.catalog import ModelEntry
from serverroom.errors import InvalidRequestError
from serverroom.generation import Thinking

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # the SDK's values


def check_parameters(
    entry: ModelEntry,
    *,
    temperature: float | None,
    top_p: float | None,
    effort: str | None,
    effort_param: str,
    max_tokens: int | None = None,
) -> None:
    """400 for what ``entry`` does not take, in the platform's words (``max_tokens``: Chat's
    legacy limit, when it was sent)."""
    if effort is not None and effort not in EFFORTS:
        raise InvalidRequestError(
            f"Invalid value: '{effort}'. Supported values are: "
            + ", ".join(f"'{e}'" for e in EFFORTS)
            + ".",
            param=effort_param,
            code="invalid_value",
        )
    if not entry.reasoning:
        if effort is not None:
            raise _unsupported(effort_param)
        return
    if max_tokens is not None:
        raise InvalidRequestError(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use"
            " 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    for name, value in (("temperature", temperature), ("top_p", top_p)):
        if value is not None and value != 1:
            raise InvalidRequestError(
                f"Unsupported value: '{name}' does not support {value} with this model. Only"
                " the default (1) value is supported.",
                param=name,
                code="unsupported_value",
            )


def _unsupported(param: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"Unsupported parameter: '{param}' is not supported with this model.",
        param=param,
        code="unsupported_parameter",
    )


SUMMARIES = ("auto", "concise", "detailed")


def check_summary(entry: ModelEntry, reasoning: dict[str, object] | None) -> None:
    """Responses' ``reasoning.summary``: one of the platform's values, on a reasoning model."""
    for key in ("summary", "generate_summary"):
        value = (reasoning or {}).get(key)
        if value is None:
            continue
        param = f"reasoning.{key}"
        if value not in SUMMARIES:
            raise InvalidRequestError(
                f"Invalid value: '{value}'. Supported values are: 'auto', 'concise' and"
                " 'detailed'.",
                param=param,
                code="invalid_value",
            )
        if not entry.reasoning:
            raise _unsupported(param)


def thinking_for(entry: ModelEntry, effort: str | None) -> Thinking | None:
    """The thinking phase of a request to ``entry`` at ``effort`` (None: not a reasoning model).
    An upstream model thinks on its own; its think tags are read from its content."""
    if not entry.reasoning:
        return None
    return Thinking.for_effort(effort, scaffold=entry.thinking == "scaffold", tags=entry.think_tags)
