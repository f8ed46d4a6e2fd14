"""HTTP plumbing under the queue client: one ``httpx.AsyncClient`` per event loop, the header rules, retries.

An ``httpx.AsyncClient`` belongs to the loop that first used it (encode/httpx #2473; fal_client's module-level
client breaks on a second ``asyncio.run``), so the session keeps one per loop and never hands one to another.

The key goes out only on API calls, and only when the URL's origin is one of ``settings.endpoints.api_origins``:
a ``status_url`` pointing elsewhere, media downloads, CDN uploads (storage token instead) and signed URLs never
see it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import weakref
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx

from .._version import __version__
from ..config import Settings, key_problem, load_settings, origin_of
from ..errors import ConfigError
from .http import error_from_response, translate_errors
from .retry import RetryPolicy, should_retry_error, should_retry_response
from .scheduler import DEFAULT_LIMIT, Scheduler

__all__ = ["HttpSession", "DEFAULT_TIMEOUT", "USER_AGENT"]

log = logging.getLogger("fal_notebook")
# HTTP/2 where the server offers it (ALPN): many status streams share one connection. Needs ``h2``.
HTTP2 = importlib.util.find_spec("h2") is not None
H2_STREAMS_PER_CONNECTION = 64  # under common servers' SETTINGS_MAX_CONCURRENT_STREAMS (nginx 128, hypercorn 100)
USER_AGENT = f"fal-notebook/{__version__}"
# fal_client's QUEUE_POLL_TIMEOUT: without a read timeout, stalled TLS reads were never caught.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=30.0)


class HttpSession:
    """Per-loop httpx clients plus the one retrying ``send`` every call goes through.

    ``content`` may be a zero-argument callable returning fresh content (an async iterator over a file), so a
    retried upload re-reads the file instead of holding it in memory.

    ``max_requests`` short requests are in flight at once per loop (:meth:`slot`, fair between lanes);
    ``max_streams`` more connections are kept for long-lived status streams. The pool keeps that many
    connections alive, so a busy runtime reuses them instead of reconnecting.
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
        self.settings = settings if settings is not None else load_settings()
        self.max_requests, self.max_streams = max_requests, max_streams
        self.multiplexed = False  # an API answer came over HTTP/2: streams share connections
        self._schedulers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Scheduler] = (
            weakref.WeakKeyDictionary()
        )
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry or RetryPolicy()
        self._transport = transport
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        # HTTP/2 only: extra connections for status streams, [client, open streams] each
        self._shards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[list[Any]]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def _secret(self) -> str | None:
        key = self.settings.key
        return key.reveal() if key is not None else None

    def client(self) -> httpx.AsyncClient:
        """The httpx client of the running loop, created on first use there."""
        loop = asyncio.get_running_loop()
        for old in [old for old in self._clients if old.is_closed()]:
            del self._clients[old]  # its connections died with the loop; nothing left to close
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._new_client(self.max_requests + self.max_streams)
        return client

    def _new_client(self, size: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport,
            timeout=self.timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            http2=HTTP2,
        )

    @asynccontextmanager
    async def stream_route(self) -> AsyncIterator[httpx.AsyncClient]:
        """The client one status stream goes through, for as long as it is open. On HTTP/1.1, the main pool
        (a connection each; the runtime bounds how many). On HTTP/2, one of a few extra connections with room
        (:data:`H2_STREAMS_PER_CONNECTION` each): httpcore puts every request to one origin on one HTTP/2
        connection and queues what exceeds the server's stream limit, so hundreds of streams on the main
        connection would hold up the submits and results behind them."""
        if not self.multiplexed:
            yield self.client()
            return
        shards = self._shards.setdefault(asyncio.get_running_loop(), [])
        shard = min((s for s in shards if s[1] < H2_STREAMS_PER_CONNECTION), key=lambda s: s[1], default=None)
        if shard is None:
            shard = [self._new_client(1), 0]
            shards.append(shard)
        shard[1] += 1
        try:
            yield shard[0]
        finally:
            shard[1] -= 1

    def scheduler(self) -> Scheduler:
        """The running loop's bound on short requests."""
        loop = asyncio.get_running_loop()
        scheduler = self._schedulers.get(loop)
        if scheduler is None:
            scheduler = self._schedulers[loop] = Scheduler(self.max_requests)
        return scheduler

    def slot(self, lane: str) -> AbstractAsyncContextManager[None]:
        """Hold one of the loop's request slots (``lane``: submit, status, result, cancel, download, upload,
        schema, platform) for a request, retries and the reading of a streamed answer included."""
        return self.scheduler().slot(lane)

    async def aclose(self) -> None:
        """Close the running loop's clients. Clients of other loops are closed with their loops."""
        loop = asyncio.get_running_loop()
        clients = [self._clients.pop(loop, None), *(s[0] for s in self._shards.pop(loop, []))]
        for client in clients:
            if client is not None:
                await client.aclose()

    def headers(self, url: str, *, api: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Request headers for ``url``; ``Authorization: Key …`` only for API calls to an API origin."""
        headers = {"Accept": "application/json"}
        headers.update(extra or {})
        if not api:
            return headers
        if origin_of(url) not in self.settings.endpoints.api_origins:
            log.debug("not sending the API key to foreign origin %s", origin_of(url))
            return headers
        problem = key_problem(self.settings)
        if problem is not None:
            raise ConfigError(problem if self.settings.key is None else
                              f"The API key {self.settings.key.masked} from {self.settings.key.source}: {problem}")
        headers["Authorization"] = self.settings.key.header_value()
        return headers

    async def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        api: bool,
        idempotent: bool,
        kind: str = "api",
        accept: Collection[int] = (),
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        content: Any = None,
        timeout: httpx.Timeout | float | None = None,
        follow_redirects: bool = False,
        retry: RetryPolicy | None = None,
        via: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; return a 2xx answer (or one whose status is in ``accept``), raise the typed
        error otherwise. A streamed answer is returned unread: the caller closes it. ``follow_redirects`` is
        for keyless media downloads only (a CDN may redirect to its storage). ``retry`` replaces the session's
        policy for this call (a price lookup before a submit tries once). ``via``: another of this session's
        clients (a status stream's, see :meth:`stream_route`)."""
        policy = retry or self.retry
        client = via or self.client()
        request_headers = self.headers(url, api=api, extra=headers)
        call_timeout = timeout if timeout is not None else self.timeout
        seconds = call_timeout.read if isinstance(call_timeout, httpx.Timeout) else call_timeout
        with translate_errors(what, timeout=seconds, secret=self._secret):
            for attempt in range(1, policy.max_attempts + 1):
                request = client.build_request(
                    method,
                    url,
                    headers=request_headers,
                    timeout=call_timeout,
                    content=content() if callable(content) else content,
                    **kwargs,
                )
                response = await self._attempt(
                    client, request, attempt, stream=stream, idempotent=idempotent, redirects=follow_redirects,
                    policy=policy,
                )
                if response is None:
                    continue
                if response.is_success or response.status_code in accept:
                    return response
                if not await self._retry_answer(response, attempt, what=what, policy=policy):
                    raise error_from_response(response, what=what, kind=kind, secret=self._secret)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _retry_answer(self, response: httpx.Response, attempt: int, *, what: str,
                            policy: RetryPolicy | None = None) -> bool:
        """Read and close an error answer; sleep and return True when it is worth another attempt."""
        policy = policy or self.retry
        await response.aread()
        await response.aclose()
        if attempt >= policy.max_attempts or not should_retry_response(response):
            return False
        delay = policy.delay(attempt, response)
        log.debug("%s: HTTP %s, retry %d in %.2f s", what, response.status_code, attempt, delay)
        await policy.sleep(delay)
        return True

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        attempt: int,
        *,
        stream: bool,
        idempotent: bool,
        redirects: bool = False,
        policy: RetryPolicy | None = None,
    ) -> httpx.Response | None:
        """One try. ``None`` means "failed in a retryable way and slept"; a final failure raises (httpx)."""
        policy = policy or self.retry
        try:
            response = await client.send(request, stream=stream, follow_redirects=redirects)
        except httpx.TransportError as exc:
            if attempt >= policy.max_attempts or not should_retry_error(
                exc, request, idempotent=idempotent
            ):
                raise
            delay = policy.delay(attempt)
            log.debug(
                "%s %s: %s, retry %d in %.2f s",
                request.method,
                request.url.path,
                type(exc).__name__,
                attempt,
                delay,
            )
            await policy.sleep(delay)
            return None
        if response.http_version == "HTTP/2" and not self.multiplexed:
            self.multiplexed = True
            log.debug("%s speaks HTTP/2: status streams share connections", origin_of(str(request.url)))
        return response
