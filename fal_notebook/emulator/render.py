"""Real media for emulated outputs: Pillow images of the requested size and format, one small cached MP4.

Sizes follow the inputs the way fal's models do (``aspect_ratio`` + ``resolution``, ``image_size`` presets or
``{width, height}``), so a test can check the pixels, not just the JSON.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ..catalog import IMAGE_SIZE_PRESETS

__all__ = ["image_size_for", "render_image", "sample_mp4", "IMAGE_FORMATS"]

IMAGE_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg"),
                 "webp": ("WEBP", "image/webp")}
_LONG_SIDE = {"1K": 1024, "2K": 2048, "4K": 2048}  # 4K capped (same exact ratio) to keep tests fast
_RATIO = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
_MAX_SIDE = 2048


def _ratio_size(ratio: str, long_side: int) -> tuple[int, int]:
    """The largest size with exactly ``a:b`` whose long side is at most ``long_side``."""
    match = _RATIO.match(ratio)
    if not match:
        return long_side, long_side
    a, b = int(match.group(1)), int(match.group(2))
    if a <= 0 or b <= 0:
        return long_side, long_side
    k = max(1, long_side // max(a, b))
    return a * k, b * k


def image_size_for(arguments: dict[str, Any], source: tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) implied by the request's size fields. ``source`` is the input image's size, which
    ``aspect_ratio: auto`` keeps (scaled to the resolution's long side); square without it."""
    size = arguments.get("image_size")
    if isinstance(size, dict) and "width" in size and "height" in size:
        w, h = int(size["width"]), int(size["height"])
        scale = min(1.0, _MAX_SIDE / max(w, h, 1))
        return max(1, round(w * scale)), max(1, round(h * scale))
    if isinstance(size, str) and size in IMAGE_SIZE_PRESETS:
        return IMAGE_SIZE_PRESETS[size]
    long_side = _LONG_SIDE.get(str(arguments.get("resolution", "1K")).upper(), 1024)
    ratio = arguments.get("aspect_ratio")
    if isinstance(ratio, str) and ratio != "auto":
        return _ratio_size(ratio, long_side)
    if source is not None and min(source) > 0:
        scale = long_side / max(source)
        return max(1, round(source[0] * scale)), max(1, round(source[1] * scale))
    return long_side, long_side


def render_image(width: int, height: int, fmt: str, text: str, index: int = 0,
                 seed: int | None = None) -> tuple[bytes, str]:
    """A gradient labelled with ``text`` (via :func:`fal_notebook.media.make_test_image`): (bytes, type).

    With a ``seed``, coloured shapes placed by that seed (and the image's index) cover it, so variations of
    one prompt look different at a glance, and the same seed draws the same picture, as a real model would."""
    pil_format, content_type = IMAGE_FORMATS.get(fmt.lower(), IMAGE_FORMATS["png"])
    label = f"fal emulator #{index + 1} {width}x{height} {text[:120]}"
    data = _labelled(width, height, pil_format.lower(), label)
    if seed is None:
        return data, content_type
    return _with_shapes(data, pil_format, seed * 16 + index, f"seed {seed}"), content_type


@functools.lru_cache(maxsize=8)
def _labelled(width: int, height: int, fmt: str, label: str) -> bytes:
    """The labelled gradient, made once per size and label: a batch of one prompt draws the same one each time
    (the seed's shapes are what differ), and drawing it was most of a result's cost."""
    from fal_notebook.media import make_test_image

    return make_test_image(width, height, fmt, label)


def _with_shapes(data: bytes, pil_format: str, seed: int, caption: str) -> bytes:
    import io
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(max(2, min(width, height) // 10), max(3, min(width, height) // 3))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x - r, y - r, x + r, y + r], fill=colour)
    draw.text((8, max(0, height - 20)), caption, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, pil_format)
    return out.getvalue()


@functools.lru_cache(maxsize=1)
def sample_mp4() -> bytes:
    """A short, valid H.264 MP4, made once per process."""
    from fal_notebook.media import make_mp4

    return make_mp4(320, 180, 1.0, fps=8)
