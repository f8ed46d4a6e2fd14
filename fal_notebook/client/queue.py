"""fal's queue API: submit, status (polled or streamed), result, cancel, plus media downloads and schemas.

    async with AsyncQueueClient() as fal:
        handle, status = await fal.submit("fal-ai/nano-banana-pro", {"prompt": "a fox", "aspect_ratio": "16:9"})
        async for status in fal.stream_status(handle):
            ...
        output = await fal.result(handle)

``QueueClient`` offers the same calls, blocking, for scripts; it runs the async client on the shared portal
thread. Every call has a timeout and retries per :class:`RetryPolicy`; every failure is a
``fal_notebook.errors`` class (see ``_http.py`` for the one translation point).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from .._portal import Portal
from ..config import Settings
from ..errors import (
    FalError,
    FalTimeoutError,
    NotFoundError,
    Problem,
    RequestError,
    TransportError,
    UnknownModelError,
    UnknownOutcomeError,
)
from ..media import is_web_url
from .faces import AsyncSessionClient, BlockingClient
from .http import response_json, translate_errors
from .redirects import open_media
from .retry import NOT_SENT, RetryPolicy
from .scheduler import DEFAULT_LIMIT
from .session import DEFAULT_TIMEOUT, HttpSession
from .sse import STREAM_READ_TIMEOUT, StreamUnavailable, sse_statuses
from .wire import RequestHandle, Status, normalize_endpoint_id

__all__ = ["AsyncQueueClient", "QueueClient", "RequestHandle", "RetryPolicy", "Status", "DEFAULT_TIMEOUT",
           "submit_option_problems"]

log = logging.getLogger("fal_notebook")
PRIORITIES = ("normal", "low")
MIN_START_TIMEOUT = 1.0
_CHUNK = 1 << 20


def submit_option_problems(priority: Any = None, start_timeout: Any = None, hint: Any = None,
                           webhook_url: Any = None) -> list[Problem]:
    """Every submit option that cannot be sent as fal's header or query (protocol §1.3), checked before a job
    is stored: a bad value must never wait until the POST to fail."""
    problems = []
    if priority is not None and priority not in PRIORITIES:
        problems.append(Problem("priority", f"{priority!r} is not a queue priority", " or ".join(PRIORITIES)))
    if start_timeout is not None:
        number = start_timeout if isinstance(start_timeout, int | float) and not isinstance(start_timeout, bool) \
            else None
        if number is None or not math.isfinite(number) or number <= MIN_START_TIMEOUT:
            problems.append(Problem("start_timeout", f"{start_timeout!r} is not a number of seconds above "
                                    f"{MIN_START_TIMEOUT:g}", f"more than {MIN_START_TIMEOUT:g} s"))
    if hint is not None and (not isinstance(hint, str) or not hint.isprintable() or len(hint) > 200):
        problems.append(Problem("hint", "must be short printable text", "text"))
    if webhook_url is not None and not is_web_url(webhook_url):
        problems.append(Problem("webhook_url", "must be an http(s) URL", "https://…"))
    return problems


def _submit_headers(
    priority: str | None, start_timeout: float | None, hint: str | None, headers: Mapping[str, str] | None
) -> dict[str, str]:
    """Submit options as fal's headers (protocol §1.3); bad values fail here, before anything is sent."""
    problems = submit_option_problems(priority, start_timeout, hint)
    if problems:
        raise RequestError("; ".join(str(p) for p in problems))
    out = {"Content-Type": "application/json", **(headers or {})}
    if priority is not None:
        out["X-Fal-Queue-Priority"] = priority
    if start_timeout is not None:
        out["X-Fal-Request-Timeout"] = str(float(start_timeout))
    if hint:
        out["X-Fal-Runner-Hint"] = hint
    return out


