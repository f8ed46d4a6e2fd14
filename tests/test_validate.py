"""Validation rules, each with inputs that must fail and inputs that must pass, for every bundled model."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fal_notebook import catalog
from fal_notebook.catalog.validate import Validated, replace_at, validate
from fal_notebook.errors import Problem, UnknownModelError, ValidationError

SPECS = catalog.bundled()
IMAGE_URL = "https://cdn.example.com/in.png"
VIDEO_URL = "https://cdn.example.com/in.mp4"
PNG_URI = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


def minimal(spec: catalog.ModelSpec) -> dict[str, Any]:
    """The smallest input that passes: every required field with a plausible value."""
    args: dict[str, Any] = {}
    for name in spec.required:
        media = spec.media_fields.get(name)
        if media is None:
            args[name] = "@Video1 in the snow" if spec.limits.get("prompt_refs") else "a red fox"
        else:
            url = VIDEO_URL if media.kind == "video" else IMAGE_URL
            args[name] = [url] if media.array else url
    return args


def problems_of(spec: Any, args: dict, **kwargs: Any) -> list[Problem]:
    with pytest.raises(ValidationError) as caught:
        validate(spec, args, **kwargs)
    assert caught.value.problems, "a ValidationError always lists its problems"
    return caught.value.problems


def fields_of(problems: list[Problem]) -> set[str]:
    return {p.field for p in problems}


def _fields(kind: str) -> list[tuple[catalog.ModelSpec, str, dict]]:
    out = []
    for spec in SPECS:
        for name, prop in spec.properties.items():
            if kind == "enum" and spec.enum(name) and name not in spec.media_fields:
                out.append((spec, name, prop))
            elif kind == "range" and ("minimum" in prop or "maximum" in prop):
                out.append((spec, name, prop))
            elif kind == "bool" and prop.get("type") == "boolean":
                out.append((spec, name, prop))
            elif kind == "int" and prop.get("type") == "integer":
                out.append((spec, name, prop))
    return out


def _id(param: Any) -> str:
    return param.id if isinstance(param, catalog.ModelSpec) else str(param) if isinstance(param, str) else ""


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_minimal_input_passes_and_none_means_unset(spec: catalog.ModelSpec) -> None:
    args = minimal(spec)
    result = validate(spec.id, {**args, "seed": None})
    assert isinstance(result, Validated)
    assert result.arguments == args and result.uploads == [] and result.spec is spec
    assert validate(spec.aliases[0], args).spec is spec


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_each_missing_required_field_is_named(spec: catalog.ModelSpec) -> None:
    problems = problems_of(spec, {})
    assert fields_of(problems) == set(spec.required)
    assert all("required" in p.message for p in problems)
    for name in spec.required:
        args = minimal(spec)
        args[name] = [] if isinstance(args[name], list) else ""
        [problem] = problems_of(spec, args)
        assert (problem.field, problem.message) == (name, "is required and must not be empty")
        assert problem.allowed


@pytest.mark.parametrize(("spec", "name", "prop"), _fields("enum"), ids=_id)
def test_enums_accept_their_values_only(spec: catalog.ModelSpec, name: str, prop: dict) -> None:
    values = spec.enum(name)
    for value in values:
        validate(spec, {**minimal(spec), name: value})
    [problem] = problems_of(spec, {**minimal(spec), name: "not-a-choice"})
    assert problem.field == name
    assert all(str(v) in problem.allowed for v in values)
    if all(isinstance(v, str) and v.isdigit() for v in values):  # "5" / "10", "1".."6": the number is refused
        assert fields_of(problems_of(spec, {**minimal(spec), name: int(values[0])})) == {name}


@pytest.mark.parametrize(("spec", "name", "prop"), _fields("range"), ids=_id)
def test_ranges_accept_the_bounds_and_refuse_beyond(spec: catalog.ModelSpec, name: str, prop: dict) -> None:
    low, high = prop.get("minimum"), prop.get("maximum")
    step = 1 if prop["type"] == "integer" else 0.001
    for value in (low, high):
        if value is not None:
            validate(spec, {**minimal(spec), name: value})
    for value in (low - step if low is not None else None, high + step if high is not None else None):
        if value is None:
            continue
        [problem] = problems_of(spec, {**minimal(spec), name: value})
        assert problem.field == name and "out of range" in problem.message
        assert problem.allowed == f"{low:g}–{high:g}"


@pytest.mark.parametrize(("spec", "name", "prop"), _fields("bool"), ids=_id)
def test_booleans_take_true_and_false_only(spec: catalog.ModelSpec, name: str, prop: dict) -> None:
    validate(spec, {**minimal(spec), name: False})
    for wrong in (1, "true", 0):
        [problem] = problems_of(spec, {**minimal(spec), name: wrong})
        assert problem.field == name and "true or false" in problem.message


@pytest.mark.parametrize(("spec", "name", "prop"), _fields("int"), ids=_id)
def test_booleans_never_pass_as_integers(spec: catalog.ModelSpec, name: str, prop: dict) -> None:
    for wrong in (True, False, "2", 1.5):
        problems = problems_of(spec, {**minimal(spec), name: wrong})
        assert fields_of(problems) == {name} and any("whole number" in p.message for p in problems)


def test_every_problem_is_listed_at_once_with_actionable_text() -> None:
    with pytest.raises(ValidationError) as caught:
        validate("flux-i2i", {"image_url": 42, "strength": 2, "num_inference_steps": 5, "guidance_scale": "high",
                              "num_images": True, "output_format": "gif", "acceleration": "max", "seed": 1.5})
    error = caught.value
    assert error.model == "fal-ai/flux/dev/image-to-image"
    assert fields_of(error.problems) == {"image_url", "prompt", "strength", "num_inference_steps",
                                         "guidance_scale", "num_images", "output_format", "acceleration", "seed"}
    text = str(error)
    assert text.startswith("9 problems with the input for fal-ai/flux/dev/image-to-image; nothing was sent")
    for line in ("strength: 2 is out of range (allowed: 0.01–1)",
                 "num_inference_steps: 5 is out of range (allowed: 10–50)",
                 "output_format: 'gif' is not one of the allowed values (allowed: jpeg, png)",
                 "acceleration: 'max' is not one of the allowed values (allowed: none, regular, high)",
                 "num_images: must be a whole number, got boolean True (allowed: a whole number 1–4)",
                 "prompt: is required but missing (allowed: text)"):
        assert line in text


def test_unknown_fields_warn_with_the_nearest_name() -> None:
    result = validate("nano-banana-pro", {"prompt": "x", "num_image": 2, "zzz": 1})
    assert result.arguments["num_image"] == 2  # still sent: fal may know a field we do not
    assert any("num_image: unknown field" in w and "'num_images'" in w for w in result.warnings)
    assert any(w.startswith("zzz: unknown field") and "known fields: prompt" in w for w in result.warnings)
    nested = validate("kling-o3-edit", {"prompt": "@Video1", "video_url": VIDEO_URL,
                                        "elements": [{"frontal_img_url": IMAGE_URL}]})
    assert any("elements[0].frontal_img_url" in w and "'frontal_image_url'" in w for w in nested.warnings)


def test_unions_report_inside_the_matching_branch() -> None:
    validate("flux-dev", {"prompt": "x", "image_size": {"width": 1024, "height": 768}})
    validate("flux-dev", {"prompt": "x", "image_size": "square_hd"})
    problems = problems_of("flux-dev", {"prompt": "x", "image_size": {"width": 0, "height": "tall"}})
    assert fields_of(problems) == {"image_size.width", "image_size.height"}
    [problem] = problems_of("flux-dev", {"prompt": "x", "image_size": "giant"})
    assert problem.field == "image_size" and "{width, height}" in problem.allowed and "square_hd" in problem.allowed


def test_input_that_is_not_a_mapping() -> None:
    [problem] = problems_of("flux-dev", ["prompt"])  # type: ignore[arg-type]
    assert problem.field == "(input)" and "mapping" in problem.message
    assert fields_of(problems_of("flux-dev", None)) == {"prompt"}  # type: ignore[arg-type]


def test_unknown_model_without_a_fetcher() -> None:
    with pytest.raises(UnknownModelError, match="validate=False"):
        validate("acme/unknown-model", {"prompt": "x"})


# ------------------------------------------------------------------------------------------- media values

MEDIA = [(spec, name, media) for spec in SPECS for name, media in spec.media_fields.items() if "[]" not in name]


def _put(spec: catalog.ModelSpec, name: str, media: catalog.MediaField, value: Any) -> dict:
    return {**minimal(spec), name: [value] if media.array else value}


def _where(name: str, media: catalog.MediaField) -> str:
    return f"{name}[0]" if media.array else name


@pytest.mark.parametrize(("spec", "name", "media"), MEDIA, ids=_id)
def test_media_fields_accept_urls_data_uris_files_images_and_bytes(
        spec: catalog.ModelSpec, name: str, media: catalog.MediaField, tmp_path: Path) -> None:
    if media.kind == "video":  # local video files are probed: see test_validate_video.py
        for value in (VIDEO_URL, "data:video/mp4;base64,AAAA", b"\x00\x00\x00\x18ftyp"):
            assert len(validate(spec, _put(spec, name, media, value)).uploads) == isinstance(value, bytes)
        return
    local = tmp_path / "in.png"
    local.write_bytes(b"\x89PNG fake")
    image = Image.new("RGB", (8, 8))
    for value in ("HTTP://cdn.example.com/a.png", "http://localhost/a.png", "http://127.0.0.1:8123/m/a", PNG_URI,
                  str(local), local, image, b"\x89PNG"):
        result = validate(spec, _put(spec, name, media, value))
        uploads = dict(result.uploads)
        if isinstance(value, str) and not value.startswith("/"):
            assert uploads == {}
        else:
            assert list(uploads) == [_where(name, media)]
    assert dict(validate(spec, _put(spec, name, media, str(local))).uploads)[_where(name, media)] == local


@pytest.mark.parametrize(("spec", "name", "media"), MEDIA, ids=_id)
def test_media_fields_refuse_what_fal_cannot_fetch(
        spec: catalog.ModelSpec, name: str, media: catalog.MediaField, tmp_path: Path) -> None:
    other = "data:text/plain;base64,aGk=" if media.kind == "video" else "data:video/mp4;base64,AAAA"
    cases = [
        (12, "got integer"), ({"url": IMAGE_URL}, "got object"), ("", "empty"), ("ftp://host/a.png", "'ftp'"),
        (str(tmp_path / "missing.png"), "no such file"), (str(tmp_path), "not a regular file"), (b"", "0 bytes"),
        (other, "is a data URI of type"), ("data:image/png,no-base64-comma-ok", None), ("https://", "no host"),
    ]
    for value, expected in cases:
        args = _put(spec, name, media, value)
        if expected is None:
            if media.kind == "image":
                validate(spec, args)
            continue
        [problem] = problems_of(spec, args)
        assert problem.field == _where(name, media) and expected in problem.message, (value, problem)
        assert problem.allowed


def test_local_files_can_be_refused(tmp_path: Path) -> None:
    local = tmp_path / "in.png"
    local.write_bytes(b"x")
    for value in (str(local), local, Image.new("RGB", (4, 4)), b"x"):
        [problem] = problems_of("flux-i2i", {"prompt": "x", "image_url": value}, local_files=False)
        assert problem.field == "image_url" and problem.allowed == "an http(s) URL or a data URI"


def test_a_video_file_in_an_image_field_and_an_image_in_a_video_field(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    [problem] = problems_of("flux-i2i", {"prompt": "x", "image_url": str(clip)})
    assert "looks like a video" in problem.message
    [problem] = problems_of("kling-o3-edit", {"prompt": "@Video1", "video_url": Image.new("RGB", (4, 4))})
    assert problem.field == "video_url" and "an image was given where a video is needed" in problem.message


def test_a_single_url_where_a_list_is_needed() -> None:
    [problem] = problems_of("nano-banana-pro-edit", {"prompt": "x", "image_urls": IMAGE_URL})
    assert problem.field == "image_urls" and "must be a list" in problem.message


def test_uploads_can_be_put_back_by_path(tmp_path: Path) -> None:
    local = tmp_path / "face.png"
    local.write_bytes(b"x")
    args = {"prompt": "@Video1 with @Element1", "video_url": VIDEO_URL, "tags": ("a", "b"),
            "elements": [{"frontal_image_url": str(local), "reference_image_urls": [IMAGE_URL, local]}]}
    result = validate("kling-o3-edit", args)
    assert [p for p, _ in result.uploads] == ["elements[0].frontal_image_url", "elements[0].reference_image_urls[1]"]
    sent = result.arguments
    for path, _value in result.uploads:
        sent = replace_at(sent, path, "https://cdn.example.com/up.png")
    assert sent["elements"][0] == {"frontal_image_url": "https://cdn.example.com/up.png",
                                   "reference_image_urls": [IMAGE_URL, "https://cdn.example.com/up.png"]}
    assert sent["tags"] == ["a", "b"] and result.arguments["elements"][0]["frontal_image_url"] == str(local)


# ------------------------------------------------------------------------------------------- kling rules

KLING = ["kling-o3-edit", "kling-o3-pro-edit"]


def _kling(**extra: Any) -> dict:
    return {"prompt": "@Video1", "video_url": VIDEO_URL, **extra}


@pytest.mark.parametrize("model", KLING)
def test_optional_empty_lists_are_fine(model: str) -> None:
    assert validate(model, _kling(image_urls=[], elements=[])).arguments["image_urls"] == []


@pytest.mark.parametrize("model", KLING)
def test_at_most_four_references_in_total(model: str) -> None:
    element = {"frontal_image_url": IMAGE_URL, "reference_image_urls": [IMAGE_URL] * 3}
    validate(model, _kling(image_urls=[IMAGE_URL] * 2, elements=[element] * 2))
    validate(model, _kling(image_urls=[IMAGE_URL] * 4))
    [problem] = problems_of(model, _kling(image_urls=[IMAGE_URL] * 3, elements=[element] * 2))
    assert problem.field == "elements + image_urls"
    assert problem.message == "5 references in total (elements: 2, image_urls: 3)"
    assert problem.allowed == "at most 4 in total"
    problems = problems_of(model, _kling(image_urls=[IMAGE_URL] * 5))
    assert fields_of(problems) == {"image_urls", "elements + image_urls"}


@pytest.mark.parametrize("model", KLING)
def test_element_items(model: str) -> None:
    validate(model, _kling(elements=[{}, {"frontal_image_url": IMAGE_URL}]))  # both sub-fields are optional
    [problem] = problems_of(model, _kling(elements=[{"reference_image_urls": [IMAGE_URL] * 4}]))
    assert problem.field == "elements[0].reference_image_urls" and problem.allowed == "at most 3 items"
    [problem] = problems_of(model, _kling(elements=["https://a.example/x.png"]))
    assert problem.field == "elements[0]" and "must be a mapping" in problem.message


@pytest.mark.parametrize("model", KLING)
def test_prompt_references_need_matching_items(model: str) -> None:
    element = {"frontal_image_url": IMAGE_URL}
    validate(model, _kling(prompt="@Video1 with @Image1, @Image2 and @Element1", image_urls=[IMAGE_URL] * 2,
                           elements=[element]))
    problems = problems_of(model, _kling(prompt="@Video2 with @image3 and @Element1 and @Image3",
                                         image_urls=[IMAGE_URL] * 2))
    assert [(p.field, p.message, p.allowed) for p in problems] == [
        ("prompt", "refers to @Video2 but video_url has 1 item", "@Video1"),
        ("prompt", "refers to @Image3 but image_urls has 2 items", "@Image1–@Image2"),
        ("prompt", "refers to @Element1 but no elements was given", "add elements, or remove @Element1 from the prompt"),
    ]


@pytest.mark.parametrize("model", KLING)
def test_a_prompt_without_video1_only_warns(model: str) -> None:
    result = validate(model, _kling(prompt="make it snow"))
    assert any("@Video1" in w for w in result.warnings)
    assert not any("@Video1" in w for w in validate(model, _kling()).warnings)


def test_shot_type_is_a_free_string() -> None:
    validate("kling-o3-edit", _kling(shot_type="anything"))
    assert fields_of(problems_of("kling-o3-edit", _kling(shot_type=3))) == {"shot_type"}


def test_validation_does_not_import_the_slow_optional_format_checker() -> None:
    """rfc3987-syntax compiles 39 grammars on import (most of a first %fal); validation never needs it, and
    it stays importable for anyone else afterwards."""
    import subprocess
    import sys

    code = ("import sys\nfrom fal_notebook.catalog.validate import validate\n"
            "validate('nano-banana-pro', {'prompt': 'x', 'num_images': 2})\n"
            "print('jsonschema' in sys.modules, 'rfc3987_syntax' in sys.modules)\n"
            "import rfc3987_syntax\nprint(rfc3987_syntax.is_valid_syntax_iri('https://fal.ai/x'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "True"]
