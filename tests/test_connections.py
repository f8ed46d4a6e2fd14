"""Which connections requests go through: each request slot and each status stream keeps its own, reused.

httpcore's pool rescans every pooled connection on each request and each release, so one big pool made the
bookkeeping grow with the number of connections; here every slot has a small client and every HTTP/1.1 stream
one connection, reused once its answer was read to the end. Counts of connections made, not times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpcore
import httpx
import pytest

from fal_notebook.client import AsyncQueueClient, RequestHandle
from fal_notebook.client.session import HttpSession

SMALL = {"prompt": "a dot", "image_size": {"width": 16, "height": 16}, "format": "png"}


@pytest.fixture
def connections_made(monkeypatch):
    """How many connections httpcore opened (every pool makes its connections here)."""
    made = []
    create = httpcore.AsyncConnectionPool.create_connection

    def counting(self, origin):
        made.append(origin)
        return create(self, origin)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "create_connection", counting)
    return made


def test_jobs_reuse_each_slots_and_each_streams_connections(fal_env, emulator, connections_made):
    emulator.configure(scenario="fast", log_lines=0)
    jobs, workers = 60, 8

    async def main() -> list:
        fal = AsyncQueueClient(fal_env, max_requests=4, max_streams=4)
        gate = asyncio.Semaphore(workers)

        async def one() -> dict:
            async with gate:
                handle, _ = await fal.submit("fal-ai/fast-sdxl", SMALL)
                statuses = fal.stream_status(handle, poll_fallback=False)
                async with contextlib.aclosing(statuses):
                    async for status in statuses:
                        if status.done:
                            break
                result = await fal.result(handle)
                await fal.download(result["images"][0]["url"], fal_env.outputs / f"{handle.request_id}.png")
                return result

        try:
            return await asyncio.gather(*(one() for _ in range(jobs)))
        finally:
            await fal.aclose()

    results = asyncio.run(main())
    assert len(results) == jobs and all(r["images"] for r in results)
    streams = [r for r in emulator.requests if r.path.endswith("/status/stream")]
    assert len(streams) == jobs and not [r for r in emulator.requests if r.path.endswith("/status")]
    # before HTTP/1.1 was seen: up to 4 on the main client; then 4 slots and 4 streams at once, each reused
    # (a stream whose end came late, on a loaded machine, costs one more); one per request or stream was 240
    assert len(connections_made) <= 4 + 4 + 4 + jobs // 4, len(connections_made)


def _sse(*events: dict, end: bool = True) -> httpx.AsyncByteStream:
    class Body(httpx.AsyncByteStream):
        async def __aiter__(self):
            for event in events:
                yield f"data: {json.dumps(event)}\n\n".encode()
            if not end:
                await asyncio.sleep(30)  # a server that keeps the stream open after COMPLETED

    return Body()


def test_a_stream_client_is_used_again_only_after_its_answer_was_read_to_the_end(fal_env):
    done = {"status": "COMPLETED", "request_id": "r-1", "logs": None, "metrics": {}}
    ends: list[bool] = [True, False, True]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_sse(done, end=ends.pop(0)))

    handle = RequestHandle.fallback("fal-ai/flux/dev", "r-1", fal_env.endpoints.queue)

    async def main() -> list:
        session = HttpSession(fal_env, transport=httpx.MockTransport(handler), max_streams=2)
        fal = AsyncQueueClient(fal_env)
        fal.session = session
        idle = []  # the stream clients waiting for the next stream, after each stream
        for _ in range(3):
            statuses = fal.stream_status(handle, poll_fallback=False)
            async with contextlib.aclosing(statuses):
                async for status in statuses:
                    assert status.done
            idle.append(list(session._here()._idle_streams))
        await fal.aclose()
        return idle

    after_first, after_second, after_third = asyncio.run(main())
    assert len(after_first) == 1  # read to its end: kept for the next stream, which took it...
    assert after_second == []  # ...and whose end never came: closed, not handed on
    assert len(after_third) == 1 and after_third[0] is not after_first[0]  # a new one


def test_a_slot_whose_holder_was_cancelled_gets_a_new_client(fal_env):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True})

    async def main() -> tuple:
        session = HttpSession(fal_env, transport=httpx.MockTransport(handler), max_requests=1)
        session._http1 = True  # as after fal's first answer over HTTP/1.1
        seen = []

        async def hold(cancelled: bool) -> None:
            async with session.slot("status"):
                await session.send("GET", fal_env.endpoints.queue + "/x", what="x", api=False, idempotent=True)
                seen.append(session._here().for_slot(0))
                if cancelled:
                    raise asyncio.CancelledError

        await hold(False)
        await hold(False)
        with pytest.raises(asyncio.CancelledError):
            await hold(True)
        await hold(False)
        await session.aclose()
        return tuple(seen)

    first, second, cancelled, after = asyncio.run(main())
    assert first is second is cancelled and after is not cancelled
