"""Property-based fuzzing of validation: ranges, types and prompt references, for every bundled model."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validate import IMAGE_URL, VIDEO_URL, minimal

from fal_notebook import catalog
from fal_notebook.catalog.validate import validate
from fal_notebook.errors import ValidationError

EXAMPLES = int(os.environ.get("FAL_NOTEBOOK_FUZZ_EXAMPLES", "150"))  # raise it for a deeper run
# the default run draws the same examples every time (one CI run must not fail by chance) and keeps no example
# database in the checkout; a deeper run (the variable set) explores at random
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize="FAL_NOTEBOOK_FUZZ_EXAMPLES" not in os.environ, database=None)
RANGES = [(spec, name, prop) for spec in catalog.bundled() for name, prop in spec.properties.items()
          if prop.get("type") in ("integer", "number") and ("minimum" in prop or "maximum" in prop)]
FIELDS = [(spec, name) for spec in catalog.bundled() for name in spec.properties]
_JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list,),
               "object": (dict,)}


def _outside(prop: dict) -> st.SearchStrategy:
    low, high = prop.get("minimum"), prop.get("maximum")
    integer = prop["type"] == "integer"
    sides = []
    if low is not None:
        sides.append(st.integers(max_value=math.ceil(low) - 1) if integer else
                     st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False))
    if high is not None:
        sides.append(st.integers(min_value=math.floor(high) + 1) if integer else
                     st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False))
    return st.one_of(sides)


def _inside(prop: dict) -> st.SearchStrategy:
    low, high = prop.get("minimum"), prop.get("maximum")
    if prop["type"] == "integer":
        return st.integers(min_value=low, max_value=high)
    return st.one_of(st.floats(min_value=low, max_value=high, allow_nan=False),
                     st.integers(min_value=math.ceil(low), max_value=math.floor(high)))


@SETTINGS
@given(st.data())
def test_any_value_in_range_passes(data: st.DataObject) -> None:
    spec, name, prop = data.draw(st.sampled_from(RANGES), label="field")
    value = data.draw(_inside(prop), label="value")
    validate(spec, {**minimal(spec), name: value})


@SETTINGS
@given(st.data())
def test_any_value_out_of_range_fails_naming_the_field(data: st.DataObject) -> None:
    spec, name, prop = data.draw(st.sampled_from(RANGES), label="field")
    value = data.draw(_outside(prop), label="value")
    with pytest.raises(ValidationError) as caught:
        validate(spec, {**minimal(spec), name: value})
    [problem] = caught.value.problems
    assert problem.field == name and "out of range" in problem.message and problem.allowed


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                     st.binary(max_size=8), st.just(object()), st.sets(st.integers(), max_size=2))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def _matches(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    for name in kinds:
        types = _JSON_TYPES.get(name, ())
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, bool) and name != "boolean":
            continue
        if isinstance(value, types) or (name == "integer" and isinstance(value, float) and value.is_integer()):
            return True
    return False


@SETTINGS
@given(st.data())
def test_random_values_never_crash_and_mismatched_types_are_named(data: st.DataObject) -> None:
    spec, name = data.draw(st.sampled_from(FIELDS), label="field")
    value = data.draw(_values, label="value")
    args = {**minimal(spec), name: value}
    try:
        validate(spec, args, local_files=False)
    except ValidationError as error:
        assert error.problems and all(p.field and p.message for p in error.problems)
        str(error)
        return
    kind = spec.properties[name].get("type")
    assert value is None or kind is None or _matches(value, kind), f"{value!r} passed as {kind}"


@SETTINGS
@given(st.dictionaries(st.text(min_size=1, max_size=12), _values, max_size=5), st.sampled_from(catalog.bundled()))
def test_arbitrary_inputs_only_ever_raise_validation_errors(args: dict, spec: catalog.ModelSpec) -> None:
    try:
        result = validate(spec, {**minimal(spec), **args}, local_files=False)
    except ValidationError as error:
        assert error.problems
        return
    unknown = {key for key, value in args.items() if value is not None} - set(spec.fields)
    for key in unknown:
        assert any(w.startswith(f"{key}: unknown field") for w in result.warnings)


KLING = catalog.get("kling-o3-edit")


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["Image", "Element", "Video", "image"]), st.integers(0, 6)), max_size=5),
       st.integers(0, 2), st.integers(0, 2), st.text(alphabet="ab @", max_size=10))
def test_prompt_references_fail_exactly_when_an_item_is_missing(
        tags: list[tuple[str, int]], images: int, elements: int, noise: str) -> None:
    prompt = "x" + noise + " ".join(f"@{tag}{n}" for tag, n in tags)
    args = {"prompt": prompt, "video_url": VIDEO_URL, "image_urls": [IMAGE_URL] * images,
            "elements": [{"frontal_image_url": IMAGE_URL}] * elements}
    counts = {"image": images, "element": elements, "video": 1}
    missing = {f"@{t.capitalize()}{n}" for t, n in tags if not 1 <= n <= counts[t.lower()]}
    try:
        validate(KLING, args)
    except ValidationError as error:
        named = {p.message.split()[2] for p in error.problems}
        assert named == missing and all(p.field == "prompt" for p in error.problems)
        return
    assert not missing
