"""Local files, bytes and PIL images → fal CDN URLs a model can read (protocol §5).

    url = upload(QueueClient(), "photo.png")

The path fal_client takes, with its faults fixed:

1. a storage token from the REST host (``Authorization: Key``), cached until it expires;
2. ``POST {cdn}/files/upload`` with the raw bytes and ``Authorization: <token_type> <token>``; above 100 MiB a
   multipart upload to the token's ``base_url`` instead: 10 MiB parts, at most 4 in flight, each part read
   from disk while it is sent (memory stays at a few MiB whatever the file size), ETags collected, then
   ``complete``; parts are retried, unlike fal_client's;
3. if that fails, ``initiate`` (``Authorization: Key``) and a ``PUT`` of the bytes to the signed ``upload_url``
   **without** the API key (fal_client 1.0.3 sends it there).
"""

from __future__ import annotations

import asyncio
import io
import unicodedata
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import ConfigError, FalError, UploadError
from ..media import guess_content_type
from .http import response_json

if TYPE_CHECKING:
    from .queue import AsyncQueueClient, QueueClient

__all__ = ["upload", "async_upload", "MULTIPART_THRESHOLD", "PART_SIZE", "MAX_CONCURRENCY"]

MULTIPART_THRESHOLD = 100 * 1024 * 1024
PART_SIZE = 10 * 1024 * 1024
MAX_CONCURRENCY = 4
READ_CHUNK = 1024 * 1024
TOKEN_MARGIN = timedelta(seconds=30)
UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=30.0)  # a 10 MiB part on a slow uplink


@dataclass(frozen=True)
class _Source:
    """What is uploaded: a file read in chunks when sent, or bytes already in memory."""

    file_name: str
    content_type: str
    size: int
    path: Path | None = None
    data: bytes | None = None

    def body(self, start: int = 0, length: int | None = None) -> Callable[[], AsyncIterator[bytes]]:
        """A factory of fresh body streams for ``[start, start+length)`` (a retry re-reads the file)."""
        length = self.size - start if length is None else length
        return lambda: self._chunks(start, length)

    async def _chunks(self, start: int, length: int) -> AsyncIterator[bytes]:
        if self.data is not None:
            view = memoryview(self.data)
            for offset in range(start, start + length, READ_CHUNK):
                yield bytes(view[offset : min(offset + READ_CHUNK, start + length)])
            return
        assert self.path is not None
        with self.path.open("rb") as handle:
            handle.seek(start)
            left = length
            while left > 0:
                chunk = await asyncio.to_thread(handle.read, min(READ_CHUNK, left))
                if not chunk:
                    raise UploadError(f"{self.path} shrank while it was being uploaded")
                left -= len(chunk)
                yield chunk


def _image_bytes(image: Any, file_name: str | None) -> tuple[bytes, str]:
    fmt = (getattr(image, "format", None) or "PNG").upper()
    if file_name and "." in file_name:
        fmt = {"JPG": "JPEG"}.get(file_name.rsplit(".", 1)[1].upper(), file_name.rsplit(".", 1)[1].upper())
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (KeyError, ValueError, OSError) as exc:
        raise UploadError(f"could not encode the image as {fmt}: {exc}") from exc
    return buffer.getvalue(), f"image.{fmt.lower().replace('jpeg', 'jpg')}"


def _prepare(source: Any, content_type: str | None, file_name: str | None) -> _Source:
    """Normalise a path, bytes or PIL image; refuse anything else with a message saying what is accepted."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, default_name = bytes(source), "upload.bin"
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise UploadError(f"cannot upload {str(source)!r}: no such file")
        name = file_name or path.name
        return _Source(name, content_type or guess_content_type(name), path.stat().st_size, path)
    elif hasattr(source, "save") and hasattr(source, "mode"):
        data, default_name = _image_bytes(source, file_name)
    else:
        raise UploadError(f"cannot upload a {type(source).__name__}: pass a file path, bytes or a PIL image")
    name = file_name or default_name
    return _Source(name, content_type or guess_content_type(name), len(data), data=data)


@dataclass(frozen=True)
class _Token:
    token: str
    token_type: str
    base_url: str
    expires_at: datetime

    @property
    def header(self) -> str:
        return f"{self.token_type} {self.token}"

    def fresh(self) -> bool:
        return datetime.now(UTC) + TOKEN_MARGIN < self.expires_at


def _parse_token(body: Any, fallback_base: str) -> _Token:
    try:
        raw = body["expires_at"]
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):  # epoch seconds, just in case
            raw = datetime.fromtimestamp(raw, UTC).isoformat()
        expires = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return _Token(
            str(body["token"]),
            str(body.get("token_type") or "Bearer"),
            str(body.get("base_url") or fallback_base).rstrip("/"),
            expires,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UploadError(f"fal's storage token reply is incomplete ({exc!r})") from exc


_tokens: weakref.WeakKeyDictionary[AsyncQueueClient, _Token] = weakref.WeakKeyDictionary()


async def _token(client: AsyncQueueClient) -> _Token:
    """The CDN token, fetched with the API key and cached on the client until shortly before it expires."""
    cached = _tokens.get(client)
    if cached is not None and cached.fresh():
        return cached
    endpoints = client.settings.endpoints
    async with client.session.slot("upload"):
        response = await client.session.send(
            "POST",
            f"{endpoints.rest.rstrip('/')}/storage/auth/token",
            what="storage token",
            api=True,
            idempotent=True,
            params={"storage_type": "fal-cdn-v3"},
            json={},
        )
    token = _parse_token(response_json(response), endpoints.cdn)
    _tokens[client] = token
    return token


async def _post_json(client: AsyncQueueClient, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
    async with client.session.slot("upload"):
        response = await client.session.send("POST", url, what=what, api=False, idempotent=True, **kwargs)
    body = response_json(response)
    if not isinstance(body, dict):
        raise UploadError(f"{what}: the reply is not a JSON object")
    return body


def _field(body: dict[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise UploadError(f"{what}: the reply has no {name!r}")
    return value


def _header_name(name: str) -> str:
    """``X-Fal-File-Name`` as ASCII (HTTP headers are; httpx refuses ``café.png``): accents folded."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    folded = "".join(ch for ch in folded if ch.isprintable()).strip()
    if not folded.strip(". "):
        return "upload.bin"
    return f"upload{folded}" if folded.startswith(".") else folded


