"""Small JSON Schema utilities shared by the bundled catalogue, the OpenAPI reader and validation.

Kept free of jsonschema so that loading the catalogue stays cheap; only validation needs the library.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import UnknownModelError

__all__ = ["inline_refs", "describe_schema", "json_type", "format_path", "range_text"]

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def inline_refs(node: Any, root: dict, *, _seen: tuple[str, ...] = ()) -> Any:
    """Return a copy of ``node`` with every local ``$ref`` (``#/a/b``) replaced by its target.

    Sibling keys of a ``$ref`` (``description``, ``default``) override the target's, as OpenAPI 3.1 allows.
    A cycle is refused: model inputs are trees, and an endless form helps nobody.
    """
    if isinstance(node, list):
        return [inline_refs(item, root, _seen=_seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node and isinstance(node["$ref"], str):
        ref = node["$ref"]
        if ref in _seen:
            raise UnknownModelError(f"the schema refers to itself through {ref}; cannot use it")
        target = inline_refs(_follow(ref, root), root, _seen=_seen + (ref,))
        extra = {k: inline_refs(v, root, _seen=_seen) for k, v in node.items() if k != "$ref"}
        return {**target, **extra} if isinstance(target, dict) else target
    return {k: inline_refs(v, root, _seen=_seen) for k, v in node.items()}


def _follow(ref: str, root: dict) -> Any:
    if not ref.startswith("#/"):
        raise UnknownModelError(f"the schema uses a non-local reference {ref!r}; only '#/...' is supported")
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise UnknownModelError(f"the schema reference {ref!r} points nowhere")
        node = node[part]
    return copy.deepcopy(node)


def json_type(value: Any) -> str:
    """The JSON type name of a Python value, as a user would say it (bool is not an integer)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def range_text(schema: dict) -> str | None:
    """``"1–4"``, ``"≥ 0.01"``, ``"> 0"``… from minimum/maximum (both JSON Schema spellings), or None."""
    low = schema.get("minimum")
    high = schema.get("maximum")
    xlow = schema.get("exclusiveMinimum")
    xhigh = schema.get("exclusiveMaximum")
    if low is not None and high is not None:
        return f"{_num(low)}–{_num(high)}"
    parts = []
    if low is not None:
        parts.append(f"≥ {_num(low)}")
    if xlow is not None and not isinstance(xlow, bool):
        parts.append(f"> {_num(xlow)}")
    if high is not None:
        parts.append(f"≤ {_num(high)}")
    if xhigh is not None and not isinstance(xhigh, bool):
        parts.append(f"< {_num(xhigh)}")
    return ", ".join(parts) or None


def describe_schema(schema: dict) -> str:
    """A short human description of what a schema accepts, for the ``allowed`` part of a problem."""
    if "enum" in schema:
        return ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            subs = [s for s in schema[key] if s.get("type") != "null"]
            return " or ".join(describe_schema(s) for s in subs)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_TYPE_WORDS.get(k, k) for k in kind if k != "null")
    if kind == "object" and schema.get("properties"):
        return "{" + ", ".join(schema["properties"]) + "}"
    text = _TYPE_WORDS.get(kind, kind or "anything")
    limits = range_text(schema)
    return f"{text} {limits}" if limits else text


def format_path(parts: Any) -> str:
    """``['elements', 0, 'reference_image_urls']`` → ``elements[0].reference_image_urls``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(input)"
