"""The %fal / fal-notebook grammar: subcommands, model calls typed from a schema, cell bodies, {name} filling."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fal_notebook import parsers as P
from fal_notebook.errors import UsageError


@dataclass(frozen=True)
class FakeSpec:
    id: str
    input_schema: dict = field(default_factory=dict)


SPEC = FakeSpec(
    "test/model",
    {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "num_images": {"type": "integer", "default": 1},
            "seed": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "strength": {"type": "number"},
            "aspect_ratio": {"type": "string", "enum": ["1:1", "16:9", "9:16"], "default": "1:1"},
            "safety_tolerance": {"type": "string", "enum": ["1", "2", "3", "4", "5", "6"]},
            "sync_mode": {"type": "boolean", "default": False},
            "keep_audio": {"type": "boolean", "default": True},
            "image_urls": {"type": "array", "items": {"type": "string"}},
            "sizes": {"type": "array", "items": {"type": "integer"}},
            "extra": {"type": "object"},
            "image_size": {"anyOf": [{"type": "object"}, {"type": "string", "enum": ["square", "landscape"]}]},
        },
    },
)
NO_PROMPT = FakeSpec("test/upscale", {"properties": {"image_url": {"type": "string"}}})


def call(line: str, spec: FakeSpec = SPEC, **kw) -> P.ModelCall:
    return P.build_model_call(spec, P.split_line(line), **kw)


# --- splitting ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "tokens"),
    [
        ("a red fox", ["a", "red", "fox"]),
        ('"a red" fox', ["a red", "fox"]),
        ("a fox's den", ["a", "fox's", "den"]),
        ("it's Bob's dog", ["it's", "Bob's", "dog"]),  # plain shlex would return "its Bobs" + "dog"
        ("the dogs' bone", ["the", "dogs'", "bone"]),  # a stray quote: shlex refuses, the fallback keeps it
        ("--prompt 'a fox's den' --seed 1", ["--prompt", "a fox's den", "--seed", "1"]),
        ('say "hi', ["say", '"hi']),  # unbalanced double quote: plain whitespace split
        ("$price {name}", ["$price", "{name}"]),  # nothing is expanded here
        ("", []),
    ],
)
def test_split_line(line: str, tokens: list[str]) -> None:
    assert P.split_line(line) == tokens


# --- model calls --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "arguments"),
    [
        ("a red fox", {"prompt": "a red fox"}),
        ("a fox's den --seed 7", {"prompt": "a fox's den", "seed": 7}),
        ("x --seed -5", {"prompt": "x", "seed": -5}),
        ("x --num-images 2", {"prompt": "x", "num_images": 2}),
        ("x --aspect-ratio 16:9", {"prompt": "x", "aspect_ratio": "16:9"}),
        ("x --aspect_ratio=9:16", {"prompt": "x", "aspect_ratio": "9:16"}),
        ("x --ASPECT-RATIO 1:1", {"prompt": "x", "aspect_ratio": "1:1"}),
        ("x --safety-tolerance 4", {"prompt": "x", "safety_tolerance": "4"}),
        ("x --strength 0.85", {"prompt": "x", "strength": 0.85}),
        ("x --strength 1", {"prompt": "x", "strength": 1.0}),
        ("x --sync-mode", {"prompt": "x", "sync_mode": True}),
        ("x --sync-mode false", {"prompt": "x", "sync_mode": False}),
        ("x --sync-mode=yes", {"prompt": "x", "sync_mode": True}),
        ("x --no-keep-audio", {"prompt": "x", "keep_audio": False}),
        ("x --keep-audio off more words", {"prompt": "x more words", "keep_audio": False}),
        ("x --image-urls a.png --image-urls b.png", {"prompt": "x", "image_urls": ["a.png", "b.png"]}),
        ("x --image-urls a.png,b.png", {"prompt": "x", "image_urls": ["a.png", "b.png"]}),
        ("x --image-urls data:image/png;base64,AAA=", {"prompt": "x", "image_urls": ["data:image/png;base64,AAA="]}),
        ("x --image-urls '[\"a\", \"b\"]'", {"prompt": "x", "image_urls": ["a", "b"]}),
        ("x --sizes 1,2,3", {"prompt": "x", "sizes": [1, 2, 3]}),
        ("x --extra '{\"k\": [1]}'", {"prompt": "x", "extra": {"k": [1]}}),
        ("x --image-size square", {"prompt": "x", "image_size": "square"}),
        ("x --image-size '{\"width\": 64}'", {"prompt": "x", "image_size": {"width": 64}}),
        ("--prompt 'a cat'", {"prompt": "a cat"}),
        ("x -- --not-an-option", {"prompt": "x --not-an-option"}),
        ("  ", {}),
    ],
)
def test_model_call_arguments(line: str, arguments: dict) -> None:
    result = call(line)
    assert result.arguments == arguments
    assert result.model == "test/model" and result.command == "call"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x --aspekt-ratio 1:1", "did you mean --aspect-ratio?"),
        ("x --bogus 1", "valid: --prompt, --num-images"),
        ("x --seed abc", "--seed expects an integer, got 'abc'"),
        ("x --strength nan", "--strength expects a number"),
        ("x --aspect-ratio 7:7", "'7:7' is not one of 1:1, 16:9, 9:16"),
        ("x --sync-mode maybe", ""),  # "maybe" is a prompt word; this one is fine (see below)
        ("x --extra notjson", "--extra expects a JSON object"),
        ("x --image-size huge", "not one of square, landscape"),
        ("x --seed", "--seed needs a value"),
        ("x --seed --n 2", "--seed needs a value"),
        ("x --seed 1 --seed 2", "--seed given 2 times"),
        ("x --prompt y", "the prompt is given twice"),
        ("x --n 0", "--n must be at least 1"),
        ("x --n two", "--n expects a whole number"),
        ("x --sweep seed", "--sweep expects field=a,b,c"),
        ("x --sweep colour=1,2", "unknown option --colour"),
        ("x --sweep seed=1,b", "--seed expects an integer"),
    ],
)
def test_model_call_errors(line: str, message: str) -> None:
    if not message:
        assert call(line).arguments == {"prompt": "x maybe", "sync_mode": True}
        return
    with pytest.raises(UsageError) as info:
        call(line)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_no_validate_keeps_values_that_do_not_parse() -> None:
    result = call("x --seed abc --aspect-ratio 7:7 --no-validate")
    assert result.arguments == {"prompt": "x", "seed": "abc", "aspect_ratio": "7:7"}
    assert result.validate is False


def test_model_without_prompt_refuses_words() -> None:
    with pytest.raises(UsageError, match="takes no prompt; give its fields as options: --image-url"):
        call("a cat", NO_PROMPT)
    assert call("--image-url u", NO_PROMPT).arguments == {"image_url": "u"}


def test_call_options_n_sweep_wait_tags() -> None:
    result = call("x --n 2 --sweep aspect_ratio=1:1,16:9 --sweep seed=1,2 --wait --tag a --tag b")
    assert (result.n, result.wait, result.validate, result.tags) == (2, True, True, ("a", "b"))
    assert result.sweep == (("aspect_ratio", ("1:1", "16:9")), ("seed", (1, 2)))
    expanded = result.expand()
    assert len(expanded) == 2 * 2 * 2
    # each swept seed starts its own run of --n consecutive seeds
    assert [(a["aspect_ratio"], a["seed"]) for a in expanded] == [
        ("1:1", 1), ("1:1", 2), ("1:1", 2), ("1:1", 3), ("16:9", 1), ("16:9", 2), ("16:9", 2), ("16:9", 3)]
    assert all(a["prompt"] == "x" for a in expanded)


def test_n_gives_consecutive_seeds_from_the_given_or_first_seed() -> None:
    assert [a["seed"] for a in call("x --n 3 --seed 41").expand()] == [41, 42, 43]
    assert [a["seed"] for a in call("x --n 3").expand(first_seed=7)] == [7, 8, 9]
    sweep = call("x --sweep aspect_ratio=1:1,16:9 --yes")
    assert sweep.yes and sweep.size == 2 and sweep.axes == ("aspect_ratio",)
    assert [a["seed"] for a in sweep.expand(first_seed=5)] == [5, 5]  # a sweep compares one field at a time
    assert call("x --n 2 --sweep aspect_ratio=1:1,16:9").axes == ("aspect_ratio", "seed")
    assert call("x --n 2 --sweep aspect_ratio=1:1,16:9").size == 4


def test_expand_without_sweep_repeats_n_times() -> None:
    assert call("x --n 3").expand() == [{"prompt": "x"}] * 3
    assert call("x").expand() == [{"prompt": "x"}]


def test_model_help_lists_the_schema() -> None:
    with pytest.raises(UsageError) as info:
        call("--help")
    text = str(info.value)
    assert "--aspect-ratio CHOICE  (default '1:1'; one of 1:1, 16:9, 9:16)" in text
    assert "--prompt STRING  (required)" in text


def test_placeholders_fill_values_and_keep_objects() -> None:
    image = object()
    ns = {"animal": "fox", "img": image, "n": 3, "path": Path("/tmp/a.png")}
    result = call("a {animal} in {{place}} --seed {n} --image-urls {img} --image-urls {path}", namespace=ns)
    assert result.arguments == {"prompt": "a fox in {place}", "seed": 3, "image_urls": [image, Path("/tmp/a.png")]}


# --- real catalogue ----------------------------------------------------------------------------------------

def test_real_catalogue_aliases_and_enums() -> None:
    result = P.parse_magic_line("nano-banana-pro a fox's den --aspect-ratio 16:9 --resolution 2K --n 2")
    assert result.model == "fal-ai/nano-banana-pro"
    assert result.arguments == {"prompt": "a fox's den", "aspect_ratio": "16:9", "resolution": "2K"}
    assert result.n == 2


def test_real_catalogue_union_field() -> None:
    result = P.parse_magic_line('flux-dev a cat --image-size \'{"width": 512, "height": 256}\'')
    assert result.arguments["image_size"] == {"width": 512, "height": 256}


# --- subcommands --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("jobs", P.JobsCommand()),
        ("jobs --all --model nbp --state COMPLETED --limit 5",
         P.JobsCommand(all=True, model="nbp", state="COMPLETED", limit=5)),
        ("list", P.JobsCommand()),
        ("status abc123", P.StatusCommand(id="abc123")),
        ("status fal-ai/flux/dev abc123", P.StatusCommand(id="abc123", model="fal-ai/flux/dev")),
        ("cancel all", P.CancelCommand(all=True)),
        ("cancel a b", P.CancelCommand(ids=("a", "b"))),
        ("wait", P.WaitCommand()),
        ("wait --timeout 2.5 a b", P.WaitCommand(ids=("a", "b"), timeout=2.5)),
        ("resume", P.ResumeCommand()),
        ("resume --all", P.ResumeCommand(all=True)),
        ("models", P.ModelsCommand()),
        ("models flux --category image-to-image", P.ModelsCommand(search="flux", category="image-to-image")),
        ("info nbp", P.InfoCommand(model="nbp")),
        ("model-info nbp", P.InfoCommand(model="nbp")),
        ("config", P.ConfigCommand()),
        ("history", P.HistoryCommand()),
        ("history red fox --limit 3", P.HistoryCommand(text="red fox", limit=3)),
        ("panel", P.PanelCommand()),
        ("panel nbp", P.PanelCommand(model="nbp")),
    ],
)
def test_magic_subcommands(line: str, expected: object) -> None:
    assert P.parse_magic_line(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "usage: %fal MODEL prompt words"),
        ("status", "%fal status: the following arguments are required: [MODEL] ID"),
        ("status a b c", "unrecognized arguments: c"),
        ("cancel", "%fal cancel: the following arguments are required"),
        ("wait --timeout soon", "invalid float value: 'soon'"),
        ("status --help", "usage: %fal status [-h] [MODEL] ID"),
        ("no-such-model a cat", "unknown model 'no-such-model'"),
    ],
)
def test_magic_errors_raise_instead_of_exiting(line: str, message: str) -> None:
    with pytest.raises(Exception) as info:
        P.parse_magic_line(line)
    assert not isinstance(info.value, SystemExit)
    assert message in str(info.value)


def test_cli_only_commands_are_not_magic_words() -> None:
    # "submit" is not a subcommand of %fal, so it is read as a model name (the nearest subcommand is suggested)
    with pytest.raises(Exception, match="unknown model 'submit'|%fal submit: no such subcommand or model"):
        P.parse_magic_line("submit x")


def test_parsers_import_neither_ipython_nor_httpx() -> None:
    code = "import sys, fal_notebook.parsers; print(sorted(m for m in ('IPython', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_option_that_does_not_parse_is_named_in_one_error() -> None:
    with pytest.raises(UsageError) as info:
        call("x --aspect-ratio 7:7 --seed abc --strength high")
    text = str(info.value)
    for part in ("'7:7' is not one of", "--seed expects an integer", "--strength expects a number"):
        assert part in text
    assert "\n" not in text


# --- the one schema lookup ------------------------------------------------------------------------------------

class Lookups:
    """A lookup that records what it was asked: (model, fetch)."""

    def __init__(self, spec=None):
        self.spec, self.asked = spec, []

    def __call__(self, model, /, *, fetch=True):
        from fal_notebook.errors import UnknownModelError

        self.asked.append((model, fetch))
        if self.spec is None:
            raise UnknownModelError(f"unknown model {model!r}: not bundled, not cached, and its schema could not "
                                    "be fetched")
        return self.spec


def test_the_grammar_gets_its_schema_from_the_injected_lookup() -> None:
    lookup = Lookups(FakeSpec("owner/app", SPEC.input_schema))
    call = P.parse_magic_line("owner/app a cat --num-images 3", lookup=lookup)
    assert call.model == "owner/app" and call.arguments == {"prompt": "a cat", "num_images": 3}
    assert lookup.asked == [("owner/app", True)]
    cell = P.parse_cell("owner/app --seed 4", "prompt: a dog", lookup=lookup)
    assert cell.arguments == {"prompt": "a dog", "seed": 4}


def test_no_validate_never_waits_for_a_schema_and_takes_options_as_given() -> None:
    lookup = Lookups(None)  # nothing at hand
    call = P.parse_magic_line("owner/app a cat --num-steps 3 --guidance 2.5 --sync-mode --style {s} --no-validate "
                              "--tags [1,2] --size square_hd", {"s": "ink"}, lookup=lookup)
    assert lookup.asked == [("owner/app", False)]
    assert call.validate is False and call.model == "owner/app"
    assert call.arguments == {"prompt": "a cat", "num_steps": 3, "guidance": 2.5, "sync_mode": True,
                              "style": "ink", "tags": [1, 2], "size": "square_hd"}
    swept = P.parse_magic_line("owner/app x --no-validate --sweep steps=1,2", lookup=lookup)
    assert swept.sweep == (("steps", (1, 2)),)
    cell = P.parse_cell("owner/app --no-validate", "prompt: a dog\nsteps: 3", lookup=lookup)
    assert cell.arguments == {"prompt": "a dog", "steps": 3}


def test_without_no_validate_an_unknown_model_is_still_an_error() -> None:
    with pytest.raises(Exception, match="unknown model 'owner/app'"):
        P.parse_magic_line("owner/app a cat --steps 3", lookup=Lookups(None))
    with pytest.raises(Exception, match="unknown model 'nonsense'"):  # no owner: not even unchecked
        P.parse_magic_line("nonsense a cat --no-validate", lookup=Lookups(None))
    with pytest.raises(UsageError, match="given 2 times"):
        P.parse_magic_line("owner/app a cat --steps 3 --steps 4 --no-validate", lookup=Lookups(None))
