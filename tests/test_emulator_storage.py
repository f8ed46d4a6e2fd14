"""Storage emulation: CDN token, raw and multipart uploads, signed-URL uploads, media served back without auth."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from datetime import datetime

import httpx
import pytest

MiB = 1024 * 1024


@pytest.fixture
def token(emu_http) -> dict:
    response = emu_http.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})
    assert response.status_code == 200
    return response.json()


def bearer(token: dict) -> dict[str, str]:
    return {"Authorization": f"{token['token_type']} {token['token']}"}


def test_token_shape(emulator, token):
    assert token["token_type"] == "Bearer" and token["base_url"] == emulator.url
    assert datetime.fromisoformat(token["expires_at"]).tzinfo is not None


def test_raw_upload_round_trip(emulator, token):
    data = os.urandom(300_000)
    response = httpx.post(f"{token['base_url']}/files/upload", content=data,
                          headers={**bearer(token), "Content-Type": "image/png", "X-Fal-File-Name": "a b.png"})
    assert response.status_code == 200
    url = response.json()["access_url"]
    served = httpx.get(url)
    assert served.content == data and served.headers["content-type"] == "image/png"
    assert url.endswith("/a_b.png")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Key test-id:test-secret"}, {"Authorization": "Bearer nope"}])
def test_cdn_upload_takes_only_the_storage_token(emulator, headers):
    response = httpx.post(f"{emulator.url}/files/upload", content=b"x", headers=headers)
    assert response.status_code == 401


def test_multipart_trio(emulator, token):
    create = httpx.post(f"{token['base_url']}/files/upload/multipart",
                        headers={**bearer(token), "Content-Type": "video/mp4", "X-Fal-File-Name": "big.mp4"})
    assert create.status_code == 200
    access_url, upload_id = create.json()["access_url"], create.json()["uploadId"]
    chunks = [os.urandom(1000), os.urandom(777), os.urandom(10)]
    parts = []
    for number in (2, 1, 3):  # out of order, as parallel part uploads arrive
        put = httpx.put(f"{access_url}/multipart/{upload_id}/{number}", content=chunks[number - 1],
                        headers=bearer(token))
        assert put.status_code == 200
        assert put.headers["etag"] == f'"{hashlib.md5(chunks[number - 1]).hexdigest()}"'
        parts.append({"partNumber": number, "etag": put.headers["etag"]})
    done = httpx.post(f"{access_url}/multipart/{upload_id}/complete", json={"parts": parts}, headers=bearer(token))
    assert done.status_code == 200 and done.json()["access_url"] == access_url
    served = httpx.get(access_url)
    assert served.content == b"".join(chunks) and served.headers["content-type"] == "video/mp4"


def test_multipart_complete_with_unknown_part_fails(emulator, token):
    create = httpx.post(f"{emulator.url}/files/upload/multipart", headers=bearer(token)).json()
    response = httpx.post(f"{create['access_url']}/multipart/{create['uploadId']}/complete",
                          json={"parts": [{"partNumber": 1, "etag": '"x"'}]}, headers=bearer(token))
    assert response.status_code == 400


@pytest.mark.parametrize("storage_type", ["gcs", "fal-cdn-v3"])
def test_initiate_and_signed_put_without_auth(emulator, emu_http, storage_type):
    reply = emu_http.post("/storage/upload/initiate", params={"storage_type": storage_type},
                          json={"file_name": "clip.mov", "content_type": "video/quicktime"})
    assert reply.status_code == 200
    upload_url, file_url = reply.json()["upload_url"], reply.json()["file_url"]
    assert "Signature=" in upload_url
    assert httpx.put(upload_url, content=b"movie bytes").status_code == 200  # no Authorization at all
    served = httpx.get(file_url)
    assert served.content == b"movie bytes" and served.headers["content-type"] == "video/quicktime"
    put = [r for r in emulator.requests if r.method == "PUT"][-1]
    assert not put.authorized


def test_signed_put_checks_the_signature(emulator, emu_http):
    upload_url = emu_http.post("/storage/upload/initiate", json={"file_name": "a.bin"}).json()["upload_url"]
    forged = upload_url.split("?")[0] + "?X-Goog-Signature=forged"
    assert httpx.put(forged, content=b"x").status_code == 403


def test_initiate_needs_the_key(emulator):
    response = httpx.post(f"{emulator.url}/storage/upload/initiate", json={})
    assert response.status_code == 401


def test_unknown_media_is_404(emulator):
    assert httpx.get(f"{emulator.url}/media/nope/x.png").status_code == 404


def test_120_mib_upload_is_streamed_to_disk(emulator, token):
    """The emulator (same process, server thread) never holds the upload in memory."""
    size, chunk = 120 * MiB, os.urandom(MiB)
    digest = hashlib.md5()

    def body():
        for _ in range(size // MiB):
            digest.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        response = httpx.post(f"{emulator.url}/files/upload", content=body(), timeout=60,
                              headers={**bearer(token), "Content-Type": "application/octet-stream"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    assert peak < 16 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"
    check = hashlib.md5()
    with httpx.stream("GET", response.json()["access_url"]) as served:
        for part in served.iter_bytes():
            check.update(part)
    assert check.hexdigest() == digest.hexdigest()


def test_request_record_over_http(emulator, emu_http):
    emu_http.post("/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={})
    records = httpx.get(f"{emulator.url}/_emulator/requests").json()
    assert records[-1]["path"] == "/storage/auth/token" and records[-1]["query"] == "storage_type=fal-cdn-v3"
    assert records[-1]["authorized"] is True and records[-1]["auth_scheme"] == "Key"
    assert httpx.delete(f"{emulator.url}/_emulator/requests").json() == []
    assert emulator.requests == []


def test_config_over_http(emulator):
    knobs = httpx.post(f"{emulator.url}/_emulator/config", json={"scenario": "slow", "ping_interval": 0.5}).json()
    assert knobs["scenario"] == "slow" and emulator.knobs.ping_interval == 0.5
    bad = httpx.post(f"{emulator.url}/_emulator/config", json={"scenario": "nope"})
    assert bad.status_code == 400 and emulator.knobs.scenario == "slow"
