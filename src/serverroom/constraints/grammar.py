"""A ``TokenConstraint`` backed by an llguidance ``LLMatcher``.

The engine asks :meth:`GrammarConstraint.allowed_mask` before sampling each token, masks the
rest to -inf, then calls :meth:`accept`. :meth:`is_finished` turns true once the grammar can
take nothing but EOS (e.g. the closing brace of a JSON object), so generation ends there.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt
from llguidance import LLMatcher, LLTokenizer

from serverroom.errors import InvalidRequestError

_VALID: OrderedDict[tuple[int, str], str] = OrderedDict()  # (tokenizer id, grammar) → error
_VALID_LOCK = threading.Lock()
_VALID_MAX = 256


def check_grammar(tokenizer: LLTokenizer, grammar: str, *, param: str, what: str) -> None:
    """Raise a 400 if llguidance cannot compile ``grammar`` (cached per grammar)."""
    key = (id(tokenizer), grammar)
    with _VALID_LOCK:
        error = _VALID.get(key)
    if error is None:
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
        error = messages[0] if is_error and messages else ""
        with _VALID_LOCK:
            _VALID[key] = error
            while len(_VALID) > _VALID_MAX:
                _VALID.popitem(last=False)
    if error:
        raise InvalidRequestError(
            f"Invalid {what}: the schema cannot be enforced ({error}).",
            param=param,
            code="invalid_value",
        )


GO_ON_MARGIN = 2.0  # nats: about 7 times as likely
# After tool results a call must be this much likelier than an answer (about 150 times), per
# round of calls since the user last spoke. SmolLM2-135M, given the result of the call it had
# just made, preferred repeating that same call by 2.2 to 4.6 nats
# (tests/live/test_agents_live.py's weather question), and so looped; on Chat Completions it
# sometimes preferred it by more, round after round, until the agent's max_turns (1 streamed
# run in 8): a margin growing with the rounds ends such a loop within a round or two.
ANSWER_MARGIN = 5.0


class GrammarConstraint:
    """Constrains one sequence to a grammar; one instance per generated choice."""

    def __init__(
        self,
        tokenizer: LLTokenizer,
        grammar: str,
        vocab_size: int,
        *,
        decide_ends: bool = False,
        lean_from: str | None = None,
        lean_margin: float = ANSWER_MARGIN,
    ) -> None:
        """``decide_ends``: where the output may end but could go on (after a tool call), the
        step is decided, not sampled (``decide``). ``lean_from``: the call marker, when the
        prompt ends with tool results; until the reply shows whether it is a call, a call
        may start only if the model prefers it by ``lean_margin`` nats over answering,
        since a small model otherwise repeats the call it just had answered."""
        self.tokenizer = tokenizer
        self.decide_ends = decide_ends
        self.lean_from = lean_from
        self.lean_margin = lean_margin
        self._deciding = False
        self.matcher = LLMatcher(tokenizer, grammar, log_level=0)
        if self.matcher.is_error():
            raise InvalidRequestError(
                f"The output grammar is invalid: {self.matcher.get_error()}",
                code="invalid_value",
            )
        self.vocab_size = vocab_size
        words = (tokenizer.vocab_size + 31) // 32
        self._bits = np.zeros(words, dtype=np.int32)
        self._mask = np.zeros(max(vocab_size, words * 32), dtype=np.bool_)
        self.tokens: list[int] = []

    def allowed_mask(self) -> npt.NDArray[np.bool_] | None:
        if self.matcher.is_error():
            return self._eos_only()
        bits = self._bits
        self.matcher.unsafe_compute_mask_ptr(bits.ctypes.data, bits.nbytes)
        unpacked = np.unpackbits(bits.view(np.uint8), bitorder="little")
        self._mask[: unpacked.size] = unpacked.view(np.bool_)
        mask = self._mask[: self.vocab_size]
        self._deciding = self.decide_ends and self.matcher.is_accepting() and int(mask.sum()) > 1
        return mask

    def decide(self, logits: npt.NDArray[np.float32]) -> int | None:
        """Where the output may end but could go on, it ends unless the model clearly prefers
        going on: its most likely other token must beat its most likely end by
        ``GO_ON_MARGIN`` (about 7 times as likely). A small model asked one thing
        otherwise chains calls it invents; one asked several things still makes them."""
        if self.lean_from is not None and not self.tokenizer.decode_bytes(self.tokens).strip():
            self._lean_to_answer(logits, self.lean_from)
            return None
        if not self._deciding:
            return None
        ends = [t for t in self.tokenizer.eos_tokens if t < logits.size and logits[t] > -np.inf]
        if not ends:
            return None
        end = max(ends, key=lambda t: float(logits[t]))
        masked = logits.copy()
        masked[ends] = -np.inf
        other = int(np.argmax(masked))
        return other if masked[other] > logits[end] + GO_ON_MARGIN else end

    def _lean_to_answer(self, logits: npt.NDArray[np.float32], marker: str) -> None:
        """Unless a call is clearly likelier, the tokens that would start one are taken out
        of ``logits`` (in place: the engine samples the answer from this row as usual)."""
        opening = _marker_tokens(self.tokenizer, marker, logits.size)
        calls = np.where(opening, logits, -np.inf)
        others = np.where(opening, -np.inf, logits)
        call, other = float(calls.max()), float(others.max())
        if other > -np.inf and call <= other + self.lean_margin:
            logits[opening] = -np.inf

    def _eos_only(self) -> npt.NDArray[np.bool_]:
        mask = np.zeros(self.vocab_size, dtype=np.bool_)
        for token in self.tokenizer.eos_tokens:
            if token < self.vocab_size:
                mask[token] = True
        return mask

    def accept(self, token: int) -> None:
        self.tokens.append(token)
        self.matcher.consume_token(token)

    def is_finished(self) -> bool:
        return self.matcher.is_stopped()

    def is_accepting(self) -> bool:
        return self.matcher.is_accepting()

    def forced(self) -> list[int]:
        if self.matcher.is_error() or self.matcher.is_accepting():
            return []  # where the output may end, ending is for the model (or ``decide``)
        return list(self.matcher.compute_ff_tokens())


_MARKERS: dict[tuple[int, str, int], npt.NDArray[np.bool_]] = {}


def _marker_tokens(tokenizer: LLTokenizer, marker: str, size: int) -> npt.NDArray[np.bool_]:
    """Which tokens begin ``marker`` after optional whitespace (cached per tokenizer)."""
    key = (id(tokenizer), marker, size)
    found = _MARKERS.get(key)
    if found is None:
        found = np.zeros(size, dtype=np.bool_)
        for token in range(min(size, tokenizer.vocab_size)):
            text = tokenizer.decode_bytes([token]).lstrip().decode("utf-8", errors="ignore")
            found[token] = bool(text) and (marker.startswith(text) or text.startswith(marker))
        _MARKERS[key] = found
    return found


class PrefixSwitchConstraint:
    """A grammar constraint that lets go once the output turns out to be free text.

    Used for ``tool_choice: "auto"`` without a response format: the grammar allows either a
    tool call (starting with ``marker``) or text that does not start with it. Once the first
    non-space character is known not to start the marker, masking stops, so free text costs
    nothing.
    """

    def __init__(self, inner: GrammarConstraint, marker: str) -> None:
        self.inner = inner
        self.marker = marker
        self.free = False
        self._text = b""

    def allowed_mask(self) -> npt.NDArray[np.bool_] | None:
        return None if self.free else self.inner.allowed_mask()

    def accept(self, token: int) -> None:
        if self.free:
            return
        self.inner.accept(token)
        self._text += self.inner.tokenizer.decode_bytes([token])
        head = self._text.lstrip().decode("utf-8", errors="ignore")
        if head and not head.startswith(self.marker[: len(head)]):
            self.free = True

    def is_finished(self) -> bool:
        return False if self.free else self.inner.is_finished()

    def decide(self, logits: npt.NDArray[np.float32]) -> int | None:
        return None if self.free else self.inner.decide(logits)

    def forced(self) -> list[int]:
        # Only once the output is a call: before that, what it is must be left to the model.
        if self.free or not self._text.lstrip().startswith(self.marker.encode()):
            return []
        return self.inner.forced()
