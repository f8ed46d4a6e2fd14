"""The model-call grammar: ``MODEL prompt words… [--field value …]``, typed from the model's JSON Schema.

Values are coerced by the field's schema (enums, integers, numbers, booleans, arrays, JSON objects, unions);
``--aspect-ratio`` and ``--aspect_ratio`` name the same field. Pure functions over a spec with ``id`` and
``input_schema``, so they are tested without the catalogue. Errors are :class:`UsageError`.

A model whose schema is not at hand under ``--no-validate`` is :class:`Unchecked`: every ``--field value`` is
taken, its value read as a JSON literal where it is one (``2``, ``0.5``, ``true``, ``[1, 2]``), else as text.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..catalog.seeds import expand, group_axes, takes_seed
from ..errors import UsageError
from .cell_body import interpolate

__all__ = ["ModelCall", "Unchecked", "build_model_call", "coerce_value", "model_usage", "names_option",
           "schema_branches", "MAX_GROUP", "magic_line"]

# Requests one %fal line may make (--n × the sweep's product). Checked from the counts, before a single request
# dict is built: `--n 100000000` is a typo, and each request is billed. A batch of a thousand is a real use (a
# sweep, a dataset); past the group limit (FAL_NOTEBOOK_GROUP_LIMIT) it needs --yes anyway.
MAX_GROUP = 1000


@dataclass(frozen=True, kw_only=True)
class ModelCall:
    """``%fal MODEL …``: the arguments for one request, and how many requests (``n`` × the sweep)."""

    command: Literal["call"] = "call"
    model: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    n: int = 1
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    wait: bool = False
    validate: bool = True
    tags: tuple[str, ...] = ()
    yes: bool = False  # send even when the estimate exceeds max_cost, or the group the size limit
    new: bool = False  # --new: submit even when this cell's earlier job for the same request is still running
    seeded: bool = False  # the model takes a ``seed``

    def __post_init__(self) -> None:
        size = self.size
        if size > MAX_GROUP:
            counts = " × ".join([f"--n {self.n}"] * (self.n != 1) + [f"{len(v)} {name}" for name, v in self.sweep])
            raise UsageError(f"this call would make {size:,} requests ({counts}); at most {MAX_GROUP} per call: "
                             "lower --n or the sweep, or split it into several calls")

    @property
    def size(self) -> int:
        """How many requests :meth:`expand` makes, computed from the counts alone."""
        return self.n * math.prod(len(values) for _, values in self.sweep)

    @property
    def axes(self) -> tuple[str, ...]:
        """What varies across the group, in order: the swept fields, then ``seed`` for ``--n``."""
        return group_axes([name for name, _ in self.sweep], self.n, self.seeded)

    def expand(self, first_seed: int | None = None) -> list[dict[str, Any]]:
        """One argument dict per request (see :func:`fal_notebook.catalog.seeds.expand`): ``--n`` variations
        get consecutive seeds from ``--seed`` or ``first_seed``."""
        return expand(self.arguments, self.sweep, self.n, first_seed, self.seeded)


@dataclass(frozen=True)
class Unchecked:
    """A model with no schema at hand (``--no-validate``): options are not checked, only read."""

    id: str
    input_schema: Mapping[str, Any] = field(default_factory=dict)


_SPECIAL = {"n", "sweep", "wait", "no_validate", "tag", "yes", "new"}
_FLAGS = {"wait", "no_validate", "yes", "new"}
_TRUE, _FALSE = {"true", "yes", "on", "1", "y"}, {"false", "no", "off", "0", "n"}


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def names_option(tokens: Sequence[str], name: str) -> bool:
    """True when the tokens give option ``name`` (``--no-validate``, ``--no_validate=…``) before any ``--``."""
    for token in tokens:
        if token == "--":
            return False
        if token.startswith("--") and _norm(token[2:].partition("=")[0]) == name:
            return True
    return False


def _literal(value: Any) -> Any:
    """An unchecked option's value: a JSON number, boolean, array or object where the text is one, else text."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if parsed is None or (isinstance(parsed, float) and not math.isfinite(parsed)):
        return value
    return parsed


