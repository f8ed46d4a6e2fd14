"""Bad input to ``%fal``, ``%%fal``, the CLI and the Python API ends in a clear ``FalError`` or a valid request:
never a raw ``TypeError``/``ValueError``/``RecursionError``, never gigabytes allocated before a check. Each test
prints its figure.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import pytest

from fal_notebook import parsers as P
from fal_notebook.catalog.validate import check_sendable, validate
from fal_notebook.errors import FalError, UsageError, ValidationError
from fal_notebook.parsers.model_call import MAX_GROUP

BOMB = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x]"] + [
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]" for n in range(8)
] + ["prompt: *i"])


def _peak(fn) -> tuple[BaseException | None, float, float]:
    tracemalloc.start()
    start = time.perf_counter()
    error = None
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        error = exc
    spent = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak / 2**20, spent


@pytest.mark.parametrize("line", ["fal-ai/flux/dev a fox --n 100000000",
                                  "fal-ai/flux/dev a fox --n " + "9" * 5000,
                                  "fal-ai/flux/dev a fox --n 200 --sweep seed=" + ",".join(map(str, range(10)))])
def test_group_size_is_checked_before_the_group_is_built(line: str) -> None:
    error, peak, spent = _peak(lambda: P.parse_magic_line(line).expand())
    assert isinstance(error, UsageError), error
    assert "at most" in str(error) or "whole number" in str(error)
    assert peak < 5, peak
    print(f"\nFIGURE {line[:50]}…: UsageError in {spent * 1000:.1f} ms, peak {peak:.2f} MB allocated")


def test_a_group_at_the_limit_is_fine() -> None:
    call = P.parse_magic_line(f"fal-ai/flux/dev a fox --n {MAX_GROUP}")
    assert call.size == MAX_GROUP and len(call.expand()) == MAX_GROUP


def test_n_in_a_cell_body_is_bounded_too() -> None:
    with pytest.raises(UsageError, match="at most"):
        P.parse_cell("fal-ai/flux/dev", "prompt: a fox\nn: 100000000")


def test_yaml_alias_bomb_in_a_cell_body_is_refused() -> None:
    error, peak, spent = _peak(lambda: P.parse_cell("fal-ai/flux/dev", BOMB))
    assert isinstance(error, UsageError) and "aliases" in str(error)
    assert peak < 5
    print(f"\nFIGURE YAML alias bomb (9^9 leaves): UsageError in {spent * 1000:.1f} ms, peak {peak:.2f} MB")


@pytest.mark.parametrize("body", ["prompt: &a [*a]", "prompt: &a {x: *a}"])
def test_recursive_yaml_is_refused(body: str) -> None:
    with pytest.raises(UsageError, match="aliases"):
        P.parse_cell("fal-ai/flux/dev", body)


@pytest.mark.parametrize("body", ["*bold* fox on a hill", "[" * 50_000])
def test_prose_that_is_not_a_yaml_mapping_is_the_prompt(body: str) -> None:
    assert P.parse_cell("fal-ai/flux/dev", body).arguments["prompt"] == body.strip()


def _cycle() -> list:
    loop: list = []
    loop.append(loop)
    return loop


NOT_SENDABLE = {
    "list": [1, 2],
    "text": "a fox",
    "nan": {"prompt": "x", "seed": math.nan},
    "inf": {"prompt": "x", "guidance_scale": -math.inf},
    "object": {"prompt": object()},
    "set": {"prompt": "x", "tags": {1, 2}},
    "bytes key": {b"prompt": "x"},
    "int key": {1: "x"},
    "cycle": {"prompt": "x", "loop": _cycle()},
    "deep": {"prompt": "x", "deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
}


@pytest.mark.parametrize("name", sorted(NOT_SENDABLE))
def test_what_cannot_be_sent_is_a_validation_error_with_or_without_the_schema(name: str) -> None:
    value = NOT_SENDABLE[name]
    with pytest.raises(ValidationError) as unchecked:
        check_sendable("fal-ai/flux/dev", value)
    with pytest.raises(ValidationError) as checked:
        validate("fal-ai/flux/dev", value, local_files=False)
    assert unchecked.value.problems and checked.value.problems
    print(f"\nFIGURE not sendable ({name}): {unchecked.value.problems[0]}")


def test_several_problems_are_listed_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        check_sendable("m", {"a": math.nan, "b": object(), "c": {2: 3}})
    assert [p.field for p in caught.value.problems] == ["a", "b", "c.2"]


def test_plain_json_passes() -> None:
    value = {"prompt": "x", "n": [1, 2.5, None, True, {"k": "v"}]}
    assert check_sendable("m", value) == value
    assert not isinstance(check_sendable("m", value), FalError)


@pytest.mark.parametrize("payload", ["[" * 100_000 + "]" * 100_000, '{"prompt": "x", "seed": NaN}',
                                     '{"prompt": "x", "deep": ' + "[" * 50 + "]" * 50 + "}", "[1, 2]", "nope"])
def test_cli_submit_input_ends_in_a_documented_exit_code(payload, fal_env, emulator, capsys):
    from fal_notebook.cli import main

    code = main(["submit", "fal-ai/flux/dev", payload])
    err = capsys.readouterr().err
    assert code in (2, 4) and "Traceback" not in err, (code, err)
    assert emulator.jobs == {}
    print(f"\nFIGURE CLI submit {payload[:30]!r}…: exit {code}, nothing sent")


@pytest.mark.parametrize("name", ["../../../etc/passwd", "..\\..\\x.png", "/abs/olute.png", "a/../../b.png", "..",
                                  "\x00.png", "ok.png"])
def test_hostile_output_names_stay_inside_the_outputs_folder(tmp_path, name):
    from fal_notebook.runtime.steps import inside, output_name

    dest = inside(tmp_path, output_name("job1", 0, {"url": "https://v3.fal.media/x/y.png", "file_name": name}))
    assert dest.parent == tmp_path.resolve() and dest.name.startswith("job1-0-")
