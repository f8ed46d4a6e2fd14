"""Check an input against the catalogue before anything is sent, and report every problem at once.

Types, enums, ranges, required fields and list sizes come from the model's JSON Schema (``jsonschema``);
media values, reference totals, prompt references and local video limits come from rules in this package.
"""

from __future__ import annotations

import ast
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Problem, ValidationError, counted
from . import lookup
from ._media_rules import check_media
from ._rules import prompt_references, reference_total, required_not_empty, unknown_fields
from ._schema import describe_schema, format_path, json_type, range_text
from ._sendable import check_sendable, sendable_problems
from ._spec import ModelSpec

__all__ = ["Validated", "validate", "replace_at", "check_sendable", "jsonschema_module"]

_IMPORT_LOCK = threading.Lock()


@dataclass
class Validated:
    """A checked input. ``uploads`` lists ``(json_path, value)`` for local paths, PIL images and bytes that
    must be uploaded and put in place (see :func:`replace_at`) before submitting ``arguments``."""

    spec: ModelSpec
    arguments: dict
    warnings: list[str] = field(default_factory=list)
    uploads: list[tuple[str, Any]] = field(default_factory=list)


def validate(
    model: str | ModelSpec,
    arguments: Mapping[str, Any] | None,
    *,
    local_files: bool = True,
    probe_videos: bool = True,
    fetch: Callable[[str], dict] | None = None,
    cache_dir: Path | str | None = None,
) -> Validated:
    """Validate ``arguments`` for ``model`` (a spec, an endpoint id or an alias).

    ``None`` values count as "not set" and are dropped. Raises :class:`ValidationError` listing every
    problem, or :class:`UnknownModelError` (which says how to submit without checks).
    """
    spec = lookup(model, fetch=fetch, cache_dir=cache_dir)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        problem = Problem("(input)", f"must be a mapping of field names to values, got {json_type(arguments)}")
        raise ValidationError(spec.id, [problem])
    shape = sendable_problems(arguments, leaves_ok=(object,))  # keys and depth: files and images come later
    if shape:
        raise ValidationError(spec.id, shape)
    args = {str(k): _plain(v) for k, v in arguments.items() if v is not None}
    view = {k: _plain(v) for k, v in args.items()}
    media = check_media(spec, view, local_files=local_files, probe_videos=probe_videos)
    problems: list[Problem] = []
    uploads = tuple({type(value) for _, value in media.uploads})  # turned into URLs before sending
    for found in (required_not_empty(spec, args), media.problems, sendable_problems(view, leaves_ok=uploads),
                  [p for err in _schema_errors(spec, view) for p in _translate(err)]):
        _add_new(problems, found)  # one pass's word per field: the first pass to flag it is the clearest
    problems += reference_total(spec, args)
    ref_problems, ref_warnings = prompt_references(spec, args, skip={p.field.split("[")[0] for p in problems})
    problems += ref_problems
    warnings = unknown_fields(spec.input_schema, args) + media.warnings + ref_warnings
    if problems:
        raise ValidationError(spec.id, problems, warnings)
    return Validated(spec, args, warnings, media.uploads)


def _add_new(problems: list[Problem], found: list[Problem]) -> None:
    flagged = {p.field for p in problems}
    problems.extend(p for p in dict.fromkeys(found) if p.field not in flagged)


