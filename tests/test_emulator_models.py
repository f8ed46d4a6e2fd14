"""Emulated models: real pixels at the requested size and format, a real MP4, fal-style 422s, per-model OpenAPI."""

from __future__ import annotations

import io

import av
import httpx
import pytest
from PIL import Image

from fal_notebook import catalog
from fal_notebook.emulator.models import known_model_ids

IMAGE_URL = "https://example.com/input.png"
VIDEO_URL = "https://example.com/input.mp4"


def run(emu_http, completed, model: str, arguments: dict) -> httpx.Response:
    reply = emu_http.post(f"/{model}", json=arguments)
    assert reply.status_code == 200, reply.text
    completed(reply.json()["status_url"])
    return emu_http.get(reply.json()["response_url"])


def fetch_image(url: str) -> Image.Image:
    response = httpx.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "fmt", "size"),
    [
        ("16:9", "1K", "png", (1024, 576)),
        ("9:16", "1K", "jpeg", (576, 1024)),
        ("21:9", "2K", "webp", (2037, 873)),
        ("1:1", "1K", "png", (1024, 1024)),
        ("4:3", "4K", "jpeg", (2048, 1536)),
    ],
)
def test_nano_banana_pixels_follow_aspect_ratio_resolution_and_format(emulator, emu_http, completed,
                                                                        aspect_ratio, resolution, fmt, size):
    result = run(emu_http, completed, "fal-ai/nano-banana-pro",
                 {"prompt": "a lighthouse", "aspect_ratio": aspect_ratio, "resolution": resolution,
                  "output_format": fmt})
    assert result.status_code == 200
    entry = result.json()["images"][0]
    image = fetch_image(entry["url"])
    assert image.size == size == (entry["width"], entry["height"])
    w, h = size
    a, b = (int(x) for x in aspect_ratio.split(":"))
    assert w * b == h * a  # the exact ratio, not an approximation
    assert image.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
    assert entry["content_type"] == f"image/{fmt}"
    assert entry["file_size"] == len(httpx.get(entry["url"]).content)


def test_num_images_and_output_fields(emulator, emu_http, completed):
    body = run(emu_http, completed, "fal-ai/flux/dev",
               {"prompt": "two cats", "num_images": 3, "image_size": "landscape_4_3", "seed": 42}).json()
    assert len(body["images"]) == 3 and len({i["url"] for i in body["images"]}) == 3
    assert {fetch_image(i["url"]).size for i in body["images"]} == {(1024, 768)}
    assert body["seed"] == 42 and body["has_nsfw_concepts"] == [False] * 3 and body["prompt"] == "two cats"
    assert body["timings"]["inference"] > 0


def test_custom_image_size(emulator, emu_http, completed):
    body = run(emu_http, completed, "fal-ai/flux/schnell",
               {"prompt": "x", "image_size": {"width": 640, "height": 360}}).json()
    assert fetch_image(body["images"][0]["url"]).size == (640, 360)


def test_video_model_returns_a_real_mp4(emulator, emu_http, completed):
    body = run(emu_http, completed, "fal-ai/kling-video/v2.1/standard/image-to-video",
               {"prompt": "waves", "image_url": IMAGE_URL}).json()
    video = body["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"].endswith(".mp4")
    data = httpx.get(video["url"]).content
    assert len(data) == video["file_size"]
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.width > 0
        assert sum(1 for _ in container.decode(video=0)) > 0


def test_video_to_video_model(emulator, emu_http, completed):
    result = run(emu_http, completed, "fal-ai/kling-video/o3/pro/video-to-video/edit",
                 {"prompt": "make it snow @Video1", "video_url": VIDEO_URL})
    assert result.status_code == 200 and result.json()["video"]["url"].startswith(emulator.url)


def test_invalid_input_completes_with_error_and_422_detail_list(emulator, emu_http, completed):
    reply = emu_http.post("/fal-ai/nano-banana-pro", json={"aspect_ratio": "7:3", "num_images": "two"}).json()
    status = completed(reply["status_url"])
    assert status["status"] == "COMPLETED" and status["error"]
    result = emu_http.get(reply["response_url"])
    assert result.status_code == 422
    detail = result.json()["detail"]
    assert isinstance(detail, list)
    by_field = {tuple(entry["loc"]): entry for entry in detail}
    assert by_field[("body", "prompt")]["type"] == "missing"
    assert ("body", "aspect_ratio") in by_field and ("body", "num_images") in by_field
    assert all(set(entry) >= {"loc", "msg", "type"} for entry in detail)


def test_non_json_body_is_a_422(emulator, emu_http, completed):
    reply = emu_http.post("/fal-ai/flux/dev", content=b"not json").json()
    completed(reply["status_url"])
    assert emu_http.get(reply["response_url"]).status_code == 422


def test_extra_model_outside_the_catalogue(emulator, emu_http, completed):
    assert "fal-ai/fast-sdxl" not in {spec.id for spec in catalog.models()}  # else it proves nothing
    body = run(emu_http, completed, "fal-ai/fast-sdxl", {"prompt": "x", "image_size": "portrait_16_9"}).json()
    image = fetch_image(body["images"][0]["url"])
    assert image.size == (576, 1024) and image.format == "JPEG"  # the schema's default format
    bad = run(emu_http, completed, "fal-ai/fast-sdxl", {"prompt": "x", "num_inference_steps": 500})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "num_inference_steps"]


@pytest.mark.parametrize("endpoint_id", known_model_ids())
def test_openapi_for_every_known_model(emulator, endpoint_id):
    response = httpx.get(f"{emulator.url}/api/openapi/queue/openapi.json", params={"endpoint_id": endpoint_id})
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.0") and doc["info"]["x-fal-metadata"]["endpointId"] == endpoint_id
    schemas = doc["components"]["schemas"]
    inputs = [name for name in schemas if name.endswith("Input")]
    outputs = [name for name in schemas if name.endswith("Output")]
    assert inputs and outputs and "x-fal-order-properties" in schemas[inputs[0]]
    assert f"/{endpoint_id}" in doc["paths"]
    assert f"/{endpoint_id}/requests/{{request_id}}/status" in doc["paths"]
    assert not [r for r in emulator.requests if r.authorized]  # the OpenAPI route is public


def test_openapi_for_unknown_model_is_404(emulator):
    response = httpx.get(f"{emulator.url}/api/openapi/queue/openapi.json", params={"endpoint_id": "fal-ai/nope"})
    assert response.status_code == 404 and "not found" in response.json()["detail"]


def test_every_catalogue_model_is_served(emulator):
    assert {spec.id for spec in catalog.models()} <= set(known_model_ids())


def test_extra_model_document_builds_a_catalogue_spec(emulator):
    from fal_notebook.catalog.openapi import spec_from_openapi

    doc = httpx.get(f"{emulator.url}/api/openapi/queue/openapi.json",
                    params={"endpoint_id": "fal-ai/fast-sdxl"}).json()
    spec = spec_from_openapi(doc, "fal-ai/fast-sdxl")
    assert spec.id == "fal-ai/fast-sdxl" and spec.output == "images" and "prompt" in spec.required
    assert list(spec.input_schema["properties"])[:2] == ["prompt", "negative_prompt"]
