"""What a request will cost: how many billing units an input asks for, price × quantity, and the price cache.

fal prices each model per billing ``unit`` (``GET /v1/models/pricing``: ``unit_price``, ``unit``, ``currency``;
fal's pricing page: "per image or per megapixel" for image models, "per second or per video" for video
models, "per request or per output unit" for others). The quantity follows the unit:

* image units (``image``, ``images``): ``num_images`` (the model's default, else 1);
* megapixels: the requested size (``image_size`` preset or ``{width, height}``, ``aspect_ratio`` +
  ``resolution``, ``width``/``height``) in millions of pixels, × ``num_images``;
* seconds of video or audio (``second``, ``video_second``…): ``duration`` (the default, else the model's longest
  accepted input video, else 5 s), minutes likewise ÷ 60;
* anything else (``request``, ``call``, ``video``, GPU-time units no input can predict): 1 per request.

Pure functions over plain values, so the emulator bills with the same rules it is checked against. The price
cache is one JSON file (a day's life by default); a stale entry is still used when fal cannot be reached.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._files import IMAGE_SIZE_PRESETS, write_json_atomic

__all__ = ["unit_kind", "quantity", "image_size", "estimate_for", "cost_of", "PRICE_MAX_AGE", "load_prices",
           "save_prices", "ESTIMATE_KEYS", "BILLED_STATES", "UNBILLED_STATES", "combine_estimates"]

PRICE_MAX_AGE = 24 * 3600.0
ESTIMATE_KEYS = ("model", "unit_price", "unit", "quantity", "total", "currency")
DEFAULT_SECONDS = 5.0
PRESETS = IMAGE_SIZE_PRESETS
_LONG_SIDE = {"0.5K": 512, "1K": 1024, "2K": 2048, "4K": 4096}
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def unit_kind(unit: str) -> str:
    """``image``, ``megapixel``, ``second``, ``minute`` or ``request`` for fal's unit names (liberal: any case,
    plural, ``per ``/``video_`` prefixes). GPU-time units (``compute_second``, ``gpu_second``) are ``request``:
    no input says how long a runner will take."""
    text = unit.strip().lower().replace("-", "_").replace(" ", "_").removeprefix("per_")
    if any(word in text for word in ("compute", "gpu", "machine")):
        return "request"
    if "megapixel" in text or text in {"mp", "mps", "mpx"}:
        return "megapixel"
    if "minute" in text:
        return "minute"
    if "second" in text or text in {"s", "sec", "secs"}:
        return "second"
    if "image" in text:
        return "image"
    return "request"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = _NUMBER.search(value)
        return float(match.group()) if match else None
    return None


def _count(arguments: Mapping[str, Any], defaults: Mapping[str, Any]) -> int:
    for source in (arguments, defaults):
        value = _number(source.get("num_images"))
        if value is not None and value >= 1:
            return int(value)
    return 1


def _ratio_size(ratio: str, long_side: int) -> tuple[int, int]:
    match = _RATIO.match(ratio)
    if not match or float(match.group(1)) <= 0 or float(match.group(2)) <= 0:
        return long_side, long_side
    a, b = float(match.group(1)), float(match.group(2))
    scale = long_side / max(a, b)
    return round(a * scale), round(b * scale)


def image_size(arguments: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """(width, height) an input asks for; 1024×1024 when it says nothing (fal's usual default)."""
    merged = {**(defaults or {}), **{k: v for k, v in arguments.items() if v is not None}}
    size = merged.get("image_size")
    if isinstance(size, Mapping):
        width, height = _number(size.get("width")), _number(size.get("height"))
        if width and height:
            return int(width), int(height)
    if isinstance(size, str) and size in PRESETS:
        return PRESETS[size]
    width, height = _number(merged.get("width")), _number(merged.get("height"))
    if width and height:
        return int(width), int(height)
    long_side = _LONG_SIDE.get(str(merged.get("resolution") or "1K").upper(), 1024)
    ratio = merged.get("aspect_ratio")
    if isinstance(ratio, str) and ratio != "auto":
        return _ratio_size(ratio, long_side)
    return long_side, long_side


def _seconds(arguments: Mapping[str, Any], defaults: Mapping[str, Any], limits: Mapping[str, Any]) -> float:
    for source in (arguments, defaults):
        value = _number(source.get("duration"))
        if value is not None and value > 0:
            return value
    video = limits.get("video") if isinstance(limits.get("video"), Mapping) else {}
    longest = _number(video.get("max_duration")) if video else None
    return longest if longest else DEFAULT_SECONDS


def quantity(unit: str, arguments: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
             limits: Mapping[str, Any] | None = None) -> float:
    """Billing units one request with ``arguments`` asks for (see the module docstring)."""
    defaults, limits = defaults or {}, limits or {}
    kind = unit_kind(unit)
    if kind == "image":
        return float(_count(arguments, defaults))
    if kind == "megapixel":
        width, height = image_size(arguments, defaults)
        return width * height / 1_000_000 * _count(arguments, defaults)
    if kind == "second":
        return _seconds(arguments, defaults, limits)
    if kind == "minute":
        return _seconds(arguments, defaults, limits) / 60
    return 1.0


def estimate_for(model: str, price: Mapping[str, Any], requests: list[Mapping[str, Any]],
                 defaults: Mapping[str, Any] | None = None, limits: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """``{"model", "unit_price", "unit", "quantity", "total", "currency"}`` for one or more requests to one model
    (``price`` holds ``unit_price``, ``unit``, ``currency``)."""
    unit, unit_price = str(price["unit"]), float(price["unit_price"])
    total_quantity = sum(quantity(unit, args, defaults, limits) for args in requests)
    return {"model": model, "unit_price": unit_price, "unit": unit, "quantity": round(total_quantity, 6),
            "total": round(unit_price * total_quantity, 9), "currency": str(price.get("currency") or "USD")}


def combine_estimates(estimates: list[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """One estimate for several (a group): quantities and totals summed. ``None`` when any is missing, or when
    they mix models, units, prices or currencies (no one line says what they cost)."""
    found = [e for e in estimates if e]
    if not found or len(found) != len(estimates):
        return None
    keys = ("model", "unit", "unit_price", "currency")
    if len({tuple(e.get(k) for k in keys) for e in found}) != 1:
        return None
    return {**{k: found[0].get(k) for k in ESTIMATE_KEYS},
            "quantity": round(sum(float(e["quantity"]) for e in found), 6),
            "total": round(sum(float(e["total"]) for e in found), 9)}


BILLED_STATES = frozenset({"COMPLETED", "EXPIRED"})  # fal produced an output (an expired one was billed too)
UNBILLED_STATES = frozenset({"FAILED", "CANCELLED"})  # fal bills only successful outputs


def _output_megapixels(result: Mapping[str, Any]) -> float | None:
    images = result.get("images") if isinstance(result.get("images"), list) else []
    sizes = [(_number(i.get("width")), _number(i.get("height"))) for i in images if isinstance(i, Mapping)]
    if not sizes or any(not w or not h for w, h in sizes):
        return None
    return sum(w * h for w, h in sizes) / 1_000_000  # type: ignore[operator]


def cost_of(estimate: Mapping[str, Any] | None, state: str, result: Mapping[str, Any] | None = None
            ) -> float | None:
    """What a job cost once it ended: the estimate's total for a produced output (per megapixel: recomputed
    from the output images' sizes when fal reports them), 0 for a failure or a cancel (fal bills only
    successful outputs), ``None`` while unfinished or with no price known."""
    if not estimate or state not in BILLED_STATES | UNBILLED_STATES:
        return None
    if state in UNBILLED_STATES:
        return 0.0
    total = _number(estimate.get("total"))
    if unit_kind(str(estimate.get("unit", ""))) == "megapixel" and isinstance(result, Mapping):
        megapixels, unit_price = _output_megapixels(result), _number(estimate.get("unit_price"))
        if megapixels is not None and unit_price is not None:
            return round(unit_price * megapixels, 9)
    return total


# ---------------------------------------------------------------------------------------------- cache


def _cache_file(cache_dir: Path | str) -> Path:
    return Path(cache_dir).expanduser() / "prices.json"


def load_prices(cache_dir: Path | str, *, max_age: float | None = PRICE_MAX_AGE) -> dict[str, dict[str, Any]]:
    """Cached prices by endpoint id, each ``{"unit_price", "unit", "currency", "fetched_at"}``; entries older
    than ``max_age`` seconds are left out (``None``: every entry, however old)."""
    try:
        data = json.loads(_cache_file(cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    now = time.time()
    fresh = {}
    for endpoint_id, entry in data.items():
        if not isinstance(entry, dict) or _number(entry.get("unit_price")) is None or not entry.get("unit"):
            continue
        fetched = _number(entry.get("fetched_at")) or 0.0
        if max_age is None or now - fetched <= max_age:
            fresh[endpoint_id] = entry
    return fresh


def save_prices(cache_dir: Path | str, prices: Mapping[str, Mapping[str, Any]]) -> None:
    """Merge ``prices`` (endpoint id → ``unit_price``/``unit``/``currency``) into the cache, stamped now;
    written atomically (temp file + rename)."""
    if not prices:
        return
    merged = load_prices(cache_dir, max_age=None)
    now = time.time()
    for endpoint_id, entry in prices.items():
        merged[endpoint_id] = {"unit_price": float(entry["unit_price"]), "unit": str(entry["unit"]),
                               "currency": str(entry.get("currency") or "USD"), "fetched_at": now}
    write_json_atomic(_cache_file(cache_dir), merged)
