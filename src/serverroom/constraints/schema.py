"""JSON schemas for structured outputs: strict-subset validation and grammar compilation.

Strict mode accepts exactly the platform's subset (see docs/structured-outputs.md); anything
else is a 400 worded like the platform's::

    Invalid schema for response_format 'X': In context=('properties', 'a'), 'foo' is not
    permitted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llguidance import LLMatcher

from serverroom.errors import InvalidRequestError

STRING_FORMATS = frozenset(
    {"date-time", "date", "time", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_ANNOTATIONS = {"title", "description", "default", "examples", "$comment", "deprecated"}
_COMMON = {"type", "enum", "const", "anyOf", "$ref", "$defs", "definitions"} | _ANNOTATIONS
_BY_TYPE: dict[str, set[str]] = {
    "string": {"pattern", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "boolean": set(),
    "null": set(),
    "object": {"properties", "required", "additionalProperties"},
    "array": {"items", "minItems", "maxItems"},
}
_TYPES = frozenset(_BY_TYPE)
_ALL_KEYS = _COMMON.union(*_BY_TYPE.values())
MAX_DEPTH = 10

# Compact, single-line JSON: tiny models must not wander in whitespace.
JSON_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}


class SchemaError(Exception):
    """A schema outside the strict subset; ``context`` is the path to the offending node."""

    def __init__(self, context: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.context = context
        self.message = message

    def render(self, kind: str, name: str) -> str:
        return f"Invalid schema for {kind} '{name}': In context={self.context!r}, {self.message}"


def _types(node: dict[str, Any]) -> list[str]:
    kind = node.get("type")
    if kind is None:
        return []
    return [kind] if isinstance(kind, str) else list(kind)


class _StrictChecker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def check(self, node: Any, ctx: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, dict):
            raise SchemaError(ctx, "schema must be a JSON object.")
        if depth > MAX_DEPTH:
            raise SchemaError(ctx, f"the schema is nested more than {MAX_DEPTH} levels deep.")
        for key in ("$defs", "definitions"):
            defs = node.get(key)
            if defs is not None:
                if not isinstance(defs, dict):
                    raise SchemaError(ctx, f"'{key}' must be an object.")
                for name, sub in defs.items():
                    self.check(sub, (*ctx, key, name), 0)
        if "$ref" in node:
            self._check_ref(node, ctx)
            return
        if "anyOf" in node:
            self._check_any_of(node, ctx, depth)
            return
        types = _types(node)
        for key in node:
            if key not in _ALL_KEYS:
                raise SchemaError(ctx, f"'{key}' is not permitted.")
        if not types and "enum" not in node and "const" not in node:
            raise SchemaError(ctx, "schema must have a 'type' key.")
        allowed = set(_COMMON)
        for kind in types:
            if kind not in _TYPES:
                raise SchemaError(ctx, f"'{kind}' is not a valid type.")
            allowed |= _BY_TYPE[kind]
        for key in node:
            if key not in allowed:
                raise SchemaError(ctx, f"'{key}' is not permitted.")
        if "format" in node and node["format"] not in STRING_FORMATS:
            raise SchemaError(ctx, f"format '{node['format']}' is not permitted.")
        if "pattern" in node:
            self._check_pattern(node["pattern"], ctx)
        if "object" in types:
            self._check_object(node, ctx, depth)
        if "array" in types:
            if "items" not in node:
                raise SchemaError(ctx, "'items' is required to be supplied for arrays.")
            self.check(node["items"], (*ctx, "items"), depth + 1)

    def _check_ref(self, node: dict[str, Any], ctx: tuple[str, ...]) -> None:
        extra = set(node) - {"$ref", "$defs", "definitions"} - _ANNOTATIONS
        if extra:
            raise SchemaError(ctx, f"'{sorted(extra)[0]}' is not permitted alongside '$ref'.")
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaError(ctx, f"'$ref' {ref!r} must point inside the schema ('#/...').")
        target: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise SchemaError(ctx, f"'$ref' {ref!r} does not resolve.")
            target = target[part]

    def _check_any_of(self, node: dict[str, Any], ctx: tuple[str, ...], depth: int) -> None:
        if not ctx:
            raise SchemaError(ctx, "the root schema must not be 'anyOf'; it must be an object.")
        extra = set(node) - {"anyOf", "$defs", "definitions"} - _ANNOTATIONS
        if extra:
            raise SchemaError(ctx, f"'{sorted(extra)[0]}' is not permitted alongside 'anyOf'.")
        options = node["anyOf"]
        if not isinstance(options, list) or not options:
            raise SchemaError(ctx, "'anyOf' must be a non-empty array.")
        for index, option in enumerate(options):
            self.check(option, (*ctx, "anyOf", str(index)), depth + 1)

    def _check_object(self, node: dict[str, Any], ctx: tuple[str, ...], depth: int) -> None:
        if node.get("additionalProperties") is not False:
            raise SchemaError(
                ctx, "'additionalProperties' is required to be supplied and to be false."
            )
        props = node.get("properties", {})
        if not isinstance(props, dict):
            raise SchemaError(ctx, "'properties' must be an object.")
        required = node.get("required", [])
        missing = [key for key in props if key not in required]
        if not isinstance(required, list) or missing:
            raise SchemaError(
                ctx,
                "'required' is required to be supplied and to be an array including every key"
                f" in properties. Missing '{missing[0] if missing else ''}'.",
            )
        unknown = [key for key in required if key not in props]
        if unknown:
            raise SchemaError(ctx, f"'required' names '{unknown[0]}', which is not a property.")
        for key, sub in props.items():
            self.check(sub, (*ctx, "properties", key), depth + 1)

    @staticmethod
    def _check_pattern(pattern: Any, ctx: tuple[str, ...]) -> None:
        if not isinstance(pattern, str):
            raise SchemaError(ctx, "'pattern' must be a string.")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SchemaError(ctx, f"'pattern' is not a valid regular expression: {exc}.") from exc
        if re.search(r"\(\?[=!<]|\\[1-9]", pattern):
            raise SchemaError(ctx, "'pattern' uses lookaround or backreferences, not permitted.")


def check_strict(schema: Any, *, kind: str, name: str, param: str) -> None:
    """Raise a 400 unless ``schema`` lies inside the strict subset."""
    try:
        if not isinstance(schema, dict):
            raise SchemaError((), "schema must be a JSON object.")
        if "object" not in _types(schema) or "anyOf" in schema:
            raise SchemaError(
                (), f"schema must be a JSON Schema of 'type: \"object\"', got {_describe(schema)}."
            )
        _StrictChecker(schema).check(schema, (), 0)
    except SchemaError as exc:
        raise InvalidRequestError(
            exc.render(kind, name), param=param, code="invalid_json_schema"
        ) from exc


def strict_by_default(tool: dict[str, Any]) -> bool:
    """Whether a Responses function tool is strict: as given, or, when it says nothing, strict
    if its schema lies inside the strict subset (the platform's default is strict)."""
    given = tool.get("strict")
    if given is not None:
        return given is True
    try:
        check_strict(tool.get("parameters"), kind="function", name="", param="")
    except InvalidRequestError:
        return False
    return True


def _describe(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return f"'type: {json.dumps(schema['type'])}'"
    return "a schema without 'type'"


def json_grammar(schema: dict[str, Any] | None, *, strict: bool) -> str:
    """The llguidance grammar for a schema (``None``: any JSON object)."""
    target: dict[str, Any] = {"type": "object"} if schema is None else dict(schema)
    target.pop("x-guidance", None)
    options = dict(JSON_OPTIONS)
    if not strict:
        options["lenient"] = True  # ignore keywords llguidance cannot enforce
    try:
        return str(LLMatcher.grammar_from_json_schema(target, overrides=options))  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidRequestError(
            f"Invalid JSON schema: {exc}", code="invalid_json_schema"
        ) from exc


def tighten(schema: Any) -> Any:
    """A copy of a non-strict schema where objects with ``properties`` but no
    ``additionalProperties`` allow no others: every output still validates against the
    original, and small models cannot invent keys."""
    if isinstance(schema, list):
        return [tighten(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: tighten(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out