def _plain(value: Any) -> Any:
    """Copy containers (tuples become lists, as JSON has them); leave leaves such as images alone."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def replace_at(arguments: dict, json_path: str, value: Any) -> dict:
    """Return a copy of ``arguments`` with the item at ``json_path`` (``elements[0].frontal_image_url``)
    replaced, e.g. by the CDN URL of an upload."""
    out = _plain(arguments)
    parts: list[Any] = [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", json_path)]
    node = out
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return out


# jsonschema imports every optional format checker it finds installed; one of them, rfc3987-syntax (pulled in
# by jupyter-events), compiles 39 Lark grammars on import: 1.5-2 s, 95 % of a session's first %fal. Validation
# here never asserts formats, so that checker is left out when jsonschema is first imported here.
_SKIPPED_FORMAT_MODULES = ("rfc3987_syntax",)


def _validator_class() -> Any:
    if "jsonschema" in sys.modules:
        from jsonschema import Draft202012Validator

        return Draft202012Validator
    skipped = [name for name in _SKIPPED_FORMAT_MODULES if name not in sys.modules]
    with _IMPORT_LOCK:
        for name in skipped:
            sys.modules[name] = None  # type: ignore[assignment]  # `import name` fails at once: checker skipped
        try:
            from jsonschema import Draft202012Validator
        finally:
            for name in skipped:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]  # a later import of it by anyone works as usual
    return Draft202012Validator


def jsonschema_module() -> Any:
    """``jsonschema``, imported (if nobody did yet) without the format checker that costs seconds (above)."""
    _validator_class()
    import jsonschema

    return jsonschema


def _schema_errors(spec: ModelSpec, view: dict) -> list:
    validator = _validator_class()(spec.input_schema)
    return sorted(validator.iter_errors(view), key=lambda e: [str(p) for p in e.absolute_path])


def _translate(err: Any) -> list[Problem]:
    """Turn one jsonschema error into Problems a user can act on (a union may give several)."""
    if err.validator in ("anyOf", "oneOf"):
        return _translate_union(err)
    return [_translate_one(err)]


def _translate_one(err: Any) -> Problem:
    path = list(err.absolute_path)
    where = format_path(path)
    kind, schema, value = err.validator, err.schema, err.instance
    if kind == "required":
        name = _quoted_name(err.message)
        sub = schema.get("properties", {}).get(name, {})
        return Problem(format_path(path + [name]), "is required but missing", describe_schema(sub) if sub else None)
    if kind == "type":
        expected = describe_schema({"type": schema["type"]})
        allowed = describe_schema(schema)
        return Problem(where, f"must be {expected}, got {_shown(value)}", allowed if allowed != expected else None)
    if kind == "enum":
        return Problem(where, f"{value!r} is not one of the allowed values", describe_schema(schema))
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return Problem(where, f"{value!r} is out of range", range_text(schema))
    if kind in ("minItems", "maxItems"):
        return Problem(where, f"has {counted(len(value), 'item')}", _bounds(schema, "minItems", "maxItems", "items"))
    if kind in ("minLength", "maxLength"):
        return Problem(where, f"is {len(value)} characters long",
                       _bounds(schema, "minLength", "maxLength", "characters"))
    if kind == "additionalProperties":
        return Problem(where, err.message, ", ".join(schema.get("properties", {})) or None)
    return Problem(where, err.message, None)


def _translate_union(err: Any) -> list[Problem]:
    """For a union (``image_size``: preset or {width, height}) report what is wrong inside the branch whose
    type matched; when none matched, list what the union accepts."""
    branches: dict[Any, list] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    for errors in branches.values():
        if not any(e.validator in ("type", "enum") and not list(e.relative_path) for e in errors):
            return [p for e in errors for p in _translate(e)]
    where = format_path(list(err.absolute_path))
    return [Problem(where, f"{_shown(err.instance)} is not accepted", describe_schema(err.schema))]


def _bounds(schema: dict, low_key: str, high_key: str, unit: str) -> str:
    low, high = schema.get(low_key), schema.get(high_key)
    if low is not None and high is not None:
        return f"{low}–{high} {unit}"
    return f"at least {low} {unit}" if low is not None else f"at most {high} {unit}"


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{json_type(value)} {text}"


def _quoted_name(message: str) -> str:
    """jsonschema says ``'prompt' is a required property``; take the name back out."""
    head = message.rsplit(" is a required property", 1)[0]
    try:
        return str(ast.literal_eval(head))
    except (ValueError, SyntaxError):
        return head.strip("'\"")
