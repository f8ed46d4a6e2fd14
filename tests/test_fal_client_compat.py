"""The official fal-client 1.0.3, pointed at the emulator, works end to end: proof the emulator speaks fal's protocol.

Only module globals are patched (scoped with monkeypatch), exactly as fal-queue-protocol.md §3 describes.
"""

from __future__ import annotations

import io

import fal_client
import fal_client.client as fal_module
import httpx
import pytest
from PIL import Image

KEY = "compat-id:compat-secret"
MODEL = "fal-ai/nano-banana-pro"


@pytest.fixture
def client(emulator, monkeypatch) -> fal_client.SyncClient:
    base = emulator.url
    monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", base + "/")
    monkeypatch.setattr(fal_module, "RUN_URL_FORMAT", base + "/")
    monkeypatch.setattr(fal_module, "REST_URL", base)
    monkeypatch.setattr(fal_module, "CDN_URL", base)
    monkeypatch.setattr(fal_module, "BASE_DELAY", 0.01)
    sync = fal_client.SyncClient(key=KEY)
    yield sync
    sync._client.close()


def test_submit_status_result(emulator, client, wait_for):
    handle = client.submit(MODEL, {"prompt": "a lighthouse", "aspect_ratio": "16:9"})
    assert handle.status_url.startswith(emulator.url)
    first = client.status(MODEL, handle.request_id, with_logs=True)
    assert isinstance(first, (fal_client.Queued, fal_client.InProgress, fal_client.Completed))
    final = wait_for(lambda: isinstance(s := handle.status(with_logs=True), fal_client.Completed) and s)
    assert final.error is None and final.metrics["inference_time"] > 0
    result = handle.get()
    image = result["images"][0]
    assert (image["width"], image["height"]) == (1024, 576)
    pixels = Image.open(io.BytesIO(httpx.get(image["url"]).content))
    assert pixels.size == (1024, 576) and pixels.format == "PNG"
    assert client.result(MODEL, handle.request_id) == result  # module-style lookup by app + id


def test_subscribe_with_logs(emulator, client):
    emulator.configure(run_seconds=1.0, log_lines=4)  # fal_client polls every 0.1 s: it must see IN_PROGRESS
    updates, enqueued = [], []
    result = client.subscribe(MODEL, {"prompt": "a fox", "num_images": 2}, with_logs=True,
                              on_enqueue=enqueued.append, on_queue_update=updates.append)
    assert len(result["images"]) == 2 and enqueued
    in_progress = [u for u in updates if isinstance(u, fal_client.InProgress)]
    assert in_progress and all(isinstance(u.logs, list) for u in in_progress)
    final_logs = [u for u in updates if isinstance(u, fal_client.Completed)][-1].logs
    assert [entry["message"] for entry in final_logs][0] == "Loading model" and len(final_logs) == 4
    seen = [r for r in emulator.requests if r.path.endswith("/status")]
    assert {"logs=true", "logs=false"} <= {r.query for r in seen}  # fal_client's bool spelling
    assert all(r.auth_scheme == "Key" for r in seen)


def test_cancel_queued_request(emulator, client, wait_for):
    emulator.hold()
    handle = client.submit(MODEL, {"prompt": "never runs"})
    assert isinstance(handle.status(), fal_client.Queued)
    handle.cancel()
    final = wait_for(lambda: isinstance(s := handle.status(), fal_client.Completed) and s)
    assert final.error and final.error_type == "request_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError):
        handle.get()


def test_cancel_completed_request_is_an_http_error(emulator, client):
    handle = client.submit(MODEL, {"prompt": "done soon"})
    handle.get()
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        handle.cancel()
    assert caught.value.status_code == 400


def test_invalid_input_surfaces_as_422_detail_list(emulator, client):
    handle = client.submit(MODEL, {"prompt": "x", "aspect_ratio": "7:3"})
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 422
    assert isinstance(caught.value.message, list) and caught.value.message[0]["loc"] == ["body", "aspect_ratio"]


def test_runner_error_carries_error_type(emulator, client):
    emulator.configure(scenario="error")
    handle = client.submit(MODEL, {"prompt": "x"})
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 503 and caught.value.error_type == "runner_disconnected"


def test_upload_file_round_trip(emulator, client, tmp_path):
    source = tmp_path / "cat.png"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(source)
    url = client.upload_file(source)
    assert url.startswith(emulator.url + "/files/")
    served = httpx.get(url)
    assert served.content == source.read_bytes() and served.headers["content-type"] == "image/png"
    uploads = [r for r in emulator.requests if r.path == "/files/upload"]
    assert uploads and all(r.auth_scheme == "Bearer" for r in uploads)  # the storage token, never the key
    assert not [r for r in emulator.requests if r.path.startswith("/files/") and r.method == "GET" and r.authorized]


def test_upload_falls_back_to_signed_url(emulator, client):
    url = client.upload(b"hello fal", "text/plain", "note.txt", repository="fal")
    assert httpx.get(url).content == b"hello fal"
    put = [r for r in emulator.requests if r.method == "PUT" and r.path.startswith("/uploads/")]
    assert put and "X-Goog-Signature=" in put[0].query


def test_retries_ingress_502(emulator, client):
    emulator.configure(scenario="ingress_502", fault_count=3)
    handle = client.submit(MODEL, {"prompt": "x"})
    assert handle.request_id
    posts = [r for r in emulator.requests if r.method == "POST"]
    assert len(posts) == 4  # three 502s retried, then accepted


def test_retries_rate_limit(emulator, client):
    emulator.configure(scenario="rate_limit", fault_count=2)
    result = client.subscribe(MODEL, {"prompt": "x"})
    assert result["images"]
    assert emulator.state.gate.used("rate_limit") == 2


def test_does_not_retry_app_503(emulator, client):
    emulator.configure(scenario="app_503", fault_count=1)
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        client.submit(MODEL, {"prompt": "x"})
    assert caught.value.status_code == 503
    assert len([r for r in emulator.requests if r.method == "POST"]) == 1
