"""Uploads against the real emulator: bytes back identical, no key where it does not belong, 120 MiB multipart
with low peak memory."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fal_notebook.client import AsyncQueueClient, QueueClient
from fal_notebook.client import uploads as storage

MiB = 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


class FailingCdn(httpx.AsyncBaseTransport):
    """The real network, except that the CDN's direct upload answers an error (forces the fallback)."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/files/upload":
            return httpx.Response(500, json={"detail": "CDN down"}, headers={"x-fal-request-id": "x"})
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


def _no_key_outside_the_api(emulator) -> None:
    """Every request to a CDN, signed-URL or media route came without the API key."""
    for r in emulator.requests:
        if r.path.startswith(("/files", "/uploads", "/media")):
            assert r.auth_scheme != "Key", r
        if r.path.startswith(("/uploads", "/media")) or (r.method == "GET" and r.path.startswith("/files/")):
            assert not r.authorized, r


def test_direct_upload_round_trip_and_header_rules(fal_env, emulator, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000

    async def scenario() -> Path:
        async with AsyncQueueClient(fal_env) as fal:
            url = await storage.async_upload(fal, data, file_name="blob.bin")
            return await fal.download(url, tmp_path / "back.bin")

    assert run(scenario()).read_bytes() == data
    token = [r for r in emulator.requests if r.path == "/storage/auth/token"]
    cdn = [r for r in emulator.requests if r.path == "/files/upload"]
    assert token and token[0].auth_scheme == "Key"
    assert cdn and cdn[0].auth_scheme == "Bearer"
    _no_key_outside_the_api(emulator)


def test_fallback_upload_sends_no_key_to_the_signed_url(fal_env, emulator, tmp_path: Path) -> None:
    data = b"fallback bytes " * 100

    async def scenario() -> Path:
        async with AsyncQueueClient(fal_env, transport=FailingCdn()) as fal:
            url = await storage.async_upload(fal, data, file_name="f.txt")
            return await fal.download(url, tmp_path / "f.txt")

    assert run(scenario()).read_bytes() == data
    initiate = [r for r in emulator.requests if r.path == "/storage/upload/initiate"]
    signed = [r for r in emulator.requests if r.path.startswith("/uploads/")]
    assert initiate and initiate[0].auth_scheme == "Key"
    assert signed and signed[0].method == "PUT" and not signed[0].authorized
    _no_key_outside_the_api(emulator)


def test_sync_upload_of_a_pil_image(fal_env, emulator, tmp_path: Path) -> None:
    with QueueClient(fal_env) as fal:
        url = storage.upload(fal, Image.new("RGB", (20, 10), "blue"))
        path = fal.download(url, tmp_path / "img.png")
    with Image.open(path) as image:
        assert image.size == (20, 10)
    _no_key_outside_the_api(emulator)


@pytest.mark.slow
def test_120_mib_multipart_upload_keeps_memory_low(fal_env, emulator, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as out:  # distinct blocks, so parts stored out of order would change the hash
        for i in range(120):
            out.write(i.to_bytes(4, "big") * (MiB // 4))
    assert source.stat().st_size == 120 * MiB > storage.MULTIPART_THRESHOLD

    async def scenario() -> str:
        async with AsyncQueueClient(fal_env) as fal:
            return await storage.async_upload(fal, source)

    tracemalloc.start()
    try:
        url = run(scenario())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"

    parts = [r for r in emulator.requests if r.method == "PUT" and "/multipart/" in r.path]
    assert len(parts) == 12 and all(r.auth_scheme == "Bearer" for r in parts)
    assert [r for r in emulator.requests if r.path.endswith("/complete")]
    _no_key_outside_the_api(emulator)

    back = run(_download(fal_env, url, tmp_path / "back.bin"))
    assert back.stat().st_size == source.stat().st_size
    assert _sha256(back) == _sha256(source)


async def _download(settings, url: str, dest: Path) -> Path:
    async with AsyncQueueClient(settings) as fal:
        return await fal.download(url, dest)


def run(coro):
    return asyncio.run(coro)
