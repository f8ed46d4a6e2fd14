"""fal's per-model OpenAPI documents → ModelSpec (and back), including a model fetched from the emulator."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from fal_notebook import catalog
from fal_notebook.catalog import MediaField
from fal_notebook.catalog.openapi import openapi_from_spec, spec_from_openapi
from fal_notebook.catalog.validate import validate
from fal_notebook.errors import UnknownModelError, ValidationError

ENDPOINT = "acme/video-edit/v1"


@pytest.fixture(autouse=True)
def _no_registrations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_registered", {})


def _doc() -> dict:
    """A document shaped like fal's (OpenAPI 3.0.4, $refs, anyOf/allOf, nullable, order extension)."""
    element = {
        "title": "ElementInput", "type": "object", "x-fal-order-properties": ["frontal_image_url", "reference_image_urls"],
        "properties": {
            "reference_image_urls": {"title": "Reference Image Urls", "type": "array", "items": {"type": "string"},
                                     "maxItems": 3, "description": "Other angles of the element."},
            "frontal_image_url": {"title": "Frontal Image Url", "type": "string"},
        },
    }
    inputs = {
        "title": "VideoEditInput", "type": "object", "required": ["prompt", "video_url"],
        "x-fal-order-properties": ["prompt", "video_url", "image_urls", "elements", "aspect_ratio", "strength",
                                   "seed", "mask_url"],
        "properties": {
            "seed": {"title": "Seed", "anyOf": [{"type": "integer"}, {"type": "null"}]},
            "prompt": {"title": "Prompt", "type": "string", "examples": ["make @Video1 snowy"],
                       "description": "What to change. Refer to the video as @Video1."},
            "mask_url": {"title": "Mask", "type": "string", "description": "A black and white mask image."},
            "video_url": {"title": "Video Url", "type": "string", "description":
                          "Only .mp4/.mov formats, 2-12s duration, 512-4096px resolution, max 100MB."},
            "image_urls": {"title": "Image Urls", "anyOf": [{"type": "array", "items": {"type": "string"},
                                                             "maxItems": 3}, {"type": "null"}],
                           "description": "Style images, @Image1, @Image2. Maximum 3 total (elements + images)."},
            "elements": {"title": "Elements", "type": "array",
                         "items": {"$ref": "#/components/schemas/ElementInput"},
                         "description": "Characters as @Element1... Maximum 3 total (elements + images)."},
            "aspect_ratio": {"allOf": [{"$ref": "#/components/schemas/AspectRatio"}], "default": "16:9",
                             "description": "Frame shape."},
            "strength": {"type": "number", "nullable": True, "minimum": 0, "exclusiveMinimum": True, "maximum": 1,
                         "default": 0.5},
        },
    }
    ref = {"$ref": "#/components/schemas/VideoEditInput"}
    output_ref = {"$ref": "#/components/schemas/VideoEditOutput"}
    return {
        "openapi": "3.0.4",
        "info": {"title": f"Queue OpenAPI for {ENDPOINT}", "version": "1.0.0",
                 "description": f"The OpenAPI schema for the {ENDPOINT} queue.",
                 "x-fal-metadata": {"endpointId": ENDPOINT, "category": "video-to-video"}},
        "components": {"schemas": {
            "VideoEditInput": inputs,
            "VideoEditOutput": {"title": "Out", "type": "object", "required": ["video"],
                                "properties": {"video": {"$ref": "#/components/schemas/File"}}},
            "ElementInput": element,
            "AspectRatio": {"title": "AspectRatio", "type": "string", "enum": ["16:9", "9:16", "1:1"]},
            "File": {"title": "File", "type": "object", "required": ["url"],
                     "properties": {"url": {"type": "string"}, "content_type": {"type": "string"}}},
        }},
        "paths": {
            f"/{ENDPOINT}/requests/{{request_id}}/status": {"get": {"responses": {"200": {"content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/QueueStatus"}}}}}}},
            f"/{ENDPOINT}": {"post": {"requestBody": {"content": {"application/json": {"schema": ref}}}}},
            f"/{ENDPOINT}/requests/{{request_id}}": {"get": {"responses": {"200": {"content": {
                "application/json": {"schema": output_ref}}}}}},
        },
    }


def test_a_fal_shaped_document_becomes_a_spec() -> None:
    spec = spec_from_openapi(_doc(), ENDPOINT)
    assert spec.fields == ("prompt", "video_url", "image_urls", "elements", "aspect_ratio", "strength", "seed",
                           "mask_url")
    assert (spec.id, spec.title, spec.category, spec.output, spec.source) == (
        ENDPOINT, ENDPOINT, "video-to-video", "video", "openapi")
    assert spec.required == ("prompt", "video_url")
    assert spec.enum("aspect_ratio") == ["16:9", "9:16", "1:1"]
    assert spec.defaults["aspect_ratio"] == "16:9"
    assert spec.properties["strength"] == {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1,
                                           "default": 0.5}
    assert list(spec.properties["elements"]["items"]["properties"]) == ["frontal_image_url", "reference_image_urls"]
    assert spec.media_fields == {
        "video_url": MediaField("video", False, None),
        "image_urls": MediaField("image", True, None),
        "elements[].frontal_image_url": MediaField("image", False, None),
        "elements[].reference_image_urls": MediaField("image", True, 3),
        "mask_url": MediaField("image", False, None),
    }
    assert spec.limits == {
        "video": {"field": "video_url", "formats": [".mp4", ".mov"], "min_duration": 2, "max_duration": 12,
                  "min_side": 512, "max_side": 4096, "max_mb": 100},
        "max_refs": 3, "ref_fields": ["elements", "image_urls"], "prompt_field": "prompt",
        "prompt_refs": {"Image": "image_urls", "Element": "elements", "Video": "video_url"},
    }
    assert "x-fal-order-properties" not in json.dumps(spec.input_schema)


