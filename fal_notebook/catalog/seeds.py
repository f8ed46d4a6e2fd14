"""Seeds: which models take one, which return the one they used, and picking one the way a user would.

Why the client picks: a variation is only reproducible when its seed is known. fal returns the seed for some
models (FLUX) and not for others (nano-banana), so when a model takes a ``seed`` and the user gave none, the
client sends one it chose and records it. Groups get consecutive seeds (``--seed S`` → S, S+1, …).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SEED", "takes_seed", "returns_seed", "pick_seed", "seed_bounds", "expand", "group_axes"]

SEED = "seed"
_MAX = 2**31 - 1  # a 32-bit signed integer: what every fal seed field accepts


def _integer_branch(schema: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if schema.get("type") == "integer" or (isinstance(schema.get("type"), list) and "integer" in schema["type"]):
        return schema
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key) or ():
            if isinstance(branch, Mapping) and (found := _integer_branch(branch)) is not None:
                return found
    return None


def takes_seed(spec: Any) -> bool:
    """Whether the model's input has an integer ``seed`` field."""
    field = (getattr(spec, "input_schema", None) or {}).get("properties", {}).get(SEED)
    return isinstance(field, Mapping) and _integer_branch(field) is not None


def returns_seed(spec: Any) -> bool:
    """Whether the model's output schema has a ``seed`` (FLUX does, nano-banana and Kling do not)."""
    output = getattr(spec, "output_schema", None) or {}
    return isinstance(output, Mapping) and SEED in (output.get("properties") or {})


def seed_bounds(spec: Any) -> tuple[int, int]:
    """The smallest and largest seed the model's schema allows (a 32-bit signed range when it says nothing)."""
    field = (getattr(spec, "input_schema", None) or {}).get("properties", {}).get(SEED) or {}
    branch = _integer_branch(field) or {}
    low = int(branch.get("minimum", 0))
    high = int(branch.get("maximum", _MAX))
    return low, max(low, high)


def pick_seed(spec: Any, count: int = 1, rng: random.Random | None = None) -> int:
    """A random first seed such that ``count`` consecutive seeds all fit the model's range."""
    low, high = seed_bounds(spec)
    top = max(low, high - max(0, count - 1))
    return (rng or random.SystemRandom()).randint(low, top)


def expand(arguments: Mapping[str, Any], sweep: Sequence[tuple[str, Sequence[Any]]], n: int = 1,
           first_seed: int | None = None, seeded: bool = False) -> list[dict[str, Any]]:
    """One argument dict per request: the cartesian product of the sweep, each combination repeated ``n``
    times. With ``seeded`` (the model takes a seed) the ``n`` variations of a combination get consecutive
    seeds from its ``seed`` (or ``first_seed``): S, S+1, …; every combination starts from the same S, so a
    sweep compares the swept fields alone."""
    names = [name for name, _ in sweep]
    requests = []
    for combo in itertools.product(*(values for _, values in sweep)):
        merged = {**arguments, **dict(zip(names, combo, strict=True))}
        base = merged.get(SEED, first_seed) if seeded else None
        for i in range(n):
            if isinstance(base, int) and not isinstance(base, bool):
                requests.append({**merged, SEED: base + i})
            else:
                requests.append(dict(merged))
    return requests


def group_axes(sweep_names: Sequence[str], n: int, seeded: bool) -> tuple[str, ...]:
    """What varies across a group, in drawing order: the swept fields, then ``seed`` for ``n`` variations."""
    names = tuple(sweep_names)
    return names + ((SEED,) if n > 1 and seeded and SEED not in names else ())