def _opt(name: str) -> str:
    return "--" + name.replace("_", "-")


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The non-null alternatives of a field: fal writes optional fields as ``anyOf: [X, {type: null}]`` and
    unions such as ``image_size`` as ``anyOf: [object, enum]``. A plain schema is its own single branch."""
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            found = [b for b in schema[key] if isinstance(b, Mapping) and b.get("type") != "null"]
            return [{**rest, **branch} for b in found for branch in _branches(b)]
    if schema.get("allOf"):
        return _branches({**{k: v for k, v in schema.items() if k != "allOf"}, **schema["allOf"][0]})
    kind = schema.get("type")
    if isinstance(kind, list):  # ["integer", "null"]
        return [{**schema, "type": k} for k in kind if k != "null"]
    if "$ref" in schema and "type" not in schema:
        return [{**schema, "type": "object"}]
    return [schema]


def schema_branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The non-null alternatives of a field's schema, as the grammar types them (the form builds one control
    per alternative from the same reading)."""
    return _branches(schema)


def _effective(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first alternative: what help text and the array/boolean checks go by."""
    branches = _branches(schema)
    return branches[0] if branches else {}


def _is_bool(schema: Mapping[str, Any]) -> bool:
    return _effective(schema).get("type") == "boolean"


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE | _FALSE:
        return low in _TRUE
    raise ValueError(text)


def _parse_json_object(text: str) -> Any:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


def _parse_number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_SCALARS: dict[str, tuple[Callable[[str], Any], str]] = {
    "integer": (int, "an integer"),
    "number": (_parse_number, "a number"),
    "boolean": (_parse_bool, "true or false"),
    "object": (_parse_json_object, "a JSON object"),
}


def coerce_value(name: str, schema: Mapping[str, Any], value: Any, *, strict: bool = True) -> Any:
    """Type one value for field ``name`` from its JSON Schema. Strings are parsed; other objects (a PIL image,
    a Path, YAML-typed values) pass through, except that enum members are matched by their text. In a union
    the first alternative that accepts the value wins.

    ``strict=False`` (``--no-validate``) keeps a value that does not parse instead of raising."""
    problems = []
    for branch in _branches(schema) or [{}]:
        try:
            return _coerce_branch(name, branch, value)
        except UsageError as exc:
            problems.append(str(exc))
    if strict:
        raise UsageError(" or ".join(problems) if len(problems) < 3 else problems[0])
    return value


def _coerce_branch(name: str, schema: Mapping[str, Any], value: Any) -> Any:
    if "enum" in schema:
        for member in schema["enum"]:
            if member == value or str(member) == str(value):
                return member
        allowed = ", ".join(str(m) for m in schema["enum"])
        raise UsageError(f"{_opt(name)}: {value!r} is not one of {allowed}")
    kind = schema.get("type")
    if kind == "array":
        return [coerce_value(name, schema.get("items", {}), item) for item in _items(value)]
    if not isinstance(value, str) or kind not in _SCALARS:
        return value
    parse, expected = _SCALARS[kind]
    try:
        return parse(value)
    except ValueError:
        raise UsageError(f"{_opt(name)} expects {expected}, got {value!r}") from None


def _items(value: Any) -> list[Any]:
    """An array option's items: a list as is, a JSON array or object, a data URI whole, else a comma list."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        return [value]
    text = value.strip()
    if text.startswith(("[", "{")):
        try:
            parsed = json.loads(text)
            return parsed if isinstance(parsed, list) else [parsed]
        except ValueError:
            pass
    if text.startswith("data:"):
        return [text]
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass
class _Tokens:
    """What a model-call line says, before typing."""

    words: list[Any] = field(default_factory=list)
    values: dict[str, list[Any]] = field(default_factory=dict)
    n: int = 1
    sweep: list[str] = field(default_factory=list)
    wait: bool = False
    validate: bool = True
    tags: list[str] = field(default_factory=list)
    yes: bool = False
    new: bool = False


def _unknown(name: str, spec: Any, props: Mapping[str, Any]) -> UsageError:
    valid = [_opt(p) for p in props] + ["--n", "--sweep", "--wait", "--no-validate", "--tag", "--yes", "--new"]
    close = difflib.get_close_matches(_opt(name), valid, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return UsageError(f"unknown option {_opt(name)} for {spec.id}{hint}; valid: {', '.join(valid)}")


def _take_value(tokens: Sequence[str], i: int, option: str) -> str:
    if i >= len(tokens) or (tokens[i].startswith("--") and tokens[i] != "--"):
        raise UsageError(f"{option} needs a value")
    return tokens[i]


def _scan(spec: Any, tokens: Sequence[str], namespace: Mapping[str, Any] | None) -> _Tokens:
    """Walk the tokens once: words become the prompt, ``--field value`` pairs are collected by field.

    The call's own options (``--n``, ``--sweep``, ``--wait``, ``--no-validate``, ``--tag``) win over a model
    field of the same name, so the grammar does not change from model to model."""
    props = spec.input_schema.get("properties", {})
    by_norm = {_norm(p): p for p in props}
    unchecked = isinstance(spec, Unchecked)
    out, i = _Tokens(), 0
    while i < len(tokens):
        token, i = tokens[i], i + 1
        if token == "--":
            out.words += tokens[i:]
            break
        if not token.startswith("--"):
            out.words.append(token)
            continue
        name, eq, inline = token[2:].partition("=")
        name = _norm(name)
        target = by_norm.get(name)
        if name in _SPECIAL:
            if not eq and name not in _FLAGS:
                inline, i = _take_value(tokens, i, token), i + 1
            _special(out, name, inline)
        elif target is not None and _is_bool(props[target]):
            if not eq and i < len(tokens) and tokens[i].lower() in _TRUE | _FALSE:
                inline, eq, i = tokens[i], "=", i + 1
            out.values.setdefault(target, []).append(inline if eq else True)
        elif target is not None:
            if not eq:
                inline, i = _take_value(tokens, i, token), i + 1
            out.values.setdefault(target, []).append(interpolate(inline, namespace))
        elif name.startswith("no_") and _is_bool(props.get(by_norm.get(name[3:], ""), {})):
            out.values.setdefault(by_norm[name[3:]], []).append(False)
        elif unchecked:  # no schema: a bare --flag is true, anything else takes the next token
            if not eq and i < len(tokens) and not tokens[i].startswith("--"):
                inline, eq, i = tokens[i], "=", i + 1
            out.values.setdefault(name, []).append(interpolate(inline, namespace) if eq else True)
        else:
            raise _unknown(name, spec, props)
    return out


def _special(out: _Tokens, name: str, value: str) -> None:
    if name == "n":
        try:
            out.n = int(value)
        except ValueError:
            raise UsageError(f"--n expects a whole number, got {value!r}") from None
        if out.n < 1:
            raise UsageError("--n must be at least 1")
        if out.n > MAX_GROUP:
            raise UsageError(f"--n {out.n:,} is too many: at most {MAX_GROUP} requests per call")
    elif name == "sweep":
        out.sweep.append(value)
    elif name == "wait":
        out.wait = True
    elif name == "no_validate":
        out.validate = False
    elif name == "yes":
        out.yes = True
    elif name == "new":
        out.new = True
    else:
        out.tags.append(value)


def _type_values(spec: Any, raw: Mapping[str, list[Any]], strict: bool) -> dict[str, Any]:
    """Type every option; all the options that do not parse are named in one error, not just the first."""
    props = spec.input_schema.get("properties", {})
    typed: dict[str, Any] = {}
    problems: list[str] = []
    for name, values in raw.items():
        schema = props.get(name)
        try:
            if schema is None:  # an Unchecked model's option
                if len(values) > 1:
                    raise UsageError(f"{_opt(name)} given {len(values)} times; it takes one value")
                typed[name] = _literal(values[0])
            elif _effective(schema).get("type") == "array":
                typed[name] = [i for v in values for i in _as_list(coerce_value(name, schema, v, strict=strict))]
            elif len(values) > 1:
                raise UsageError(f"{_opt(name)} given {len(values)} times; it takes one value")
            else:
                typed[name] = coerce_value(name, schema, values[0], strict=strict)
        except UsageError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems))
    return typed


