"""Rules no JSON Schema expresses: non-empty required values, reference totals, prompt references,
unknown fields (warnings with the nearest valid name)."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection
from typing import Any

from ..errors import Problem, counted
from ._media_rules import ACCEPTED
from ._schema import format_path
from ._spec import ModelSpec

__all__ = ["non_finite", "required_not_empty", "reference_total", "prompt_references", "unknown_fields"]

_TAG = re.compile(r"@(video|image|element)(\d+)", re.IGNORECASE)


def required_not_empty(spec: ModelSpec, args: dict) -> list[Problem]:
    """A required list or text that is present but empty is as good as missing (optional empties are fine)."""
    problems = []
    for name in spec.required:
        value = args.get(name)
        if isinstance(value, list) and not value:
            problems.append(Problem(name, "is required and must not be empty", "at least 1 item"))
        elif isinstance(value, str) and not value.strip():
            allowed = ACCEPTED if name in spec.media_fields else "non-empty text"
            problems.append(Problem(name, "is required and must not be empty", allowed))
    return problems


def non_finite(value: Any, path: list | None = None) -> list[Problem]:
    """NaN and infinity pass every range check but are not JSON: fal would reject the whole request."""
    path = path or []
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(format_path(path), f"{value!r} is not a finite number", "a finite number")]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in non_finite(item, path + [key])]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in non_finite(item, path + [index])]
    return []


def _count(value: Any) -> int:
    if isinstance(value, list):
        return len(value)
    return 0 if value is None or value == "" else 1


def reference_total(spec: ModelSpec, args: dict) -> list[Problem]:
    """Kling: elements + reference images together at most ``max_refs``."""
    limit = spec.limits.get("max_refs")
    fields = spec.limits.get("ref_fields", ())
    if not limit or not fields:
        return []
    counts = {name: _count(args.get(name)) for name in fields if isinstance(args.get(name), list)}
    total = sum(counts.values())
    if total <= limit:
        return []
    detail = ", ".join(f"{name}: {n}" for name, n in counts.items())
    return [Problem(" + ".join(fields), f"{total} references in total ({detail})", f"at most {limit} in total")]


def prompt_references(spec: ModelSpec, args: dict, skip: Collection[str] = ()) -> tuple[list[Problem], list[str]]:
    """Every ``@ImageN`` / ``@ElementN`` / ``@VideoN`` in the prompt must name an item that is there.
    Fields in ``skip`` already have a problem of their own, so they are not counted against the prompt."""
    refs = spec.limits.get("prompt_refs") or {}
    prompt_field = spec.limits.get("prompt_field", "prompt")
    prompt = args.get(prompt_field)
    if not refs or not isinstance(prompt, str):
        return [], []
    problems: list[Problem] = []
    seen: set[str] = set()
    for match in _TAG.finditer(prompt):
        tag, number = match.group(1).capitalize(), int(match.group(2))
        target = refs.get(tag)
        if target is None or target in skip or f"{tag}{number}" in seen:
            continue
        seen.add(f"{tag}{number}")
        count = _count(args.get(target))
        if 1 <= number <= count:
            continue
        allowed = f"@{tag}1–@{tag}{count}" if count > 1 else (f"@{tag}1" if count else None)
        have = f"{target} has {counted(count, 'item')}" if count else f"no {target} was given"
        problems.append(Problem(prompt_field, f"refers to @{tag}{number} but {have}",
                                allowed or f"add {target}, or remove @{tag}{number} from the prompt"))
    warnings = []
    video_field = refs.get("Video")
    if video_field and _count(args.get(video_field)) and "Video1" not in seen:
        warnings.append(f"{prompt_field} does not mention @Video1; name the input video there so the model "
                        "knows what to edit")
    return problems, warnings


def unknown_fields(schema: dict, value: Any, path: list | None = None) -> list[str]:
    """Warnings for keys the schema does not define, with the closest known name (they are still sent)."""
    path = path or []
    warnings: list[str] = []
    props = schema.get("properties")
    if isinstance(value, dict) and props:
        for key, item in value.items():
            if key in props:
                warnings += unknown_fields(props[key], item, path + [key])
                continue
            near = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known fields: {', '.join(props)}"
            warnings.append(f"{format_path(path + [key])}: unknown field, sent as is{hint}")
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        for index, item in enumerate(value):
            warnings += unknown_fields(items, item, path + [index])
    return warnings