def _media_what(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"download of {parts.scheme}://{parts.netloc}{parts.path[:200]}"


def _web(url: str, what: str) -> str:
    """``url`` when it is http(s); a ``RequestError`` otherwise. A stored or hostile ``status_url`` such as
    ``file:///…`` or ``ftp://…`` is never followed (and so never polled for ever)."""
    if not is_web_url(url):
        raise RequestError(f"{what}: refusing to follow {str(url)[:80]!r}: only http(s) URLs are followed")
    return url


class AsyncQueueClient(AsyncSessionClient):
    """fal's queue API on httpx, one ``httpx.AsyncClient`` per event loop.

        fal = AsyncQueueClient(settings, retry=RetryPolicy(max_attempts=3))
        handle, status = await fal.submit("fal-ai/flux/dev", {"prompt": "…"})

    Parameters: ``settings`` (key and endpoints; read from the environment when omitted), ``transport`` (an
    httpx transport; tests pass ``httpx.MockTransport``), ``timeout`` (seconds or ``httpx.Timeout``; default
    120 s, 30 s to connect), ``retry`` (a :class:`RetryPolicy`), ``max_requests`` (short requests in flight at
    once, shared fairly between submits, status reads, results, downloads…), ``max_streams`` (connections
    kept for status streams besides those).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_requests: int = DEFAULT_LIMIT,
        max_streams: int = 16,
    ) -> None:
        self.session = HttpSession(settings, transport=transport, timeout=timeout, retry=retry,
                                   max_requests=max_requests, max_streams=max_streams)
        # seconds a status stream may go without a status event (pings do not count) before polling takes over
        self.stream_silence = STREAM_READ_TIMEOUT

    @property
    def retry(self) -> RetryPolicy:
        return self.session.retry

    @property
    def multiplexed(self) -> bool:
        """True once fal answered over HTTP/2, where status streams cost no connection each."""
        return self.session.multiplexed

    def __repr__(self) -> str:
        return f"<AsyncQueueClient {self.settings.describe()}>"

    async def _json(self, method: str, url: str, *, lane: str, what: str, idempotent: bool = True,
                    **kwargs: Any) -> Any:
        async with self.session.slot(lane):
            response = await self.session.send(method, url, what=what, api=True, idempotent=idempotent, **kwargs)
        return response_json(response)

    async def submit(
        self,
        endpoint_id: str,
        arguments: Mapping[str, Any],
        *,
        webhook_url: str | None = None,
        priority: str | None = None,
        start_timeout: float | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[RequestHandle, Status]:
        """Queue a request under the full endpoint id. Retried only where fal cannot have received it, so a
        retry never creates a second (billed) job; a failure after sending (a reset, a read timeout) raises
        ``UnknownOutcomeError``: fal may have the request."""
        endpoint_id = normalize_endpoint_id(endpoint_id)
        queue = self.settings.endpoints.queue.rstrip("/")
        url = f"{queue}/{endpoint_id}"
        if webhook_url:
            url += "?" + urllib.parse.urlencode({"fal_webhook": webhook_url})
        options = _submit_headers(priority, start_timeout, hint, headers)
        try:
            body = await self._json(
                "POST", url, lane="submit", what=f"submit to {endpoint_id}", idempotent=False, json=dict(arguments),
                headers=options,
            )
        except (TransportError, FalTimeoutError) as exc:
            if isinstance(exc.__cause__, NOT_SENT):  # refused or timed out connecting: nothing left here
                raise
            raise UnknownOutcomeError(
                f"submit to {endpoint_id}: the request was sent but its reply never arrived ({exc}); fal may "
                "have it, so it is not sent again"
            ) from exc
        if not isinstance(body, dict):
            raise RequestError(f"submit to {endpoint_id}: fal's reply is not a JSON object", detail=body)
        handle = RequestHandle.from_submit(endpoint_id, body, queue)
        state = body.get("status") or "IN_QUEUE"
        return handle, Status.from_json({**body, "status": state})

    async def status(self, handle: RequestHandle, *, logs: bool = True, lane: str = "status") -> Status:
        """One status reading (202 while pending, 200 when COMPLETED; both accepted). ``lane``: the
        scheduler's lane it waits in (see :class:`~.scheduler.Scheduler`)."""
        what = f"status of request {handle.request_id}"
        body = await self._json(
            "GET",
            _web(handle.status_url, what),
            lane=lane,
            what=what,
            params={"logs": "1" if logs else "0"},
        )
        return Status.from_json(body)

    async def poll_status(
        self, handle: RequestHandle, *, logs: bool = True, interval: float = 0.5
    ) -> AsyncIterator[Status]:
        """Poll every ``interval`` seconds until COMPLETED, yielding each reading."""
        while True:
            status = await self.status(handle, logs=logs)
            yield status
            if status.done:
                return
            await asyncio.sleep(interval)

    async def stream_status(
        self, handle: RequestHandle, *, logs: bool = True, poll_interval: float = 0.5, poll_fallback: bool = True
    ) -> AsyncIterator[Status]:
        """Statuses from the SSE stream until COMPLETED, logs cumulative. Falls back to polling (and says so
        in the log) when the server offers no stream or the stream breaks before COMPLETED; with
        ``poll_fallback=False`` the iteration just ends there, for callers that poll at their own pace."""
        last: Status | None = None
        try:
            _web(handle.status_url, f"status stream of request {handle.request_id}")
            statuses = sse_statuses(self.session, handle, logs=logs, silence=self.stream_silence)
            async with contextlib.aclosing(statuses):
                async for status in statuses:
                    last = status
                    yield status
        except StreamUnavailable as exc:
            log.info("status stream of %s unavailable (%s); polling instead", handle.request_id, exc)
        if (last is not None and last.done) or not poll_fallback:
            return
        async for status in self.poll_status(handle, logs=logs, interval=poll_interval):
            yield status

    async def result(self, handle: RequestHandle, *, lane: str = "result") -> dict[str, Any]:
        """The output of a COMPLETED request. A failed request raises ``JobFailedError`` with fal's detail and
        error_type; a result past fal's retention raises ``ResultExpiredError``. ``lane`` as for status."""
        what = f"result of {handle.endpoint_id} request {handle.request_id}"
        async with self.session.slot(lane):
            response = await self.session.send("GET", _web(handle.response_url, what), what=what, api=True,
                                               idempotent=True, kind="result")
        body = response_json(response)
        if not isinstance(body, dict):
            raise RequestError(f"result of request {handle.request_id} is not a JSON object", detail=body)
        if response.status_code == 202 and body.get("status") in ("IN_QUEUE", "IN_PROGRESS"):
            # asked too early, answered with the status body (as fal emulators do): not an output
            raise RequestError(f"{what}: the request is still in progress ({body['status']})", status_code=202,
                               detail=body)
        return body

    async def cancel(self, handle: RequestHandle) -> str:
        """Ask fal to cancel: ``CANCELLATION_REQUESTED``, or ``ALREADY_COMPLETED`` (fal's 400)."""
        what = f"cancel of request {handle.request_id}"
        async with self.session.slot("cancel"):
            response = await self.session.send(
                "PUT",
                _web(handle.cancel_url, what),
                what=what,
                api=True,
                idempotent=True,
                accept=(400,),
            )
        body = response_json(response)
        if response.status_code == 400:
            return "ALREADY_COMPLETED"
        status = body.get("status") if isinstance(body, dict) else None
        return status if isinstance(status, str) else "CANCELLATION_REQUESTED"

    async def download(self, url: str, dest: Path) -> Path:
        """Save a media URL (or a ``data:`` URI from ``sync_mode``) to ``dest``: streamed to a temporary file
        in the same folder, then renamed, so a broken download never leaves a half file. No key is sent.

        Only http(s) URLs are fetched, redirects only to public http(s) hosts (or the same host); the file
        may not exceed ``settings.limits.download_mb`` and must arrive within ``download_seconds`` in all."""
        dest = Path(dest)
        if not url.startswith("data:"):
            _web(url, _media_what(url) if "://" in url else "download")
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                if url.startswith("data:"):
                    data = _decode_data_uri(url)
                    self._check_size(len(data), url)
                    out.write(data)
                else:
                    await self._stream_with_retries(url, out)
            os.replace(tmp_name, dest)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return dest

    async def _stream_with_retries(self, url: str, out: Any) -> None:
        """A connection cut mid-body is tried again from the start (a GET: nothing is made twice); the size
        cap and the total deadline are not retried."""
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                await self._stream_to(url, out)
                return
            except TransportError as exc:
                if attempt == self.retry.max_attempts or not isinstance(exc.__cause__, httpx.TransportError):
                    raise
                log.debug("%s: %s; downloading again", _media_what(url), exc)
                out.seek(0)
                out.truncate()
                await self.retry.sleep(self.retry.delay(attempt))

    def _check_size(self, size: int, url: str) -> None:
        limit = self.settings.limits.download_bytes
        if size > limit:
            raise TransportError(
                f"{_media_what(url) if '://' in url else 'download'}: more than {limit // 2**20} MB "
                f"(FAL_NOTEBOOK_MAX_DOWNLOAD_MB); stopped, nothing kept"
            )

    async def _stream_to(self, url: str, out: Any) -> None:
        limits = self.settings.limits
        what = _media_what(url)
        try:
            async with self.session.slot("download"), asyncio.timeout(limits.download_seconds):
                response = await open_media(self.session, url, what=what, max_redirects=limits.max_redirects)
                try:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit():
                        self._check_size(int(declared), url)
                    written = 0
                    with translate_errors(what):
                        async for chunk in response.aiter_bytes(_CHUNK):
                            written += len(chunk)
                            self._check_size(written, url)
                            out.write(chunk)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            if isinstance(exc, FalTimeoutError):
                raise
            raise FalTimeoutError(
                f"{what}: not finished after {limits.download_seconds:g} s (FAL_NOTEBOOK_DOWNLOAD_SECONDS); "
                "stopped, nothing kept", timeout=limits.download_seconds,
            ) from exc

    async def fetch_openapi(self, endpoint_id: str) -> dict[str, Any]:
        """fal's OpenAPI document of one model: from the platform API's model list (``expand=openapi-3.0``),
        else from the per-model document (public: sent without the key). Unknown model → UnknownModelError."""
        from .platform import AsyncPlatformClient

        try:
            return await AsyncPlatformClient(session=self.session).openapi(endpoint_id)
        except FalError as exc:  # not listed, no document, or the platform API unreachable: the public route
            log.info("the platform API gave no OpenAPI document for %s (%s); asking fal.ai", endpoint_id, exc)
        return await self._public_openapi(endpoint_id)

    async def _public_openapi(self, endpoint_id: str) -> dict[str, Any]:
        url = self.settings.endpoints.openapi_url(urllib.parse.quote(endpoint_id, safe="/"))
        try:
            async with self.session.slot("schema"):
                response = await self.session.send(
                    "GET", url, what=f"OpenAPI schema of {endpoint_id}", api=False, idempotent=True
                )
        except NotFoundError as exc:
            raise UnknownModelError(
                f"fal has no model {endpoint_id!r} (its OpenAPI schema is not found)"
            ) from exc
        body = response_json(response)
        if not isinstance(body, dict):
            raise RequestError(f"the OpenAPI schema of {endpoint_id} is not a JSON object")
        return body


def _decode_data_uri(uri: str) -> bytes:
    """Bytes of a ``data:`` URI, decoded by the standard library's data-URL handler."""
    try:
        with urllib.request.urlopen(urllib.request.Request(uri)) as response:  # noqa: S310 - data: only
            return response.read()
    except (ValueError, OSError) as exc:
        raise TransportError(f"could not decode a data: URI ({exc})") from exc


class QueueClient(BlockingClient):
    """The same calls, blocking, for scripts: each runs the async client on the shared portal thread.

        fal = QueueClient()
        handle, _ = fal.submit("fal-ai/nano-banana-pro", {"prompt": "a fox"})
        output = fal.wait(handle)

    Raises what the async client raises; ``timeout=`` on :meth:`wait` raises ``FalTimeoutError`` (the remote
    request keeps running unless cancelled).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        portal: Portal | None = None,
        **options: Any,
    ) -> None:
        super().__init__(AsyncQueueClient(settings, **options), portal)

    def __repr__(self) -> str:
        return f"<QueueClient {self.settings.describe()}>"

    def submit(
        self, endpoint_id: str, arguments: Mapping[str, Any], **options: Any
    ) -> tuple[RequestHandle, Status]:
        return self._call(self.async_client.submit(endpoint_id, arguments, **options))

    def status(self, handle: RequestHandle, *, logs: bool = True) -> Status:
        return self._call(self.async_client.status(handle, logs=logs))

    def stream_status(self, handle: RequestHandle, *, logs: bool = True) -> Iterator[Status]:
        """Blocking iteration over the async stream; each step runs on the portal."""
        stream = self.async_client.stream_status(handle, logs=logs)

        async def step() -> Status:
            return await stream.__anext__()

        try:
            while True:
                try:
                    yield self._call(step())
                except StopAsyncIteration:
                    return
        finally:
            self._call(stream.aclose())

    def result(self, handle: RequestHandle) -> dict[str, Any]:
        return self._call(self.async_client.result(handle))

    def wait(self, handle: RequestHandle, *, timeout: float | None = None) -> dict[str, Any]:
        """Follow the request to COMPLETED, then return its result (or raise its error)."""

        async def follow() -> dict[str, Any]:
            async for _status in self.async_client.stream_status(handle, logs=False):
                pass
            return await self.async_client.result(handle)

        return self._call(follow(), timeout=timeout)

    def cancel(self, handle: RequestHandle) -> str:
        return self._call(self.async_client.cancel(handle))

    def download(self, url: str, dest: Path) -> Path:
        return self._call(self.async_client.download(url, dest))

    def fetch_openapi(self, endpoint_id: str) -> dict[str, Any]:
        return self._call(self.async_client.fetch_openapi(endpoint_id))

