"""fal's status stream, media downloads, uploads and where the key may go (protocol reference §1.5, §3, §5).

Served by an ``httpx.MockTransport`` handler answering as fal's hosts do, with default ``Settings`` (no
``FAL_NOTEBOOK_ENDPOINT``): queue.fal.run, rest.fal.ai, v3.fal.media, the token's own ``base_url``, signed
URLs, fal.ai's OpenAPI, media on several CDNs.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from pathlib import Path

import httpx
import pytest
from test_protocol_conformance import KEY, RID, Fal, handle, ok, run, status_body

from fal_notebook.client import AsyncQueueClient
from fal_notebook.client import uploads as storage

API_HOSTS = {"queue.fal.run", "rest.fal.ai", "api.fal.ai"}  # api.fal.ai: the platform API (model list, prices)


def sse(*events: dict | str) -> httpx.Response:
    """An event stream: dicts become ``data:`` events, strings are sent as they are (comments)."""
    text = "".join(e if isinstance(e, str) else f"data: {json.dumps(e)}\n\n" for e in events)
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream; charset=utf-8",
                                                   "x-fal-request-id": RID})


async def statuses(client: AsyncQueueClient) -> list:
    return [s async for s in client.stream_status(handle(), poll_interval=0)]


CAPTURE = [{"timestamp": "2024-12-20T15:37:17.120314", "message": "INFO:TRYON:Loading", "labels": {}},
           {"timestamp": "2024-12-20T15:37:18.5", "message": "INFO:TRYON:Step 1", "labels": {}}]
DOC = {"message": "done", "level": "STDOUT", "source": "USER", "timestamp": "2025-01-01T00:00:03Z"}
STREAM = f"/fal-ai/flux/requests/{RID}/status/stream"
STATUS = f"/fal-ai/flux/requests/{RID}/status"


# -- §1.5 status stream ----------------------------------------------------------------------------------------
def test_stream_with_pings_and_log_deltas_ends_at_completed() -> None:
    """Each event's ``logs`` holds only new lines; ``: ping`` comments are no events; nothing is polled."""
    fal = Fal({("GET", STREAM): sse(
        ": ping\n\n",
        status_body("IN_QUEUE", queue_position=2),
        status_body("IN_PROGRESS", logs=[], metrics={}),
        ": ping\n\n",
        status_body("IN_PROGRESS", logs=CAPTURE, metrics={}),
        status_body("IN_PROGRESS", logs=[], metrics={}),
        status_body("COMPLETED", logs=[DOC], metrics={"inference_time": 3.2}),
    )})
    seen = run(statuses(fal.client()))
    assert [s.state for s in seen] == ["IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]
    assert [len(s.logs) for s in seen] == [0, 0, 2, 2, 3]
    assert [e["message"] for e in seen[-1].logs] == ["INFO:TRYON:Loading", "INFO:TRYON:Step 1", "done"]
    assert seen[0].queue_position == 2 and seen[-1].inference_time == 3.2
    (sent,) = fal.requests
    assert sent.url.params["logs"] == "1" and "text/event-stream" in sent.headers["accept"]
    assert sent.headers["authorization"] == f"Key {KEY}"


def test_stream_is_left_at_completed_even_if_the_server_kept_it_open() -> None:
    more = asyncio.Event()

    async def body():
        yield f"data: {json.dumps(status_body('COMPLETED', logs=None, metrics={}))}\n\n".encode()
        await more.wait()  # never set: a server that would only send pings from here on
        yield b": ping\n\n"

    fal = Fal({("GET", STREAM): lambda r: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body())})
    seen = run(asyncio.wait_for(statuses(fal.client()), 10))
    assert [s.state for s in seen] == ["COMPLETED"] and len(fal.requests) == 1


