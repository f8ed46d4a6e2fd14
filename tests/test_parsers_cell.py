"""%%fal cell bodies (YAML mapping or prompt) and {name} filling from the user's namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fal_notebook import parsers as P
from fal_notebook.errors import UsageError


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        ("a red fox", {"prompt": "a red fox"}),
        ("  a red fox\n\n", {"prompt": "a red fox"}),
        ("prompt: a red fox\naspect_ratio: 16:9", {"prompt": "a red fox", "aspect_ratio": "16:9"}),  # not 969
        ("prompt: x\nsync_mode: no", {"prompt": "x", "sync_mode": "no"}),  # YAML 1.2: "no" is text
        ("prompt: x\nsync_mode: true\nseed: 42\nstrength: 0.5",
         {"prompt": "x", "sync_mode": True, "seed": 42, "strength": 0.5}),
        ("prompt: |\n  line one\n  line two\n", {"prompt": "line one\nline two"}),
        ("image_urls:\n  - a.png\n  - b.png", {"image_urls": ["a.png", "b.png"]}),
        ("A cat: sitting on a mat", {"prompt": "A cat: sitting on a mat"}),  # prose with a colon stays prose
        ("- a\n- b", {"prompt": "- a\n- b"}),  # a YAML list is not a mapping
        ("a fox: [unclosed", {"prompt": "a fox: [unclosed"}),  # prose that is not YAML stays prose
        ("", {}),
    ],
)
def test_parse_cell_body(body: str, parsed: dict) -> None:
    assert P.parse_cell_body(body) == parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a {animal}", "a fox"),
        ("{{literal}} {animal}", "{literal} fox"),
        ("{count:03d} foxes", "007 foxes"),
        ("{animal:>5} and {{x}} {0}", "{animal:>5} and {{x}} {0}"),  # {0} is not a name: left as written
        ("{animal:>5} and {{x}}", "  fox and {x}"),
        ("a { stray brace {animal}", "a { stray brace {animal}"),  # not a format string: left as written
        ('{"json": 1}', '{"json": 1}'),
        ("$animal costs $5", "$animal costs $5"),
        ("{count}", 7),  # exactly one placeholder bound to a non-string: the object itself
    ],
)
def test_interpolate_text(text: str, expected: object) -> None:
    assert P.interpolate(text, {"animal": "fox", "count": 7}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a {unknown} {animal}", r"\{unknown\} is not defined; defined: animal, count, photo\. Nothing was sent"),
        ("a {anmial}", r"\{anmial\} is not defined \(did you mean \{animal\}\?\)"),
        ("{x} and {y.attr}", r"\{x\}, \{y\} are not defined"),
        ("a portrait like {photo}", r"\{photo\} is not text \(PIL.Image\).*media field.*--image-url \{photo\}"),
    ],
)
def test_interpolate_refuses_unknown_names_and_objects_in_text(text: str, message: str) -> None:
    from PIL import Image

    namespace = {"animal": "fox", "count": 7, "photo": Image.new("RGB", (2, 2)), "_i3": "x", "Out": {}}
    with pytest.raises(UsageError, match=message):
        P.interpolate(text, namespace)


def test_interpolate_without_a_namespace_fills_nothing() -> None:
    assert P.interpolate("a {unknown}", None) == "a {unknown}"
    assert P.parse_magic_line("nbp a {unknown}").arguments["prompt"] == "a {unknown}"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("prompt: a cat\nimage_size: [oops", "line 2, column 18"),
        ("prompt: a cat\n  aspect_ratio: 16:9", "line 2, column 15"),
        ('prompt: "unclosed\nseed: 3', "line 2, column 8"),
    ],
)
def test_a_body_that_looks_like_yaml_but_does_not_parse_is_an_error(body: str, where: str) -> None:
    with pytest.raises(UsageError, match=f"does not parse at {where}.*nothing was sent"):
        P.parse_cell_body(body)


def test_subcommand_arguments_are_filled_from_the_namespace() -> None:
    class FakeJob:
        id = "3f2a9c"

    ns = {"job": FakeJob(), "jid": "abc123", "secs": 2.5}
    assert P.parse_magic_line("cancel {job.id} {jid}", ns).ids == ("3f2a9c", "abc123")
    assert P.parse_magic_line("status {job}", ns).id == "3f2a9c"
    assert P.parse_magic_line("wait --timeout {secs}", ns).timeout == 2.5
    with pytest.raises(UsageError, match=r"\{nope\} is not defined"):
        P.parse_magic_line("cancel {nope}", ns)


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("stauts abc", "did you mean %fal status?"),
        ("jobs --limt 3", "did you mean --limit?"),
        ("nano-banan-pro a cat", "did you mean nano-banana-pro"),
        ("nbp a cat --aspect-ration 1:1", "did you mean --aspect-ratio?"),
    ],
)
def test_typos_get_a_did_you_mean(line: str, hint: str) -> None:
    with pytest.raises(Exception, match=re.escape(hint)):
        P.parse_magic_line(line)


def test_interpolate_keeps_objects_in_structures() -> None:
    image, path = object(), Path("in.png")
    data = {"prompt": "a {animal}", "image_urls": ["{image}", "{path}", "x"], "nested": {"p": "{path}"}}
    filled = P.interpolate(data, {"animal": "fox", "image": image, "path": path})
    assert filled == {"prompt": "a fox", "image_urls": [image, path, "x"], "nested": {"p": path}}
    assert filled["image_urls"][0] is image


def test_parse_cell_merges_body_and_line() -> None:
    image = object()
    body = "prompt: a {animal} on {{place}}\naspect_ratio: 16:9\nimage_urls: ['{img}']\nsafety_tolerance: 4\nn: 2"
    result = P.parse_cell("nano-banana-pro/edit --aspect-ratio 1:1 --tag t", body,
                          {"animal": "fox", "img": image})
    assert result.model == "fal-ai/nano-banana-pro/edit"
    # line options win over the body; YAML's 4 matches the string enum "4"
    assert result.arguments == {"prompt": "a fox on {place}", "aspect_ratio": "1:1", "image_urls": [image],
                                "safety_tolerance": "4"}
    assert (result.n, result.tags) == (2, ("t",))


def test_parse_cell_prompt_body_and_sweep() -> None:
    result = P.parse_cell("nbp --sweep aspect_ratio=1:1,9:16", "a watercolour fox, 'soft' light", {})
    assert result.arguments == {"prompt": "a watercolour fox, 'soft' light"}
    assert [a["aspect_ratio"] for a in result.expand()] == ["1:1", "9:16"]
    body = "prompt: x\nsweep:\n  resolution: [1K, 2K]"
    assert P.parse_cell("nbp", body, {}).sweep == (("resolution", ("1K", "2K")),)


@pytest.mark.parametrize(
    ("line", "body", "message"),
    [
        ("", "x", "usage: %%fal MODEL"),
        ("nbp a fox", "a fox", "the prompt is given twice"),
        ("nbp", "prompt: x\ncolour: red", "unknown option --colour"),
        ("nbp", "prompt: x\naspect_ratio: 7:7", "'7:7' is not one of"),
        ("nbp", "prompt: x\nn: 0", "n: expects a whole number of at least 1"),
    ],
)
def test_parse_cell_errors(line: str, body: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        P.parse_cell(line, body, {})


# --- coercion round-trips -------------------------------------------------------------------------------------

ENUM = ["auto", "21:9", "16:9", "1:1", "4", 5]


@given(st.integers())
def test_integer_round_trip(value: int) -> None:
    assert P.coerce_value("seed", {"type": "integer"}, str(value)) == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_round_trip(value: float) -> None:
    assert P.coerce_value("strength", {"anyOf": [{"type": "number"}, {"type": "null"}]}, repr(value)) == value


@given(st.booleans(), st.sampled_from([str, lambda b: str(b).lower(), lambda b: "yes" if b else "no"]))
def test_boolean_round_trip(value: bool, spell) -> None:
    assert P.coerce_value("sync_mode", {"type": "boolean"}, spell(value)) is value


@given(st.sampled_from(ENUM))
def test_enum_round_trip(value: object) -> None:
    assert P.coerce_value("x", {"enum": ENUM}, str(value)) == value


@given(st.lists(st.integers(), min_size=1))
def test_integer_array_round_trip(values: list[int]) -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    assert P.coerce_value("sizes", schema, ",".join(map(str, values))) == values


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters=",", blacklist_categories=("Cs", "Zs", "Cc")),
                        min_size=1).filter(lambda s: not s.startswith(("[", "{", "data:"))), min_size=1))
def test_string_array_round_trip(values: list[str]) -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    assert P.coerce_value("urls", schema, ",".join(values)) == values


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4))
def test_object_round_trip(value: dict) -> None:
    import json

    assert P.coerce_value("extra", {"type": "object"}, json.dumps(value)) == value
