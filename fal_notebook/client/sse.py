"""The queue's status stream (``…/status/stream``, server-sent events), read with httpx-sse.

Each event is a status body whose ``logs`` holds only the lines new since the previous event; they are summed
here so callers see the same cumulative list as polling gives (the JS client does the same). fal closes the
stream after COMPLETED and sends ``: ping`` every 15 s, so the read timeout is longer than that.

When the stream is not offered (404/405/406, or not ``text/event-stream``) or breaks before COMPLETED,
``StreamUnavailable`` tells the client to carry on by polling; it never leaves the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
from httpx_sse import EventSource

from ..errors import FalError, RequestError, TransportError
from .http import loads, translate_errors
from .retry import TRANSIENT_STATUS
from .wire import Status

if TYPE_CHECKING:
    from .connections import StreamLease
    from .session import HttpSession
    from .wire import RequestHandle

__all__ = ["StreamUnavailable", "sse_statuses", "stream_url", "STREAM_READ_TIMEOUT"]

log = logging.getLogger("fal_notebook")
# Three keep-alive pings (fal sends one every 15 s): silence that long means the stream is dead, not that the
# job is slow. Connect, write and pool timeouts stay the client's.
STREAM_READ_TIMEOUT = 45.0
NOT_OFFERED = (404, 405, 406)
END_WAIT = 0.02  # seconds the end of a stream may take after COMPLETED before the connection is dropped instead
END_EVENTS = 4


class StreamUnavailable(Exception):
    """The status stream cannot be used (not offered, or broken before COMPLETED): poll instead."""


def stream_url(status_url: str) -> str:
    """``…/requests/{id}/status`` → ``…/requests/{id}/status/stream`` (query string kept out)."""
    return status_url.split("?", 1)[0].rstrip("/") + "/stream"


def _parse(data: str) -> dict:
    try:
        body = loads(data, what="a status stream event")
    except ValueError as exc:
        raise StreamUnavailable(f"the status stream sent something that is not JSON: {data[:80]!r}") from exc
    return body


async def _open(session: HttpSession, handle: RequestHandle, *, logs: bool, what: str,
                via: httpx.AsyncClient) -> httpx.Response:
    """Open the stream. The answer's headers must come within the client's own read timeout (a hung stream
    falls back to polling at once); after that, reads may wait up to ``STREAM_READ_TIMEOUT`` between events.
    A transport failure is not retried here: polling, which follows, has the retries."""
    base = session.timeout
    timeout = httpx.Timeout(base.connect, read=STREAM_READ_TIMEOUT, write=base.write, pool=base.pool)
    opening = session.send(
        "GET",
        stream_url(handle.status_url),
        what=what,
        api=True,
        idempotent=False,
        accept=NOT_OFFERED,
        stream=True,
        timeout=timeout,
        params={"logs": "1" if logs else "0"},
        headers={"Accept": "text/event-stream", "Cache-Control": "no-store"},
        via=via,
    )
    try:
        return await asyncio.wait_for(opening, timeout=base.read)
    except (TimeoutError, TransportError) as exc:  # FalTimeoutError is a TimeoutError too
        raise StreamUnavailable(f"could not open the stream ({exc or type(exc).__name__})") from exc
    except RequestError as exc:  # a busy gateway (429, nginx 502…) is no verdict on the job: poll
        if type(exc) is not RequestError or exc.status_code not in TRANSIENT_STATUS:
            raise
        raise StreamUnavailable(f"could not open the stream ({exc})") from exc


async def _read_end(events: AsyncIterator[object]) -> bool:
    """Read the stream's end, which fal sends right after COMPLETED; True when it came. A connection whose
    answer was read to the end serves the next stream, one closed mid-answer does not (a new connection per
    stream costs more CPU than the rest of the stream). Bounded in time and events."""
    try:
        async with asyncio.timeout(END_WAIT):
            for _ in range(END_EVENTS):
                await anext(events)
    except StopAsyncIteration:
        return True
    except (TimeoutError, FalError, httpx.HTTPError):
        pass
    return False


async def sse_statuses(
    session: HttpSession, handle: RequestHandle, *, logs: bool = True, silence: float = STREAM_READ_TIMEOUT
) -> AsyncIterator[Status]:
    """Yield one ``Status`` per event (cumulative logs, bounded) until COMPLETED; raise ``StreamUnavailable``
    when the stream is not there, ends early, or sends no status event for ``silence`` seconds (keep-alive
    pings alone do not count: a stream that only pings would otherwise be followed for ever). Auth errors and
    other fal answers raise their typed errors."""
    what = f"status stream of request {handle.request_id}"
    async with session.stream_route() as lease:
        statuses = _read(session, handle, logs=logs, silence=silence, what=what, lease=lease)
        async with contextlib.aclosing(statuses):  # closed here, before the connection is handed on
            async for status in statuses:
                yield status


async def _read(session: HttpSession, handle: RequestHandle, *, logs: bool, silence: float, what: str,
                lease: StreamLease) -> AsyncIterator[Status]:
    response = await _open(session, handle, logs=logs, what=what, via=lease.client)
    ended = False
    try:
        content_type = response.headers.get("content-type", "")
        if response.status_code in NOT_OFFERED or "text/event-stream" not in content_type:
            raise StreamUnavailable(f"HTTP {response.status_code} ({content_type or 'no content type'})")
        events = EventSource(response).aiter_sse()
        loop = asyncio.get_running_loop()
        last: Status | None = None
        deadline = loop.time() + silence
        try:
            with translate_errors(what, timeout=STREAM_READ_TIMEOUT):
                while True:
                    try:
                        async with asyncio.timeout_at(deadline):
                            event = await anext(events)
                    except StopAsyncIteration:
                        break
                    except TimeoutError as exc:
                        raise StreamUnavailable(f"no status event for {silence:g} s (only keep-alives)") from exc
                    if not event.data.strip():
                        continue
                    last = Status.from_json(_parse(event.data), prior=last, delta=True)
                    deadline = loop.time() + silence
                    yield last
                    if last.done:
                        return
        except FalError as exc:  # a broken connection or a read timeout mid-stream
            raise StreamUnavailable(str(exc)) from exc
        finally:
            if last is not None and last.done:
                ended = await _read_end(events)
            await events.aclose()
        raise StreamUnavailable("the stream closed before the request completed")
    finally:
        await response.aclose()
        lease.reusable = ended
