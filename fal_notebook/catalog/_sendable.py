"""Whether an input can be sent at all, with or without the model's schema: a mapping of names to JSON values.

``validate=False`` skips the schema, not this: a value that is not JSON (an object, a set, bytes), NaN or
infinity (httpx refuses them, fal could not read them), a key that is not text, or a structure nested past
:data:`MAX_DEPTH` (or looping into itself) must end in a ``ValidationError`` naming each problem before
anything is stored or sent, never in a raw ``TypeError``/``ValueError``/``RecursionError`` after.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import Problem, ValidationError
from ._schema import format_path

__all__ = ["sendable_problems", "check_sendable", "MAX_DEPTH", "MAX_PROBLEMS"]

MAX_DEPTH = 32
MAX_PROBLEMS = 20
_LEAVES = (str, int, float, bool, type(None))


def _leaf_problem(value: Any, path: list) -> Problem | None:
    if isinstance(value, float) and not math.isfinite(value):
        return Problem(format_path(path), f"{value!r} is not a finite number", "a finite number")
    if isinstance(value, _LEAVES):
        return None
    kind = type(value).__name__
    return Problem(format_path(path), f"a value of type {kind} is not JSON",
                   "text, numbers, true/false, null, lists and mappings (files and images need validation on)")


def sendable_problems(arguments: Any, *, leaves_ok: tuple[type, ...] = ()) -> list[Problem]:
    """Every problem (up to :data:`MAX_PROBLEMS`) that keeps ``arguments`` from being sent as JSON. Walks
    without recursion; ``leaves_ok`` are leaf types a later step turns into JSON (uploads)."""
    if not isinstance(arguments, Mapping):
        return [Problem("(input)", f"must be a mapping of field names to values, not {type(arguments).__name__}",
                        "a dict such as {'prompt': 'a fox'}")]
    problems: list[Problem] = []
    stack: list[tuple[Any, list]] = [(arguments, [])]
    while stack and len(problems) < MAX_PROBLEMS:
        value, path = stack.pop()
        if isinstance(value, Mapping | list | tuple):
            if len(path) >= MAX_DEPTH:
                problems.append(Problem(format_path(path) or "(input)", f"nested more than {MAX_DEPTH} levels "
                                        "deep (or it contains itself)", f"at most {MAX_DEPTH} levels"))
                continue
            if isinstance(value, Mapping):
                for key, item in value.items():
                    if not isinstance(key, str):
                        problems.append(Problem(format_path([*path, str(key)]),
                                                f"a key of type {type(key).__name__}; field names must be text"))
                    else:
                        stack.append((item, [*path, key]))
            else:
                stack.extend((item, [*path, index]) for index, item in enumerate(value))
        elif not (leaves_ok and isinstance(value, leaves_ok)):
            problem = _leaf_problem(value, path)
            if problem is not None:
                problems.append(problem)
    return sorted(problems, key=lambda p: p.field)


def check_sendable(model: str, arguments: Any) -> dict[str, Any]:
    """``arguments`` as a plain dict when they can be sent; ``ValidationError`` listing why not otherwise."""
    problems = sendable_problems(arguments)
    if problems:
        raise ValidationError(model, problems)
    return dict(arguments)