def _parse_sweep(spec: Any, texts: Sequence[str], strict: bool) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    props = spec.input_schema.get("properties", {})
    by_norm = {_norm(p): p for p in props}
    sweep = []
    for text in texts:
        name, eq, values = text.partition("=")
        target = by_norm.get(_norm(name))
        if not eq or not values.strip():
            raise UsageError(f"--sweep expects field=a,b,c, got {text!r}")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if target is None and isinstance(spec, Unchecked):
            sweep.append((_norm(name), tuple(_literal(v) for v in parts)))
            continue
        if target is None:
            raise _unknown(_norm(name), spec, props)
        sweep.append((target, tuple(coerce_value(target, props[target], v, strict=strict) for v in parts)))
    return tuple(sweep)


def build_model_call(
    spec: Any,
    tokens: Sequence[str],
    *,
    base: Mapping[str, Any] | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> ModelCall:
    """Turn the words after ``MODEL`` into a :class:`ModelCall`, typed from ``spec.input_schema``.

    ``base`` holds fields from a cell body (line options win over it); ``n``, ``sweep`` and ``tags`` keys in it
    act like the options. ``spec`` needs only ``id`` and ``input_schema``, so tests need no catalogue.
    """
    if "--help" in tokens or "-h" in tokens:
        raise UsageError(model_usage(spec))
    found = _scan(spec, tokens, namespace)
    props = spec.input_schema.get("properties", {})
    fields, specials = _body_fields(spec, base or {})
    raw = {name: [value] for name, value in fields.items()}
    raw.update(found.values)
    if found.words:
        if "prompt" not in props and not isinstance(spec, Unchecked):
            raise UsageError(f"{spec.id} takes no prompt; give its fields as options: {model_usage(spec, short=True)}")
        if "prompt" in raw:
            raise UsageError("the prompt is given twice: as words and with --prompt or in the cell body")
        raw["prompt"] = [interpolate(" ".join(str(w) for w in found.words), namespace)]
    sweep_texts = found.sweep + _sweep_from_body(specials.get("sweep"))
    return ModelCall(
        model=spec.id,
        arguments=_type_values(spec, raw, found.validate),
        n=found.n if found.n != 1 else _body_n(specials.get("n", 1)),
        sweep=_parse_sweep(spec, sweep_texts, found.validate),
        wait=found.wait,
        validate=found.validate,
        yes=found.yes,
        new=found.new,
        tags=tuple(found.tags) + _as_tuple(specials.get("tags", specials.get("tag", ()))),
        seeded=takes_seed(spec),
    )


def _body_fields(spec: Any, base: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A cell body's fields under their schema names, and its ``n`` / ``sweep`` / ``tags`` keys apart."""
    props = spec.input_schema.get("properties", {})
    by_norm = {_norm(p): p for p in props}
    fields, specials = {}, {}
    for name, value in base.items():
        if name in ("n", "sweep", "tags", "tag"):
            specials[name] = value
        elif (target := name if name in props else by_norm.get(_norm(name))) is not None:
            fields[target] = value
        elif isinstance(spec, Unchecked):
            fields[name] = value
        else:
            raise _unknown(_norm(name), spec, props)
    return fields, specials


def _sweep_from_body(sweep: Any) -> list[str]:
    if sweep is None:
        return []
    if not isinstance(sweep, Mapping):
        raise UsageError("sweep: in a cell body is a mapping, e.g. sweep: {aspect_ratio: [1:1, 16:9]}")
    return [f"{k}={','.join(str(v) for v in _as_tuple(vs))}" for k, vs in sweep.items()]


def _body_n(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"n: expects a whole number of at least 1, got {value!r}")
    return value


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def model_usage(spec: Any, *, short: bool = False) -> str:
    """The options of one model, from its schema: ``--field TYPE (default …; one of …)``."""
    props = spec.input_schema.get("properties", {})
    if short:
        return ", ".join(_opt(p) for p in props)
    required = set(spec.input_schema.get("required", ()))
    lines = [f"usage: %fal {spec.id} prompt words… [--field value …] [--n N] [--seed S] [--sweep field=a,b,c] "
             "[--wait] [--yes]"]
    for name, raw in props.items():
        schema = _effective(raw)
        kind = "choice" if "enum" in schema else schema.get("type", "value")
        notes = ["required"] if name in required else []
        if "default" in schema:
            notes.append(f"default {schema['default']!r}")
        if "enum" in schema:
            notes.append("one of " + ", ".join(str(m) for m in schema["enum"]))
        lines.append(f"  {_opt(name)} {kind.upper()}" + (f"  ({'; '.join(notes)})" if notes else ""))
    return "\n".join(lines)


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")  # {name} would be filled from the namespace


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _braces(value)
    if isinstance(value, (dict, list, tuple)):
        return _braces(json.dumps(value, ensure_ascii=False))
    return str(value)


def magic_line(spec: Any, arguments: Mapping[str, Any]) -> str:
    """The ``%fal`` line that parses back into ``arguments`` (the inverse of :func:`build_model_call`): the
    shortest name of the model, the prompt as words, every other field as ``--field value``."""
    import shlex

    name = min((spec.id, *getattr(spec, "aliases", ())), key=len)
    parts = ["%fal", name]
    prompt = arguments.get("prompt")
    if isinstance(prompt, str) and prompt.strip() and not prompt.strip().startswith("-"):
        parts.append(shlex.quote(_braces(prompt)))
    elif prompt is not None:
        parts.append("--prompt=" + shlex.quote(_option_text(prompt)))
    for field_name, value in arguments.items():
        if field_name != "prompt":  # --field=value: a value may start with "-"
            parts.append(f"{_opt(field_name)}={shlex.quote(_option_text(value))}")
    return " ".join(parts)
