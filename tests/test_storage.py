"""Uploads against httpx.MockTransport: token flow, header rules, multipart order and bounds, fallback."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fal_notebook.client import AsyncQueueClient, RetryPolicy
from fal_notebook.client import uploads as storage
from fal_notebook.config import ApiKey, Endpoints, Settings
from fal_notebook.errors import ConfigError, UploadError

KEY = "test-id:test-secret"
REST, CDN = "https://rest.fal.ai", "https://v3.fal.media"


def _settings(key: str | None = KEY) -> Settings:
    return Settings(key=ApiKey(key) if key else None, endpoints=Endpoints(), home=Path("/nonexistent"))


def _token(minutes: float = 60) -> dict:
    expires = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()
    return {
        "token": "tok",
        "token_type": "Bearer",
        "base_url": "https://upload.fal.media",
        "expires_at": expires,
    }


class CdnServer:
    """A fake fal storage: token, direct upload, multipart and the initiate fallback, with switches."""

    def __init__(self, *, cdn_fails: bool = False, initiate_fails: bool = False, etag: bool = True) -> None:
        self.cdn_fails, self.initiate_fails, self.etag = cdn_fails, initiate_fails, etag
        self.requests: list[httpx.Request] = []
        self.parts: dict[int, bytes] = {}
        self.in_flight = self.max_in_flight = 0
        self.token_minutes = 60.0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url, path = str(request.url), request.url.path
        if url.startswith(f"{REST}/storage/auth/token"):
            return httpx.Response(200, json=_token(self.token_minutes))
        if url.startswith(f"{REST}/storage/upload/initiate"):
            if self.initiate_fails:
                return httpx.Response(404, json={"detail": "no such route"})
            return httpx.Response(
                200, json={"upload_url": "https://signed.example/put?sig=1", "file_url": "F"}
            )
        if request.url.host == "signed.example":
            return httpx.Response(200)
        if path == "/files/upload":
            if self.cdn_fails:
                return httpx.Response(500, json={"detail": "CDN down"}, headers={"x-fal-request-id": "x"})
            return httpx.Response(
                200, json={"access_url": f"{CDN}/files/a/{request.headers['x-fal-file-name']}"}
            )
        if path == "/files/upload/multipart":
            return httpx.Response(
                200, json={"access_url": "https://upload.fal.media/files/k/big.bin", "uploadId": "U"}
            )
        if path.endswith("/complete"):
            return httpx.Response(200, json={"access_url": "https://upload.fal.media/files/k/big.bin"})
        return await self._part(request)

    async def _part(self, request: httpx.Request) -> httpx.Response:
        number = int(request.url.path.rsplit("/", 1)[1])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        self.parts[number] = request.content
        return httpx.Response(200, headers={"ETag": f'"e{number}"'} if self.etag else {})

    def client(self, key: str | None = KEY) -> AsyncQueueClient:
        async def no_sleep(_: float) -> None:
            return None

        return AsyncQueueClient(
            _settings(key),
            transport=httpx.MockTransport(self),
            retry=RetryPolicy(max_attempts=2, sleep=no_sleep),
        )

    def find(self, part: str) -> list[httpx.Request]:
        return [r for r in self.requests if part in str(r.url)]


def upload(server: CdnServer, source, client: AsyncQueueClient | None = None, **kw) -> str:
    return asyncio.run(storage.async_upload(client or server.client(), source, **kw))


def test_bytes_go_to_the_cdn_with_the_token_not_the_key() -> None:
    server = CdnServer()
    url = upload(server, b"hello", file_name="note.txt")
    assert url == f"{CDN}/files/a/note.txt"
    (token,) = server.find("/storage/auth/token")
    assert token.headers["authorization"] == f"Key {KEY}" and token.url.params["storage_type"] == "fal-cdn-v3"
    assert json.loads(token.content) == {}
    (cdn,) = server.find("/files/upload")
    assert cdn.headers["authorization"] == "Bearer tok" and cdn.content == b"hello"
    assert cdn.headers["content-type"] == "text/plain" and cdn.headers["content-length"] == "5"


def test_token_is_cached_until_it_expires() -> None:
    server = CdnServer()
    client = server.client()

    async def twice() -> None:
        await storage.async_upload(client, b"a")
        await storage.async_upload(client, b"b")

    asyncio.run(twice())
    assert len(server.find("/storage/auth/token")) == 1
    server.token_minutes = 0.1  # within the refresh margin: fetched again each time
    storage._tokens.pop(client)
    asyncio.run(twice())
    assert len(server.find("/storage/auth/token")) == 3


def test_file_and_pil_image(tmp_path: Path) -> None:
    server = CdnServer()
    path = tmp_path / "pic.png"
    Image.new("RGB", (8, 4), "red").save(path)
    assert upload(server, path).endswith("/pic.png")
    assert server.find("/files/upload")[-1].content == path.read_bytes()
    assert upload(server, Image.new("RGB", (3, 3))).endswith("/image.png")
    sent = server.find("/files/upload")[-1]
    assert sent.headers["content-type"] == "image/png" and sent.content.startswith(b"\x89PNG")


@pytest.mark.parametrize("bad", ["/no/such/file.png", 42, ["x"]])
def test_bad_sources_are_refused(bad) -> None:
    with pytest.raises(UploadError):
        upload(CdnServer(), bad)


def test_no_key_is_a_config_error() -> None:
    server = CdnServer()
    with pytest.raises(ConfigError):
        upload(server, b"x", client=server.client(key=None))
    assert server.requests == []


def test_fallback_puts_to_the_signed_url_without_any_auth() -> None:
    server = CdnServer(cdn_fails=True)
    assert upload(server, b"data", content_type="application/x-test") == "F"
    (initiate,) = server.find("/storage/upload/initiate")
    assert initiate.headers["authorization"] == f"Key {KEY}"
    assert json.loads(initiate.content) == {"file_name": "upload.bin", "content_type": "application/x-test"}
    (put,) = server.find("signed.example")
    assert put.method == "PUT" and "authorization" not in put.headers and put.content == b"data"


def test_both_paths_failing_is_one_upload_error() -> None:
    server = CdnServer(cdn_fails=True, initiate_fails=True)
    with pytest.raises(UploadError) as info:
        upload(server, b"data")
    assert "CDN down" in str(info.value) and "no such route" in str(info.value)
    assert KEY not in str(info.value)


def test_multipart_parts_in_order_bounded_and_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "MULTIPART_THRESHOLD", 100)
    monkeypatch.setattr(storage, "PART_SIZE", 64)
    monkeypatch.setattr(storage, "READ_CHUNK", 16)
    data = bytes(i % 251 for i in range(64 * 11 + 5))  # 12 parts, the last one short
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    server = CdnServer()
    assert upload(server, path) == "https://upload.fal.media/files/k/big.bin"
    assert b"".join(server.parts[n] for n in sorted(server.parts)) == data
    assert sorted(server.parts) == list(range(1, 13))
    assert 1 < server.max_in_flight <= storage.MAX_CONCURRENCY
    create = server.find("/files/upload/multipart")[0]
    assert create.url.host == "upload.fal.media"  # the token's base_url
    assert create.headers["x-fal-file-name"] == "big.bin"
    complete = server.find("/complete")[0]
    assert json.loads(complete.content)["parts"] == [
        {"partNumber": n, "etag": f'"e{n}"'} for n in range(1, 13)
    ]
    for request in server.find("/multipart/U/"):
        assert request.headers["authorization"] == "Bearer tok"


def test_multipart_without_etag_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "MULTIPART_THRESHOLD", 10)
    monkeypatch.setattr(storage, "PART_SIZE", 8)
    server = CdnServer(etag=False, initiate_fails=True)
    with pytest.raises(UploadError, match="ETag"):
        upload(server, b"x" * 20)
    assert not server.find("/complete")
