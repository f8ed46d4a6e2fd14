"""The platform client (``client/platform.py``) against the emulator's ``/v1`` routes, and its bounds and error
handling against hand-made answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from fal_notebook.client.platform import AsyncPlatformClient, PlatformClient
from fal_notebook.config import ApiKey, Endpoints, Settings
from fal_notebook.emulator.platform_routes import PRICES
from fal_notebook.errors import AuthError, RequestError, UnknownModelError

KEY = "abcd1234:platform-secret-value"


def _mock(handler, **endpoints) -> AsyncPlatformClient:
    settings = Settings(key=ApiKey(KEY), endpoints=Endpoints(**endpoints), home=Path("/nonexistent"))
    return AsyncPlatformClient(settings, transport=httpx.MockTransport(handler))


def _run(coro):
    return asyncio.run(coro)


def test_search_finds_a_model_that_is_not_bundled(fal_env, emulator):
    from fal_notebook import catalog

    found = PlatformClient(fal_env).models(q="sdxl")
    assert [m.endpoint_id for m in found] == ["fal-ai/fast-sdxl"]
    assert "fal-ai/fast-sdxl" not in {s.id for s in catalog.bundled()}
    assert found[0].category == "text-to-image" and found[0].openapi is None
    seen = [r for r in emulator.requests if r.path == "/v1/models"]
    assert seen and seen[-1].query == "q=sdxl" and seen[-1].auth_scheme == "Key"


def test_category_filter_and_every_page_followed(fal_env, emulator):
    client = PlatformClient(fal_env)
    videos = client.models(category="image-to-video", limit=1)
    assert [m.endpoint_id for m in videos] == ["fal-ai/kling-video/v2.1/standard/image-to-video"]
    everything = client.models(limit=2)
    assert len(everything) == len({m.endpoint_id for m in everything}) >= 9
    pages = [r for r in emulator.requests if r.path == "/v1/models" and "limit=2" in r.query]
    assert len(pages) == -(-len(everything) // 2) and "cursor=" in pages[-1].query


def test_openapi_document_by_endpoint_id(fal_env, emulator):
    doc = PlatformClient(fal_env).openapi("fal-ai/fast-sdxl")
    assert "prompt" in doc["components"]["schemas"]["FastSdxlInput"]["properties"]
    query = [r.query for r in emulator.requests if r.path == "/v1/models"][-1]
    assert "endpoint_id=fal-ai%2Ffast-sdxl" in query and "expand=openapi-3.0" in query
    with pytest.raises(UnknownModelError):
        PlatformClient(fal_env).openapi("fal-ai/no-such-model")


def test_prices_and_estimates_as_served(fal_env):
    client = PlatformClient(fal_env)
    prices = client.prices(["fal-ai/flux/dev", "fal-ai/kling-video/v2.1/standard/image-to-video", "fal-ai/nope"])
    assert set(prices) == {"fal-ai/flux/dev", "fal-ai/kling-video/v2.1/standard/image-to-video"}
    assert (prices["fal-ai/flux/dev"].unit_price, prices["fal-ai/flux/dev"].unit) == PRICES["fal-ai/flux/dev"]
    estimate = client.estimate({"fal-ai/nano-banana-pro": 4})
    assert (estimate.estimate_type, estimate.total_cost, estimate.currency) == ("unit_price", 0.6, "USD")
    calls = client.estimate({"fal-ai/nano-banana-pro": 2}, estimate_type="historical_api_price")
    assert calls.total_cost == pytest.approx(0.3)


def test_usage_and_request_history_come_from_the_jobs_run(fal_env, emulator, emu_http, completed):
    submitted = emu_http.post("/fal-ai/nano-banana-pro", json={"prompt": "a fox", "num_images": 2}).json()
    completed(submitted["status_url"])
    client = PlatformClient(fal_env)
    usage = client.usage()
    assert [(u.endpoint_id, u.quantity, u.cost) for u in usage] == [("fal-ai/nano-banana-pro", 2.0, 0.3)]
    series = client.usage(summary=False, endpoint_ids=["fal-ai/nano-banana-pro"])
    assert series and series[0].bucket and series[0].unit == "image"
    items = client.requests_by_endpoint("fal-ai/nano-banana-pro", payloads=True)
    assert [i.request_id for i in items] == [submitted["request_id"]]
    assert items[0].json_input == {"prompt": "a fox", "num_images": 2} and items[0].succeeded
    assert len(items[0].json_output["images"]) == 2
    assert client.requests_by_endpoint("fal-ai/nano-banana-pro")[0].json_input is None
    one = client.requests_by_endpoint("fal-ai/nano-banana-pro", request_id=submitted["request_id"])
    assert [i.request_id for i in one] == [submitted["request_id"]]
    query = [r.query for r in emulator.requests if r.path == "/v1/models/requests/by-endpoint"][0]
    assert "expand=payloads" in query and "limit=100" in query


def test_usage_without_admin_scope_is_an_auth_error(fal_env, emulator):
    emulator.configure(usage_access=False)
    with pytest.raises(AuthError) as caught:
        PlatformClient(fal_env).usage()
    assert caught.value.status_code == 403 and caught.value.error_type == "authorization_error"
    assert "ADMIN" in str(caught.value)


def test_the_key_goes_to_the_platform_origin_and_nowhere_else():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"prices": [], "next_cursor": None, "has_more": False})

    _run(_mock(answer).prices(["fal-ai/flux/dev"]))
    assert str(seen[0].url) == "https://api.fal.ai/v1/models/pricing?endpoint_id=fal-ai%2Fflux%2Fdev"
    assert seen[0].headers["authorization"] == f"Key {KEY}"
    _run(_mock(answer, platform="https://elsewhere.example").prices(["fal-ai/flux/dev"]))
    assert seen[1].url.host == "elsewhere.example"  # configured: an API origin, so it gets the key
    assert Endpoints(platform="https://elsewhere.example").api_origins >= {"https://elsewhere.example"}


def test_a_cursor_that_never_ends_is_bounded_and_a_repeated_one_stops():
    calls: list[str] = []

    def endless(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("cursor", ""))
        page = len(calls)
        return httpx.Response(200, json={"models": [{"endpoint_id": f"a/m{page}"}],
                                         "next_cursor": f"c{page}", "has_more": True})

    found = _run(_mock(endless).models(max_pages=5))
    assert len(found) == 5 and len(calls) == 5
    calls.clear()

    def stuck(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("cursor", ""))
        return httpx.Response(200, json={"models": [{"endpoint_id": "a/b"}], "next_cursor": "same",
                                         "has_more": True})

    _run(_mock(stuck).models())
    assert calls == ["", "same"]


def test_more_than_fifty_ids_go_in_batches():
    batches: list[list[str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        ids = request.url.params.get_list("endpoint_id")
        batches.append(ids)
        prices = [{"endpoint_id": i, "unit_price": "0.01", "unit": "image", "currency": "USD"} for i in ids]
        return httpx.Response(200, json={"prices": prices, "next_cursor": None, "has_more": False})

    found = _run(_mock(answer).prices([f"o/m{i}" for i in range(120)]))
    assert [len(b) for b in batches] == [50, 50, 20] and len(found) == 120
    assert found["o/m7"].unit_price == 0.01


def test_documented_error_body_becomes_a_readable_error():
    def refuse(request: httpx.Request) -> httpx.Response:
        body = {"error": {"type": "validation_error", "message": "endpoint_id is required",
                          "docs_url": "https://docs.fal.ai", "request_id": "req-1"}}
        return httpx.Response(422, json=body)

    with pytest.raises(RequestError) as caught:
        _run(_mock(refuse).prices(["x/y"]))
    assert caught.value.error_type == "validation_error" and caught.value.request_id == "req-1"
    assert "endpoint_id is required" in str(caught.value) and "HTTP 422" in str(caught.value)


def test_liberal_reading_of_sloppy_answers():
    def sloppy(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/estimate"):
            assert json.loads(request.content) == {"estimate_type": "unit_price",
                                                   "endpoints": {"a/b": {"unit_quantity": 3}}}
            return httpx.Response(200, json={"total_cost": "0.3"})
        return httpx.Response(200, json={"models": [{"id": "a/b", "title": "B"}, {"metadata": {}}, "junk"]})

    client = _mock(sloppy)
    models = _run(client.models())
    assert [(m.endpoint_id, m.display_name) for m in models] == [("a/b", "B")]
    estimate = _run(client.estimate({"a/b": 3}))
    assert (estimate.total_cost, estimate.estimate_type, estimate.currency) == (0.3, "unit_price", "USD")


def test_requests_are_sent_to_the_emulator_under_v1(fal_env, emulator):
    PlatformClient(fal_env).prices(["fal-ai/flux/dev"])
    assert [r.path for r in emulator.requests] == ["/v1/models/pricing"]
    assert emulator.requests[0].authorized


def test_keyless_model_search_is_allowed_but_pricing_needs_the_key(emulator):
    with httpx.Client(base_url=emulator.url) as http:
        assert http.get("/v1/models", params={"q": "flux"}).status_code == 200
        assert http.get("/v1/models/pricing", params={"endpoint_id": "fal-ai/flux/dev"}).status_code == 401


def test_an_error_echoing_the_key_is_redacted():
    def echo(request: httpx.Request) -> httpx.Response:
        header = request.headers["authorization"]
        return httpx.Response(401, json={"error": {"type": "authorization_error", "message": f"bad {header}",
                                                   "request_id": "r-9"}})

    with pytest.raises(AuthError) as caught:
        _run(_mock(echo).usage())
    text = f"{caught.value} {caught.value.detail!r}"
    assert KEY.split(":")[1] not in text and "***" in text and caught.value.request_id == "r-9"


def test_hostile_pages_are_read_without_failing():
    pages = iter([{"models": "not a list", "next_cursor": "2", "has_more": True},
                  {"models": [{"endpoint_id": "a/b", "metadata": ["x"]}, {"endpoint_id": 5}],
                   "next_cursor": None, "has_more": True}])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=next(pages))

    found = _run(_mock(answer).models())
    assert [m.endpoint_id for m in found] == ["a/b"]
