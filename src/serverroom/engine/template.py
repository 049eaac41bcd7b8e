"""Chat templates: the Jinja template stored in a model's GGUF metadata, rendered like
Hugging Face ``apply_chat_template`` does (sandboxed, trim/lstrip blocks).

``segments`` renders a conversation as pieces that say whether they came from the template
or from a message, so that only the template's own markers are tokenized as control tokens:
a message saying ``<|im_end|>`` stays seven plain-text tokens and cannot fake a turn. A
message's images are pieces of their own, where they stand in its text. Templates written for
typed content (a list of ``{"type": "text"}`` parts, as vision models' templates iterate) are
recognised when they drop plain string content, and get their content as one text part.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from serverroom.engine.base import ChatMessage
from serverroom.errors import InvalidRequestError

# While the template renders, each message's content is replaced by a placeholder: its index
# between two private-use characters. The content itself never passes through the template.
_OPEN, _CLOSE = "\ue000", "\ue001"
_SPAN = re.compile(rf"{_OPEN}(\d+){_CLOSE}")


class Segment(NamedTuple):
    """A piece of a rendered prompt: the template's (``control``: may hold control tokens), a
    message's text (tokenized as plain text) or one of its images (``image``, no text)."""

    text: str
    control: bool
    image: bytes | None = None


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
        self.typed_roles = self._typed_roles()

    @property
    def typed_content(self) -> bool:
        return bool(self.typed_roles)

    def _typed_roles(self) -> frozenset[str]:
        """The roles whose plain string content the template loses but whose typed parts it
        renders: their content goes in as one text part."""
        probe = f"{_OPEN}0{_CLOSE}"
        typed = set()
        for role in ("system", "user", "assistant", "tool"):
            as_text = self._probe(role, probe)
            as_parts = self._probe(role, [{"type": "text", "text": probe}])
            if as_text is not None and probe not in as_text and probe in (as_parts or ""):
                typed.add(role)
        return frozenset(typed)

    def _probe(self, role: str, content: object) -> str | None:
        try:
            return self._template.render(
                messages=[{"role": role, "content": content}],
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except Exception:  # a template that cannot render this probe: no verdict
            return None

    def render(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        payload = [
            {"role": m.role, "content": self._content(m.role, m.content), **m.extra}
            for m in messages
        ]
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

    def _content(self, role: str, text: str) -> str | list[dict[str, str]]:
        return [{"type": "text", "text": text}] if role in self.typed_roles else text

    def segments(
        self, messages: Sequence[ChatMessage], *, tools: list[dict[str, Any]] | None = None
    ) -> list[Segment]:
        """The rendered prompt, split into the template's text and the messages' text.

        Each message's content renders as an indexed placeholder; its text goes back in as a
        plain segment. A template that changes the content (``| trim``) gets the placeholder
        unchanged, so such a template sees the text untrimmed; one that drops a message's
        content never renders its placeholder."""
        marked = [replace(m, content=f"{_OPEN}{i}{_CLOSE}") for i, m in enumerate(messages)]
        rendered = self.render(marked, tools=tools)
        out: list[Segment] = []
        at = 0
        for span in _SPAN.finditer(rendered):
            if span.start() > at:
                out.append(Segment(rendered[at : span.start()], True))
            index = int(span.group(1))
            if index < len(messages):
                out += _message_segments(messages[index])
            at = span.end()
        if at < len(rendered):
            out.append(Segment(rendered[at:], True))
        return out


def _message_segments(message: ChatMessage) -> list[Segment]:
    """A message's text as a plain segment, split where its images go."""
    out: list[Segment] = []
    at = 0
    for image in sorted(message.images, key=lambda i: i.at):
        cut = min(max(image.at, at), len(message.content))
        if cut > at:
            out.append(Segment(message.content[at:cut], False))
        out.append(Segment("", False, image.read()))
        at = cut
    if at < len(message.content):
        out.append(Segment(message.content[at:], False))
    return out


def join_safe(segments: Sequence[Segment], controls: Collection[str]) -> list[Segment]:
    """Merge each message's text into the template text around it unless a control token's
    text (``controls``) appears in it or across its edges; such text stays a plain segment.

    Merged, an ordinary prompt tokenizes exactly as the whole rendered text would (tokens can
    span the edges: ``"\\n"`` + ``"  hi"``), and only text that could forge a marker is cut out."""
    longest = max(map(len, controls), default=1)
    out: list[Segment] = []
    for i, segment in enumerate(segments):
        if segment.image is not None or (
            not segment.control and _forges(segments, i, controls, longest)
        ):
            out.append(segment)
        elif out and out[-1].control:
            out[-1] = Segment(out[-1].text + segment.text, True)
        else:
            out.append(Segment(segment.text, True))
    return out


def _forges(segments: Sequence[Segment], i: int, controls: Collection[str], longest: int) -> bool:
    before = segments[i - 1].text[-(longest - 1) :] if i > 0 and longest > 1 else ""
    after = segments[i + 1].text[: longest - 1] if i + 1 < len(segments) else ""
    window = before + segments[i].text + after
    start, end = len(before), len(before) + len(segments[i].text)
    for control in controls:
        at = window.find(control)
        while at != -1:
            if at < end and at + len(control) > start:
                return True
            at = window.find(control, at + 1)
    return False