def _content_headers(src: _Source, length: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Type": src.content_type, "Content-Length": str(length), **(extra or {})}


async def _direct(client: AsyncQueueClient, src: _Source, token: _Token) -> str:
    what = f"upload of {src.file_name} to fal's CDN"
    headers = _content_headers(
        src, src.size, {"Authorization": token.header, "X-Fal-File-Name": _header_name(src.file_name)}
    )
    url = f"{client.settings.endpoints.cdn.rstrip('/')}/files/upload"
    body = await _post_json(client, url, what, headers=headers, content=src.body(), timeout=UPLOAD_TIMEOUT)
    return _field(body, "access_url", what)


async def _bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Run ``jobs`` with at most ``limit`` at once; the first failure cancels the rest."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    tasks = [asyncio.ensure_future(run(job)) for job in jobs]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _multipart(client: AsyncQueueClient, src: _Source, token: _Token) -> str:
    what = f"multipart upload of {src.file_name}"
    auth = {"Authorization": token.header}
    created = await _post_json(
        client,
        f"{token.base_url}/files/upload/multipart",
        what,
        headers={**auth, "Content-Type": src.content_type, "X-Fal-File-Name": _header_name(src.file_name)},
    )
    access_url, upload_id = _field(created, "access_url", what), _field(created, "uploadId", what)
    base = f"{access_url}/multipart/{upload_id}"

    async def part(number: int) -> dict[str, Any]:
        start = (number - 1) * PART_SIZE
        length = min(PART_SIZE, src.size - start)
        headers = _content_headers(src, length, {**auth, "Accept-Encoding": "identity"})
        async with client.session.slot("upload"):
            response = await client.session.send(
                "PUT",
                f"{base}/{number}",
                what=f"{what}, part {number}",
                api=False,
                idempotent=True,
                headers=headers,
                content=src.body(start, length),
                timeout=UPLOAD_TIMEOUT,
            )
        etag = response.headers.get("etag")
        if not etag:
            raise UploadError(f"{what}: part {number} was stored without an ETag")
        return {"partNumber": number, "etag": etag}

    count = max(1, -(-src.size // PART_SIZE))
    parts = await _bounded([lambda n=n: part(n) for n in range(1, count + 1)], MAX_CONCURRENCY)
    done = await _post_json(client, f"{base}/complete", what, headers=auth, json={"parts": parts})
    return str(done.get("access_url") or access_url)


async def _initiate(client: AsyncQueueClient, src: _Source) -> str:
    """The fallback: a signed URL from ``initiate``, then a PUT that carries no key at all."""
    what = f"fallback upload of {src.file_name}"
    async with client.session.slot("upload"):
        response = await client.session.send(
            "POST",
            f"{client.settings.endpoints.rest.rstrip('/')}/storage/upload/initiate",
            what=what,
            api=True,
            idempotent=True,
            params={"storage_type": "fal-cdn-v3"},
            json={"file_name": src.file_name, "content_type": src.content_type},
        )
    body = response_json(response)
    if not isinstance(body, dict):
        raise UploadError(f"{what}: the reply is not a JSON object")
    upload_url, file_url = _field(body, "upload_url", what), _field(body, "file_url", what)
    async with client.session.slot("upload"):
        await client.session.send(
            "PUT",
            upload_url,
            what=what,
            api=False,
            idempotent=True,
            headers=_content_headers(src, src.size),
            content=src.body(),
            timeout=UPLOAD_TIMEOUT,
        )
    return file_url


async def async_upload(
    client: AsyncQueueClient, source: Any, *, content_type: str | None = None, file_name: str | None = None
) -> str:
    """Upload ``source`` (path, bytes or PIL image) and return its URL. Raises ``UploadError`` (or
    ``ConfigError`` when there is no key) after the CDN and the fallback both failed."""
    src = _prepare(source, content_type, file_name)
    try:
        token = await _token(client)
        if src.size > MULTIPART_THRESHOLD:
            return await _multipart(client, src, token)
        return await _direct(client, src, token)
    except ConfigError:
        raise
    except FalError as first:
        try:
            return await _initiate(client, src)
        except FalError as second:
            raise UploadError(
                f"could not upload {src.file_name} ({src.size} bytes): fal's CDN upload failed ({first}), "
                f"and so did the fallback ({second})"
            ) from second


def upload(
    client: QueueClient | AsyncQueueClient | None,
    source: Any,
    *,
    content_type: str | None = None,
    file_name: str | None = None,
) -> str:
    """Blocking :func:`async_upload`, run on the shared portal thread (a new client from the environment when
    ``client`` is None)."""
    from .._portal import get_portal
    from .queue import AsyncQueueClient, QueueClient

    if isinstance(client, QueueClient):
        portal, async_client = client.portal, client.async_client
    else:
        portal, async_client = get_portal(), client if client is not None else AsyncQueueClient()
    return portal.call(async_upload(async_client, source, content_type=content_type, file_name=file_name))
