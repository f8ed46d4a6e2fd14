"""``aspect_ratio: auto`` (the edit models' default) keeps the input image's ratio, as fal's models do, when the
emulator serves that image itself; any other input gives a square."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

EDIT = "fal-ai/nano-banana-pro/edit"


def _result(emu_http, completed, model: str, arguments: dict) -> dict:
    reply = emu_http.post(f"/{model}", json=arguments)
    assert reply.status_code == 200, reply.text
    completed(reply.json()["status_url"])
    result = emu_http.get(reply.json()["response_url"])
    assert result.status_code == 200, result.text
    return result.json()


def _size(url: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(httpx.get(url).content)).size


@pytest.mark.parametrize(("ratio", "expected"), [("16:9", (1024, 576)), ("9:16", (576, 1024))])
@pytest.mark.parametrize("explicit", [True, False])
def test_auto_keeps_the_ratio_of_an_image_the_emulator_serves(emulator, emu_http, completed, ratio, expected,
                                                              explicit):
    source = _result(emu_http, completed, "fal-ai/nano-banana-pro", {"prompt": "a dune", "aspect_ratio": ratio})
    arguments = {"prompt": "make it night", "image_urls": [source["images"][0]["url"]]}
    if explicit:
        arguments["aspect_ratio"] = "auto"
    image = _result(emu_http, completed, EDIT, arguments)["images"][0]
    assert _size(image["url"]) == expected == (image["width"], image["height"])


def test_auto_with_a_foreign_image_is_square_and_a_named_ratio_wins(emulator, emu_http, completed):
    foreign = _result(emu_http, completed, EDIT, {"prompt": "x", "image_urls": ["https://example.com/in.png"]})
    assert _size(foreign["images"][0]["url"]) == (1024, 1024)
    source = _result(emu_http, completed, "fal-ai/nano-banana-pro", {"prompt": "a dune", "aspect_ratio": "16:9"})
    named = _result(emu_http, completed, EDIT, {"prompt": "x", "aspect_ratio": "1:1",
                                                "image_urls": [source["images"][0]["url"]]})
    assert _size(named["images"][0]["url"]) == (1024, 1024)
