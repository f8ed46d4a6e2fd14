"""The catalogue: bundled models with fal's fields, ranges and defaults; aliases; lookup order; errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fal_notebook import catalog
from fal_notebook.catalog import MediaField, ModelSpec
from fal_notebook.catalog.openapi import load_cached, openapi_from_spec, save_cached
from fal_notebook.errors import UnknownModelError

BUNDLED = [
    "fal-ai/nano-banana-pro",
    "fal-ai/nano-banana-pro/edit",
    "fal-ai/flux/dev/image-to-image",
    "fal-ai/flux/dev",
    "fal-ai/flux/schnell",
    "fal-ai/kling-video/v2.1/standard/image-to-video",
    "fal-ai/kling-video/o3/pro/video-to-video/edit",
    "fal-ai/kling-video/o3/standard/video-to-video/edit",
]
KLING_EDIT = ["fal-ai/kling-video/o3/standard/video-to-video/edit", "fal-ai/kling-video/o3/pro/video-to-video/edit"]


@pytest.fixture(autouse=True)
def _no_registrations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations are process-wide; every test starts and ends without any."""
    monkeypatch.setattr(catalog, "_registered", {})


def test_every_required_model_is_bundled_with_a_category_and_output() -> None:
    ids = [spec.id for spec in catalog.bundled()]
    assert sorted(ids) == sorted(BUNDLED)
    for spec in catalog.bundled():
        assert spec.source == "bundled"
        assert spec.category in catalog.CATEGORIES
        assert spec.output in ("images", "video")
        assert spec.input_schema["type"] == "object"
        assert set(spec.required) <= set(spec.fields)
        assert spec.output_schema["required"], spec.id


def test_aliases_are_unique_and_resolve() -> None:
    aliases = [alias for spec in catalog.models() for alias in spec.aliases]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(BUNDLED)
    assert catalog.resolve("nano-banana-pro") == "fal-ai/nano-banana-pro"
    assert catalog.get("NANO-BANANA-PRO").id == "fal-ai/nano-banana-pro"
    assert catalog.resolve("kling-o3-edit") == KLING_EDIT[0]
    assert catalog.resolve("flux/dev") == "fal-ai/flux/dev"  # the fal-ai/ owner may be left out
    assert catalog.resolve(" fal-ai/flux/dev/ ") == "fal-ai/flux/dev"


def test_unknown_ids_and_aliases() -> None:
    assert catalog.resolve("someone/new-model") == "someone/new-model"  # submit without validation stays possible
    with pytest.raises(UnknownModelError, match="validate=False"):
        catalog.resolve("no-such-alias")
    with pytest.raises(UnknownModelError, match="--no-validate"):
        catalog.get("someone/new-model")


def test_nano_banana_pro_fields_and_defaults() -> None:
    spec = catalog.get("nano-banana-pro")
    assert spec.required == ("prompt",)
    assert spec.fields[:3] == ("prompt", "num_images", "seed")
    assert {"sync_mode", "limit_generations", "enable_web_search"} <= set(spec.fields)
    assert spec.defaults["aspect_ratio"] == "1:1"
    assert spec.defaults["resolution"] == "1K"
    assert spec.enum("safety_tolerance") == ["1", "2", "3", "4", "5", "6"]
    assert spec.enum("output_format") == ["jpeg", "png", "webp"]
    assert len(spec.enum("aspect_ratio")) == 11
    assert (spec.properties["num_images"]["minimum"], spec.properties["num_images"]["maximum"]) == (1, 4)
    assert spec.media_fields == {}
    edit = catalog.get("fal-ai/nano-banana-pro/edit")
    assert edit.required == ("prompt", "image_urls")
    assert edit.defaults["aspect_ratio"] == "auto"
    assert edit.media_fields == {"image_urls": MediaField("image", True, None)}


def test_flux_image_to_image_ranges() -> None:
    props = catalog.get("fal-ai/flux/dev/image-to-image").properties
    assert (props["strength"]["minimum"], props["strength"]["maximum"], props["strength"]["default"]) == (0.01, 1, 0.95)
    steps = props["num_inference_steps"]
    assert (steps["minimum"], steps["maximum"], steps["default"]) == (10, 50, 40)
    assert (props["guidance_scale"]["minimum"], props["guidance_scale"]["maximum"]) == (1, 20)
    assert props["acceleration"]["enum"] == ["none", "regular", "high"]
    assert props["output_format"]["enum"] == ["jpeg", "png"]


def test_text_to_image_and_image_to_video_models() -> None:
    flux = catalog.get("flux-dev")
    assert flux.enum("image_size") == ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3",
                                       "landscape_16_9"]
    assert catalog.get("flux-schnell").properties["num_inference_steps"]["maximum"] == 12
    i2v = catalog.get("kling-i2v")
    assert i2v.category == "image-to-video" and i2v.output == "video"
    assert i2v.enum("duration") == ["5", "10"]
    assert (i2v.properties["cfg_scale"]["minimum"], i2v.properties["cfg_scale"]["maximum"]) == (0, 1)