def test_a_fetched_spec_validates_like_a_bundled_one() -> None:
    spec = spec_from_openapi(_doc(), ENDPOINT)
    ok = validate(spec, {"prompt": "@Video1 at night", "video_url": "https://x.example/v.mp4", "seed": None,
                         "image_urls": None, "strength": 1})
    assert ok.arguments == {"prompt": "@Video1 at night", "video_url": "https://x.example/v.mp4", "strength": 1}
    with pytest.raises(ValidationError) as caught:
        validate(spec, {"prompt": "use @Image3", "video_url": "clip.avi", "aspect_ratio": "4:3", "strength": 0,
                        "image_urls": ["https://x.example/a.png"] * 2, "elements": [{}, {}]})
    fields = {p.field for p in caught.value.problems}
    assert fields == {"video_url", "aspect_ratio", "strength", "elements + image_urls", "prompt"}


def test_unusable_documents_are_refused() -> None:
    with pytest.raises(UnknownModelError, match="no paths"):
        spec_from_openapi({"openapi": "3.0.4"}, ENDPOINT)
    doc = _doc()
    del doc["paths"][f"/{ENDPOINT}"]
    with pytest.raises(UnknownModelError, match="POST"):
        spec_from_openapi(doc, ENDPOINT)
    doc = _doc()
    doc["components"]["schemas"]["ElementInput"]["properties"]["self"] = {"$ref": "#/components/schemas/ElementInput"}
    with pytest.raises(UnknownModelError, match="refers to itself"):
        spec_from_openapi(doc, ENDPOINT)


@pytest.mark.parametrize("spec", catalog.bundled(), ids=lambda s: s.id)
def test_every_bundled_model_round_trips(spec: catalog.ModelSpec) -> None:
    doc = json.loads(json.dumps(openapi_from_spec(spec)))
    assert doc["openapi"] == "3.0.4"
    assert doc["info"]["x-fal-metadata"]["endpointId"] == spec.id
    assert f"/{spec.id}" in doc["paths"]
    back = spec_from_openapi(doc, spec.id)
    assert back == dataclasses.replace(spec, aliases=(), source="openapi")


def test_written_documents_use_shared_schemas() -> None:
    doc = openapi_from_spec(catalog.get("flux-dev"))
    schemas = doc["components"]["schemas"]
    assert {"QueueStatus", "FluxDevInput", "FluxDevOutput", "Image", "ImageSize"} <= set(schemas)
    assert schemas["FluxDevInput"]["x-fal-order-properties"][0] == "prompt"
    assert schemas["FluxDevInput"]["properties"]["image_size"]["anyOf"][0] == {"$ref": "#/components/schemas/ImageSize"}
    before = copy.deepcopy(catalog.get("flux-dev").input_schema)
    openapi_from_spec(catalog.get("flux-dev"))
    assert catalog.get("flux-dev").input_schema == before  # writing never mutates the catalogue


def _http_fetch(base_url: str, seen: list[str]):
    def fetch(endpoint_id: str) -> dict:
        seen.append(endpoint_id)
        response = httpx.get(f"{base_url}/api/openapi/queue/openapi.json", params={"endpoint_id": endpoint_id},
                             timeout=10)
        response.raise_for_status()
        return response.json()

    return fetch


def test_a_model_not_bundled_is_fetched_from_the_emulator_and_validated(emulator, tmp_path: Path) -> None:
    seen: list[str] = []
    fetch = _http_fetch(emulator.url, seen)
    with pytest.raises(UnknownModelError):
        catalog.get("fal-ai/fast-sdxl")
    with pytest.raises(ValidationError) as caught:
        validate("fal-ai/fast-sdxl", {"prompt": 3, "num_images": 0, "image_size": "huge", "format": "gif",
                                      "guidance_scale": True}, fetch=fetch, cache_dir=tmp_path)
    assert seen == ["fal-ai/fast-sdxl"]
    problems = {p.field: p for p in caught.value.problems}
    assert set(problems) == {"prompt", "num_images", "image_size", "format", "guidance_scale"}
    assert problems["format"].allowed == "jpeg, png"
    assert "square_hd" in problems["image_size"].allowed
    assert any(r.path.startswith("/api/openapi/queue/openapi.json") for r in emulator.requests)
    ok = validate("fal-ai/fast-sdxl", {"prompt": "a cat", "num_images": 2, "format": "png"}, fetch=fetch)
    assert ok.spec.source == "openapi" and seen == ["fal-ai/fast-sdxl"]  # registered: no second fetch


def test_the_emulator_serves_the_catalogue_document(emulator) -> None:
    seen: list[str] = []
    spec = catalog.get("kling-o3-edit")
    doc = _http_fetch(emulator.url, seen)(spec.id)
    assert spec_from_openapi(doc, spec.id) == dataclasses.replace(spec, aliases=(), source="openapi")