def test_stream_ending_early_falls_back_to_polling_with_cumulative_logs() -> None:
    fal = Fal({
        ("GET", STREAM): sse(status_body("IN_QUEUE", queue_position=0),
                             status_body("IN_PROGRESS", logs=CAPTURE[:1], metrics={})),
        ("GET", STATUS): [ok(status_body("IN_PROGRESS", logs=CAPTURE, metrics={}), 202),
                          ok(status_body("COMPLETED", logs=CAPTURE + [DOC], metrics={"inference_time": 1.0}))],
    })
    seen = run(statuses(fal.client()))
    assert [s.state for s in seen] == ["IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]
    assert [len(s.logs) for s in seen] == [0, 1, 2, 3]  # polling's list is cumulative already
    assert fal.paths() == [f"GET {STREAM}", f"GET {STATUS}", f"GET {STATUS}"]


def test_stream_not_offered_falls_back_to_polling() -> None:
    fal = Fal({("GET", STATUS): ok(status_body("COMPLETED", logs=None, metrics={}))})
    fal.routes[("GET", STREAM)] = ok({"detail": "Not Found"}, 404)
    assert [s.state for s in run(statuses(fal.client()))] == ["COMPLETED"]


# -- downloads and where the key goes ----------------------------------------------------------------------------
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


def test_the_key_reaches_only_queue_rest_and_platform(tmp_path: Path) -> None:
    """§3 / §5: ``Authorization: Key`` to queue.fal.run and rest.fal.ai only — never to the CDNs, signed
    URLs, fal.ai's OpenAPI, a media host or a status_url on another host."""
    foreign = dataclasses.replace(handle(), status_url="https://elsewhere.example/requests/x/status")
    media = ["https://v3.fal.media/files/a/1.png", "https://v3b.fal.media/files/b/2.png",
             "https://fal.media/files/c/3.png", "https://v2.fal.media/files/d/4.png",
             "https://storage.googleapis.com/falserverless/gallery/5.png"]

    def answer(request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if host == "queue.fal.run":
            return ok(status_body("IN_PROGRESS", logs=None, metrics={}), 202)
        if host == "elsewhere.example":
            return ok(status_body("IN_PROGRESS", logs=None, metrics={}), 202)
        if host == "rest.fal.ai" and path == "/storage/auth/token":
            return ok({"token": "tok", "token_type": "Bearer", "base_url": "https://v3b.fal.media",
                       "expires_at": "2099-01-01T00:00:00+00:00"})
        if host == "v3.fal.media" and path == "/files/upload":
            return ok({"access_url": "https://v3.fal.media/files/up/in.png"})
        if host == "fal.ai":
            return ok({"openapi": "3.0.4", "paths": {}})
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    fal = Fal({}, answer)
    client = fal.client()

    async def visit():
        await client.status(handle())
        await client.status(foreign)
        await client.fetch_openapi("fal-ai/flux/dev")
        await storage.async_upload(client, PNG, file_name="in.png")
        for n, url in enumerate(media):
            await client.download(url, tmp_path / f"{n}.png")

    run(visit())
    keyed = {r.url.host for r in fal.requests if r.headers.get("authorization", "").startswith("Key ")}
    assert keyed == API_HOSTS
    hosts = {r.url.host for r in fal.requests}
    assert hosts >= {"elsewhere.example", "fal.ai", "v3.fal.media", "v3b.fal.media", "fal.media",
                     "v2.fal.media", "storage.googleapis.com"}
    assert all(KEY not in str(r.headers) and KEY not in str(r.url) for r in fal.requests
               if r.url.host not in API_HOSTS)
    assert [(tmp_path / f"{n}.png").read_bytes() for n in range(5)] == [PNG] * 5


def test_media_redirect_is_followed_without_the_key(tmp_path: Path) -> None:
    """A CDN answering 302 to the object's storage URL: followed, keyless."""
    fal = Fal({
        ("GET", "/files/a/out.png"): httpx.Response(
            302, headers={"location": "https://storage.googleapis.com/falserverless/a/out.png"}),
        ("GET", "/falserverless/a/out.png"): httpx.Response(200, content=PNG),
    })
    dest = run(fal.client().download("https://fal.media/files/a/out.png", tmp_path / "out.png"))
    assert dest.read_bytes() == PNG
    assert [r.url.host for r in fal.requests] == ["fal.media", "storage.googleapis.com"]
    assert all("authorization" not in r.headers for r in fal.requests)


def test_sync_mode_data_uri_result_is_decoded_locally(tmp_path: Path) -> None:
    """§6: with ``sync_mode`` the image ``url`` is a ``data:`` URI; nothing is fetched."""
    fal = Fal({})
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    dest = run(fal.client().download(uri, tmp_path / "inline.png"))
    assert dest.read_bytes() == PNG and fal.requests == []


# -- §5 uploads --------------------------------------------------------------------------------------------------
class Storage(Fal):
    """rest.fal.ai, v3.fal.media and a multipart ``base_url`` on another host, as fal_client meets them."""

    def __init__(self, base_url: str = "https://upload.fal-cdn.example", cdn_status: int = 200,
                 expires_at: object = "2099-12-31T23:59:59.000Z") -> None:
        super().__init__({}, self.serve)
        self.base_url, self.cdn_status, self.expires_at = base_url, cdn_status, expires_at

    def serve(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if (host, path) == ("rest.fal.ai", "/storage/auth/token"):
            return ok({"token": "cdn-token", "token_type": "Bearer", "base_url": self.base_url,
                       "expires_at": self.expires_at})
        if (host, path) == ("v3.fal.media", "/files/upload"):
            if self.cdn_status != 200:
                return ok({"detail": "upload failed"}, self.cdn_status)
            return ok({"access_url": f"https://v3.fal.media/files/zebra/{request.headers['x-fal-file-name']}"})
        if (host, path) == ("rest.fal.ai", "/storage/upload/initiate"):
            return ok({"upload_url": "https://storage.googleapis.com/fal-upload/x?X-Goog-Signature=abc",
                       "file_url": "https://v3.fal.media/files/gcs/x.png"})
        if host == "storage.googleapis.com":
            return httpx.Response(200)
        if path == "/files/upload/multipart":
            return ok({"access_url": f"{self.base_url}/files/koala/big.bin", "uploadId": "up-1"})
        if path.endswith("/complete"):
            return ok({"access_url": f"{self.base_url}/files/koala/big.bin"})
        return httpx.Response(200, headers={"ETag": f'"etag-{path.rsplit("/", 1)[1]}"'})

    def find(self, host: str, path: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host and r.url.path.startswith(path)]


@pytest.mark.parametrize("expires_at", ["2099-12-31T23:59:59.000Z", "2099-12-31T23:59:59.123456789+00:00",
                                        "2099-12-31T23:59:59", 4102444799])
def test_upload_token_then_raw_bytes_with_bearer(expires_at: object) -> None:
    fal = Storage(expires_at=expires_at)
    url = run(storage.async_upload(fal.client(), PNG, file_name="in.png"))
    assert url == "https://v3.fal.media/files/zebra/in.png"
    (token,) = fal.find("rest.fal.ai", "/storage/auth/token")
    assert token.method == "POST" and token.url.params["storage_type"] == "fal-cdn-v3"
    assert token.headers["authorization"] == f"Key {KEY}" and json.loads(token.content) == {}
    (cdn,) = fal.find("v3.fal.media")
    assert cdn.method == "POST" and cdn.content == PNG
    assert cdn.headers["authorization"] == "Bearer cdn-token"
    assert cdn.headers["content-type"] == "image/png" and cdn.headers["x-fal-file-name"] == "in.png"
    assert fal.find("rest.fal.ai", "/storage/upload/initiate") == []  # the token was understood


def test_multipart_goes_to_the_token_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the threshold: create / parts / complete on the token's ``base_url`` (not v3.fal.media)."""
    monkeypatch.setattr(storage, "MULTIPART_THRESHOLD", 10)
    monkeypatch.setattr(storage, "PART_SIZE", 8)
    fal = Storage()
    data = bytes(range(20))
    url = run(storage.async_upload(fal.client(), data, file_name="big.bin"))
    assert url == "https://upload.fal-cdn.example/files/koala/big.bin"
    assert fal.find("v3.fal.media") == []
    (create,) = fal.find("upload.fal-cdn.example", "/files/upload/multipart")
    assert create.headers["authorization"] == "Bearer cdn-token" and create.headers["x-fal-file-name"] == "big.bin"
    parts = sorted(fal.find("upload.fal-cdn.example", "/files/koala/big.bin/multipart/up-1/"),
                   key=lambda r: r.url.path)
    puts = [r for r in parts if r.method == "PUT"]
    assert [r.url.path.rsplit("/", 1)[1] for r in puts] == ["1", "2", "3"]
    assert b"".join(r.content for r in puts) == data
    (complete,) = [r for r in parts if r.url.path.endswith("/complete")]
    assert json.loads(complete.content) == {"parts": [{"partNumber": n, "etag": f'"etag-{n}"'} for n in (1, 2, 3)]}
    assert all(not r.headers.get("authorization", "").startswith("Key ") for r in fal.requests
               if r.url.host != "rest.fal.ai")


def test_fallback_initiate_then_keyless_put() -> None:
    """§5 step 3: fal_client leaks the key on this PUT; we send the bytes with no Authorization at all."""
    fal = Storage(cdn_status=500)
    url = run(storage.async_upload(fal.client(), PNG, file_name="x.png"))
    assert url == "https://v3.fal.media/files/gcs/x.png"
    (initiate,) = fal.find("rest.fal.ai", "/storage/upload/initiate")
    assert initiate.headers["authorization"] == f"Key {KEY}"
    assert json.loads(initiate.content) == {"file_name": "x.png", "content_type": "image/png"}
    (put,) = fal.find("storage.googleapis.com")
    assert put.method == "PUT" and put.content == PNG and "authorization" not in put.headers
    assert put.url.params["X-Goog-Signature"] == "abc"


def test_upload_of_a_file_with_a_non_ascii_name(tmp_path: Path) -> None:
    """HTTP headers are ASCII: ``X-Fal-File-Name`` for ``café ☕.png`` must not crash the upload."""
    path = tmp_path / "café ☕.png"
    path.write_bytes(PNG)
    fal = Storage()
    url = run(storage.async_upload(fal.client(), path))
    (cdn,) = fal.find("v3.fal.media")
    name = cdn.headers["x-fal-file-name"]
    assert name.isascii() and name.endswith(".png") and name.startswith("caf")
    assert cdn.content == PNG and url.endswith(".png")


@pytest.mark.parametrize("refusal", [
    httpx.Response(429, json={"detail": "Too many requests"}),
    httpx.Response(502, text="<html><center>nginx</center></html>", headers={"content-type": "text/html"}),
])
def test_stream_refused_by_a_busy_gateway_falls_back_to_polling(refusal: httpx.Response) -> None:
    """§4: once the retries are used up, a 429 or an ingress 502 on the stream says nothing about the job."""
    fal = Fal({("GET", STREAM): refusal,
               ("GET", STATUS): ok(status_body("COMPLETED", logs=None, metrics={}))})
    assert [s.state for s in run(statuses(fal.client(attempts=2)))] == ["COMPLETED"]
    assert fal.paths() == [f"GET {STREAM}"] * 2 + [f"GET {STATUS}"]