@pytest.mark.parametrize("model", KLING_EDIT)
def test_kling_edit_both_tiers(model: str) -> None:
    spec = catalog.get(model)
    assert spec.required == ("prompt", "video_url")
    assert spec.properties["shot_type"] == {"type": "string", "default": "customize",
                                            "description": spec.properties["shot_type"]["description"]}
    element = spec.properties["elements"]["items"]
    assert "required" not in element
    assert element["properties"]["reference_image_urls"]["maxItems"] == 3
    assert spec.media_fields["video_url"] == MediaField("video", False, None)
    assert spec.media_fields["elements[].reference_image_urls"] == MediaField("image", True, 3)
    assert spec.limits["video"] == {"field": "video_url", "formats": [".mp4", ".mov"], "min_duration": 3,
                                    "max_duration": 10, "min_side": 720, "max_side": 2160, "max_mb": 200}
    assert spec.limits["max_refs"] == 4
    assert spec.defaults == {"keep_audio": True, "shot_type": "customize"}


def test_describe_is_json_ready_and_complete() -> None:
    for spec in catalog.models():
        info = spec.describe()
        json.dumps(info)
        assert [f["name"] for f in info["fields"]] == list(spec.fields)
    steps = {f["name"]: f for f in catalog.get("flux-i2i").describe()["fields"]}["num_inference_steps"]
    assert steps["range"] == "10–50" and steps["default"] == 40 and not steps["required"]


def test_lookup_prefers_bundle_then_registered_then_cache_then_fetch(tmp_path: Path) -> None:
    calls: list[str] = []
    doc = openapi_from_spec(catalog.get("flux-dev"))

    def fetch(endpoint_id: str) -> dict:
        calls.append(endpoint_id)
        return doc

    assert catalog.lookup("flux-dev", fetch=fetch).source == "bundled"
    assert calls == []
    spec = catalog.lookup("acme/new-model", fetch=fetch, cache_dir=tmp_path)
    assert (spec.id, spec.source, calls) == ("acme/new-model", "openapi", ["acme/new-model"])
    assert load_cached("acme/new-model", tmp_path) == doc
    assert catalog.get("acme/new-model") is spec  # registered
    catalog._registered.clear()
    again = catalog.lookup("acme/new-model", fetch=fetch, cache_dir=tmp_path)
    assert calls == ["acme/new-model"]  # from the disk cache, no second fetch
    assert again.input_schema == spec.input_schema
    assert "acme/new-model" in [m.id for m in catalog.models()]


@pytest.mark.parametrize("fetch", [None, "raises", "not-a-dict"])
def test_lookup_offline_says_so_and_how_to_submit_anyway(fetch: object, tmp_path: Path) -> None:
    def failing(endpoint_id: str) -> dict:
        raise OSError("network unreachable")

    fetcher = {"raises": failing, "not-a-dict": lambda _id: ["nope"], None: None}[fetch]  # type: ignore[index]
    with pytest.raises(UnknownModelError) as caught:
        catalog.lookup("acme/other", fetch=fetcher, cache_dir=tmp_path)
    text = str(caught.value)
    assert "acme/other" in text and "could not be fetched" in text
    assert "validate=False" in text and "--no-validate" in text
    if fetch == "raises":
        assert "network unreachable" in text


def test_register_makes_a_spec_known() -> None:
    spec = ModelSpec(id="acme/thing", title="Thing", category="text-to-image", aliases=("thing",),
                     input_schema={"type": "object", "properties": {"prompt": {"type": "string"}}})
    catalog.register(spec)
    assert catalog.get("thing") is spec
    assert catalog.resolve("acme/thing") == "acme/thing"


def test_cache_files_have_safe_names_and_are_written_atomically(tmp_path: Path) -> None:
    weird = "../../etc/passwd"
    path = save_cached({"paths": {}}, weird, tmp_path)
    assert path.parent == tmp_path and ".." not in path.name and "/" not in path.name
    assert load_cached(weird, tmp_path) == {"paths": {}}
    assert save_cached({"a": 1}, "fal-ai/a/b", tmp_path) != save_cached({"a": 1}, "fal-ai/a_b", tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    path.write_text("{ not json")
    assert load_cached(weird, tmp_path) is None
    assert load_cached("never/saved", tmp_path) is None
    assert load_cached(weird, tmp_path, max_age=-1) is None


def test_import_stays_cheap() -> None:
    code = ("import sys, fal_notebook.catalog as c; c.get('nano-banana-pro'); "
            "print(sorted(m for m in ('jsonschema', 'PIL', 'av', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
