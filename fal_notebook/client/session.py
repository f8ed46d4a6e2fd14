"""HTTP plumbing under the queue client: one ``httpx.AsyncClient`` per event loop, the header rules, retries.

An ``httpx.AsyncClient`` belongs to the loop that first used it (encode/httpx #2473; fal_client's module-level
client breaks on a second ``asyncio.run``), so the session keeps one per loop and never hands one to another.

The key goes out only on API calls, and only when the URL's origin is one of ``settings.endpoints.api_origins``:
a ``status_url`` pointing elsewhere, media downloads, CDN uploads (storage token instead) and signed URLs never
see it.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import logging
import weakref
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

from .._version import __version__
from ..config import Settings, key_problem, load_settings, origin_of
from ..errors import ConfigError
from .connections import LoopClients, StreamLease
from .http import error_from_response, translate_errors
from .retry import RetryPolicy, should_retry_error, should_retry_response
from .scheduler import DEFAULT_LIMIT, Scheduler

if TYPE_CHECKING:
    import ssl

__all__ = ["HttpSession", "DEFAULT_TIMEOUT", "USER_AGENT"]

log = logging.getLogger("fal_notebook")
# HTTP/2 where the server offers it (ALPN): many status streams share one connection. Needs ``h2``.
HTTP2 = importlib.util.find_spec("h2") is not None
# The client of the request slot the running task holds (HTTP/1.1), see :meth:`HttpSession.slot`.
_SLOT_CLIENT: contextvars.ContextVar[httpx.AsyncClient | None] = contextvars.ContextVar("slot_client", default=None)
USER_AGENT = f"fal-notebook/{__version__}"
# fal_client's QUEUE_POLL_TIMEOUT: without a read timeout, stalled TLS reads were never caught.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=30.0)


class HttpSession:
    """Per-loop httpx clients plus the one retrying ``send`` every call goes through.

    ``content`` may be a zero-argument callable returning fresh content (an async iterator over a file), so a
    retried upload re-reads the file instead of holding it in memory.

    ``max_requests`` short requests are in flight at once per loop (:meth:`slot`, fair between lanes), each
    through its slot's own small client; ``max_streams`` status streams are open at once on HTTP/1.1, each on
    a connection of its own. Connections are kept alive and reused (see ``connections.py``).
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
        self._http1 = not HTTP2  # an answer came over HTTP/1.1: short requests use their slot's client
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry or RetryPolicy()
        self._transport = transport
        self._ssl: ssl.SSLContext | None = None  # one for every client: building one costs ~20 ms of CPU
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopClients] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def _secret(self) -> str | None:
        key = self.settings.key
        return key.reveal() if key is not None else None

    def _here(self) -> LoopClients:
        """The running loop's clients and scheduler, made on first use there."""
        loop = asyncio.get_running_loop()
        clients = self._loops.get(loop)
        if clients is None:
            for old in [old for old in self._loops if old.is_closed()]:
                del self._loops[old]  # its connections died with the loop; nothing left to close
            clients = self._loops[loop] = LoopClients(self._new_client, self.max_requests, self.max_streams)
        return clients

    def client(self) -> httpx.AsyncClient:
        """The running loop's main httpx client (requests outside a slot; all of them once fal speaks HTTP/2)."""
        return self._here().main

    def _new_client(self, size: int) -> httpx.AsyncClient:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return httpx.AsyncClient(
            transport=self._transport,
            verify=self._ssl,
            timeout=self.timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            http2=HTTP2,
        )

    def stream_route(self) -> AbstractAsyncContextManager[StreamLease]:
        """The client one status stream goes through, for as long as it is open: on HTTP/1.1 one with a
        connection of its own (the runtime bounds how many streams are open; past ``max_streams`` a stream
        waits here), on HTTP/2 one of a few connections the streams share (see ``connections.py``). The
        stream marks the lease ``reusable`` once it read its answer to the end."""
        return self._here().stream(self.multiplexed)

    def scheduler(self) -> Scheduler:
        """The running loop's bound on short requests."""
        return self._here().scheduler

    @asynccontextmanager
    async def slot(self, lane: str) -> AsyncIterator[None]:
        """Hold one of the loop's request slots (``lane``: submit, status, result, cancel, download, upload,
        schema, platform) for a request, retries and the reading of a streamed answer included. Requests sent
        inside it go through the slot's own client (HTTP/1.1; see ``connections.py``)."""
        here = self._here()
        async with here.scheduler.slot(lane) as number:
            token = _SLOT_CLIENT.set(here.for_slot(number) if self._http1 and not self.multiplexed else None)
            try:
                yield
            except BaseException:  # cancelled or failed: its connections may be in any state, start afresh
                here.retire_slot(number)
                raise
            finally:
                _SLOT_CLIENT.reset(token)

    async def aclose(self) -> None:
        """Close the running loop's clients. Clients of other loops are closed with their loops."""
        clients = self._loops.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.aclose()

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
        client = via or _SLOT_CLIENT.get() or self.client()
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
        elif not self._http1 and response.http_version == "HTTP/1.1":
            self._http1 = True
        return response
