"""Chat templates: the Jinja template stored in a model's GGUF metadata, rendered like
Hugging Face ``apply_chat_template`` does (sandboxed, trim/lstrip blocks)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from serverroom.engine.base import ChatMessage
from serverroom.errors import InvalidRequestError

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _raise(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


class ChatTemplate:
    """A compiled chat template with the model's special-token strings."""

    def __init__(self, source: str | None, *, bos_token: str, eos_token: str) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = _strftime_now
        self.source = source or CHATML
        self._template = env.from_string(self.source)
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        payload = [{"role": m.role, "content": m.content, **m.extra} for m in messages]
        try:
            return self._template.render(
                messages=payload,
                tools=tools,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError as exc:
            raise InvalidRequestError(
                f"The messages could not be formatted for this model: {exc}", param="messages"
            ) from exc
