"""Strict-mode JSON schemas covering the whole supported subset, and ones it must refuse."""

from __future__ import annotations

from typing import Any

S = dict[str, Any]


def obj(props: dict[str, Any], **extra: Any) -> S:
    """A strict object: every property required, no others."""
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
        **extra,
    }


STR: S = {"type": "string"}
INT: S = {"type": "integer"}
NUM: S = {"type": "number"}
BOOL: S = {"type": "boolean"}

_TREE = obj(
    {"value": INT, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
)
_LINKED = obj({"value": STR, "next": {"anyOf": [{"$ref": "#/$defs/item"}, {"type": "null"}]}})
_EXPR = {
    "anyOf": [
        obj({"num": NUM}),
        obj(
            {
                "op": {"enum": ["+", "-", "*"]},
                "args": {"type": "array", "items": {"$ref": "#/$defs/expr"}, "maxItems": 2},
            }
        ),
    ]
}

SCHEMAS: dict[str, S] = {
    "string": obj({"a": STR}),
    "number": obj({"a": NUM}),
    "integer": obj({"a": INT}),
    "boolean": obj({"a": BOOL}),
    "null": obj({"a": {"type": "null"}}),
    "all_scalars": obj({"s": STR, "n": NUM, "i": INT, "b": BOOL, "z": {"type": "null"}}),
    "empty_object": obj({}),
    "enum_strings": obj({"color": {"type": "string", "enum": ["red", "green", "blue"]}}),
    "enum_mixed": obj({"v": {"enum": ["a", 1, True, None]}}),
    "enum_integers": obj({"level": {"type": "integer", "enum": [1, 2, 3]}}),
    "const_string": obj({"kind": {"type": "string", "const": "fixed"}}),
    "const_number": obj({"version": {"const": 2}}),
    "nullable_union": obj({"a": {"type": ["string", "null"]}}),
    "anyof_scalars": obj({"a": {"anyOf": [STR, INT]}}),
    "anyof_objects": obj({"shape": {"anyOf": [obj({"radius": NUM}), obj({"w": NUM, "h": NUM})]}}),
    "optional_via_null": obj({"name": STR, "nickname": {"anyOf": [STR, {"type": "null"}]}}),
    "nested_objects": obj({"user": obj({"name": STR, "address": obj({"city": STR, "zip": STR})})}),
    "deep_nesting": obj({"a": obj({"b": obj({"c": obj({"d": obj({"e": INT})})})})}),
    "array_strings": obj({"items": {"type": "array", "items": STR}}),
    "array_objects": obj({"people": {"type": "array", "items": obj({"name": STR, "age": INT})}}),
    "array_min_items": obj({"a": {"type": "array", "items": INT, "minItems": 2}}),
    "array_max_items": obj({"a": {"type": "array", "items": STR, "maxItems": 1}}),
    "array_min_max": obj({"a": {"type": "array", "items": BOOL, "minItems": 1, "maxItems": 3}}),
    "array_of_arrays": obj({"m": {"type": "array", "items": {"type": "array", "items": INT}}}),
    "array_of_enums": obj({"tags": {"type": "array", "items": {"enum": ["x", "y"]}}}),
    "pattern_code": obj({"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}}),
    "pattern_word": obj({"w": {"type": "string", "pattern": "^[a-z]+$"}}),
    "pattern_phone": obj({"phone": {"type": "string", "pattern": r"^\+?[0-9]{7,12}$"}}),
    "format_date_time": obj({"at": {"type": "string", "format": "date-time"}}),
    "format_date": obj({"on": {"type": "string", "format": "date"}}),
    "format_time": obj({"t": {"type": "string", "format": "time"}}),
    "format_duration": obj({"d": {"type": "string", "format": "duration"}}),
    "format_email": obj({"email": {"type": "string", "format": "email"}}),
    "format_hostname": obj({"host": {"type": "string", "format": "hostname"}}),
    "format_ipv4": obj({"ip": {"type": "string", "format": "ipv4"}}),
    "format_ipv6": obj({"ip": {"type": "string", "format": "ipv6"}}),
    "format_uuid": obj({"id": {"type": "string", "format": "uuid"}}),
    "number_min_max": obj({"x": {"type": "number", "minimum": 1.5, "maximum": 9.5}}),
    "integer_min_max": obj({"x": {"type": "integer", "minimum": 5, "maximum": 50}}),
    "number_exclusive": obj(
        {"x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}
    ),
    "integer_exclusive": obj(
        {"x": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 20}}
    ),
    "integer_multiple_of": obj({"x": {"type": "integer", "multipleOf": 5}}),
    "number_multiple_of": obj({"x": {"type": "number", "multipleOf": 0.25}}),
    "negative_range": obj({"t": {"type": "integer", "minimum": -40, "maximum": -1}}),
    "defs_ref": obj(
        {"home": {"$ref": "#/$defs/addr"}, "work": {"$ref": "#/$defs/addr"}},
        **{"$defs": {"addr": obj({"street": STR, "city": STR})}},
    ),
    "definitions_ref": obj(
        {"p": {"$ref": "#/definitions/point"}}, definitions={"point": obj({"x": NUM, "y": NUM})}
    ),
    "recursive_tree": obj({"root": {"$ref": "#/$defs/node"}}, **{"$defs": {"node": _TREE}}),
    "recursive_linked_list": obj(
        {"head": {"$ref": "#/$defs/item"}}, **{"$defs": {"item": _LINKED}}
    ),
    "recursive_root": obj(
        {"name": STR, "children": {"type": "array", "items": {"$ref": "#"}, "maxItems": 2}}
    ),
    "recursive_expression": obj({"expr": {"$ref": "#/$defs/expr"}}, **{"$defs": {"expr": _EXPR}}),
    "recursive_mutual": obj(
        {"a": {"$ref": "#/$defs/A"}},
        **{
            "$defs": {
                "A": obj({"b": {"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}]}}),
                "B": obj({"a": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}]}}),
            }
        },
    ),
    "described": obj(
        {"a": {"type": "string", "description": "anything"}},
        title="T",
        description="A described schema",
    ),
    "calendar_event": obj(
        {
            "name": STR,
            "date": {"type": "string", "format": "date"},
            "participants": {"type": "array", "items": STR},
        }
    ),
    "math_reasoning": obj(
        {
            "steps": {"type": "array", "items": obj({"explanation": STR, "output": STR})},
            "final_answer": STR,
        }
    ),
    "ui_component": obj(
        {"ui": {"$ref": "#/$defs/ui"}},
        **{
            "$defs": {
                "ui": obj(
                    {
                        "type": {"type": "string", "enum": ["div", "button", "header", "field"]},
                        "label": STR,
                        "children": {"type": "array", "items": {"$ref": "#/$defs/ui"}},
                        "attributes": {"type": "array", "items": obj({"name": STR, "value": STR})},
                    }
                )
            }
        },
    ),
    "moderation": obj(
        {
            "is_violating": BOOL,
            "category": {
                "anyOf": [
                    {"type": "string", "enum": ["violence", "sexual", "self_harm"]},
                    {"type": "null"},
                ]
            },
            "explanation_if_violating": {"type": ["string", "null"]},
        }
    ),
    "many_properties": obj({f"field_{i}": [STR, INT, BOOL, NUM][i % 4] for i in range(12)}),
    "unicode_keys": obj({"naïve": STR, "größe": INT}),
}

UNSUPPORTED: dict[str, tuple[S, str]] = {
    "min_length": (obj({"a": {"type": "string", "minLength": 2}}), "'minLength' is not permitted"),
    "one_of": (obj({"a": {"oneOf": [STR, INT]}}), "'oneOf' is not permitted"),
    "all_of": (obj({"a": {"allOf": [STR]}}), "'allOf' is not permitted"),
    "not": (obj({"a": {"type": "string", "not": {"const": "x"}}}), "'not' is not permitted"),
    "missing_additional": (
        {"type": "object", "properties": {"a": STR}, "required": ["a"]},
        "'additionalProperties' is required",
    ),
    "additional_true": (
        {
            "type": "object",
            "properties": {"a": STR},
            "required": ["a"],
            "additionalProperties": True,
        },
        "'additionalProperties' is required",
    ),
    "not_all_required": (
        {
            "type": "object",
            "properties": {"a": STR, "b": STR},
            "required": ["a"],
            "additionalProperties": False,
        },
        "Missing 'b'",
    ),
    "unknown_format": (obj({"a": {"type": "string", "format": "uri"}}), "format 'uri'"),
    "root_array": ({"type": "array", "items": STR}, 'type: "object"'),
    "root_anyof": ({"anyOf": [obj({"a": STR}), obj({"b": STR})]}, 'type: "object"'),
    "pattern_properties": (obj({}, patternProperties={"^x": STR}), "'patternProperties'"),
    "unique_items": (
        obj({"a": {"type": "array", "items": STR, "uniqueItems": True}}),
        "'uniqueItems' is not permitted",
    ),
    "bad_ref": (obj({"a": {"$ref": "#/$defs/missing"}}), "does not resolve"),
    "array_without_items": (obj({"a": {"type": "array"}}), "'items' is required"),
    "nested_missing_additional": (
        obj({"a": {"type": "object", "properties": {"b": STR}, "required": ["b"]}}),
        "context=('properties', 'a')",
    ),
    "lookahead_pattern": (obj({"a": {"type": "string", "pattern": "^(?=a)a+$"}}), "lookaround"),
}
