"""The quantity rules (``catalog/pricing.py``): units, sizes, durations, and the day-long price cache."""

from __future__ import annotations

import json
import os
import time

import pytest

from fal_notebook.catalog.pricing import (
    estimate_for,
    image_size,
    load_prices,
    quantity,
    save_prices,
    unit_kind,
)


@pytest.mark.parametrize(("unit", "kind"), [
    ("image", "image"), ("Images", "image"), ("per image", "image"), ("megapixel", "megapixel"),
    ("megapixels", "megapixel"), ("MP", "megapixel"), ("second", "second"), ("video_second", "second"),
    ("seconds", "second"), ("minute", "minute"), ("request", "request"), ("video", "request"),
    ("compute_second", "request"), ("gpu-seconds", "request"), ("1000 characters", "request"),
])
def test_unit_names_are_read_liberally(unit, kind):
    assert unit_kind(unit) == kind


def test_images_follow_num_images_and_the_default():
    assert quantity("image", {"num_images": 2}) == 2
    assert quantity("image", {}, {"num_images": 3}) == 3
    assert quantity("image", {"num_images": "4"}) == 4
    assert quantity("image", {}) == 1


def test_megapixels_follow_the_requested_size():
    assert quantity("megapixel", {"image_size": "landscape_16_9", "num_images": 2}) == pytest.approx(
        1024 * 576 * 2 / 1e6)
    assert quantity("megapixel", {"image_size": {"width": 2000, "height": 1000}}) == pytest.approx(2.0)
    assert image_size({"aspect_ratio": "16:9", "resolution": "2K"}) == (2048, 1152)
    assert image_size({}, {"image_size": "square"}) == (512, 512)
    assert image_size({}) == (1024, 1024)


def test_seconds_follow_duration_then_default_then_the_longest_input():
    assert quantity("second", {"duration": "10"}) == 10
    assert quantity("second", {}, {"duration": "5"}) == 5
    assert quantity("second", {}, {}, {"video": {"max_duration": 10}}) == 10
    assert quantity("minute", {"duration": 30}) == 0.5
    assert quantity("request", {"duration": 30, "num_images": 4}) == 1


def test_estimate_sums_requests_with_the_documented_keys():
    price = {"unit_price": 0.05, "unit": "second", "currency": "USD"}
    out = estimate_for("fal-ai/kling", price, [{"duration": 5}, {"duration": "10"}])
    assert out == {"model": "fal-ai/kling", "unit_price": 0.05, "unit": "second", "quantity": 15.0,
                   "total": pytest.approx(0.75), "currency": "USD"}


def test_price_cache_lives_a_day_and_keeps_stale_entries_for_offline_use(tmp_path):
    save_prices(tmp_path, {"a/b": {"unit_price": 0.1, "unit": "image", "currency": "USD"}})
    assert load_prices(tmp_path)["a/b"]["unit_price"] == 0.1
    data = json.loads((tmp_path / "prices.json").read_text())
    data["a/b"]["fetched_at"] = time.time() - 2 * 86400
    (tmp_path / "prices.json").write_text(json.dumps(data))
    assert load_prices(tmp_path) == {}
    assert load_prices(tmp_path, max_age=None)["a/b"]["unit"] == "image"
    (tmp_path / "prices.json").write_text("not json")
    assert load_prices(tmp_path) == {}
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


def test_a_cached_schema_expires_but_serves_offline(tmp_path):
    from fal_notebook import catalog
    from fal_notebook.catalog import _registered
    from fal_notebook.catalog.openapi import cache_path, openapi_from_spec, save_cached

    doc = openapi_from_spec(catalog.get("flux-dev"))
    save_cached(doc, "acme/expiring", tmp_path)
    old = time.time() - 30 * 86400
    os.utime(cache_path("acme/expiring", tmp_path), (old, old))
    fetched: list[str] = []

    def fetch(endpoint_id: str) -> dict:
        fetched.append(endpoint_id)
        return doc

    try:
        assert catalog.lookup("acme/expiring", fetch=fetch, cache_dir=tmp_path).id == "acme/expiring"
        assert fetched == ["acme/expiring"]  # older than a week: fetched again, and the copy renewed
        assert time.time() - cache_path("acme/expiring", tmp_path).stat().st_mtime < 60
        _registered.pop("acme/expiring")
        os.utime(cache_path("acme/expiring", tmp_path), (old, old))

        def offline(endpoint_id: str) -> dict:
            raise OSError("no network")

        assert catalog.lookup("acme/expiring", fetch=offline, cache_dir=tmp_path).source == "openapi"
    finally:
        _registered.pop("acme/expiring", None)
