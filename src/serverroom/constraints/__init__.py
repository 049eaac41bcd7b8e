"""Constrained decoding: structured outputs and function calling through llguidance grammars.

* :mod:`.tokenizers` — llguidance tokenizers for engine vocabularies (cached per model);
* :mod:`.grammar` — the ``TokenConstraint`` over an ``LLMatcher``;
* :mod:`.schema` — the strict JSON-schema subset (400s) and JSON grammars;
* :mod:`.tools` / :mod:`.toolcalls` — the tool-call format, its grammar and its parser;
* :mod:`.output` — from a request's format + tools to a per-choice constraint.
"""

from serverroom.constraints.output import (
    FormatSpec,
    OutputPlan,
    constrains,
    parse_format,
    plan_output,
)
from serverroom.constraints.toolcalls import (
    ArgumentsPiece,
    CallDone,
    CallStarted,
    ParsedCall,
    TextPiece,
    ToolCallParser,
    ToolEvent,
    parse_tool_output,
)
from serverroom.constraints.tools import (
    ToolSetup,
    ToolSpec,
    check_tools,
    custom_spec,
    render_tool_messages,
)

__all__ = [
    "ArgumentsPiece",
    "CallDone",
    "CallStarted",
    "FormatSpec",
    "OutputPlan",
    "ParsedCall",
    "TextPiece",
    "ToolCallParser",
    "ToolEvent",
    "ToolSetup",
    "ToolSpec",
    "check_tools",
    "constrains",
    "custom_spec",
    "parse_format",
    "parse_tool_output",
    "plan_output",
    "render_tool_messages",
]
