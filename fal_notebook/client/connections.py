"""Which httpx client, and so which connections, each request of one event loop goes through.

Why not one big pool: httpcore's pool rescans every pooled connection on each request and each release (a
``poll()`` of every idle socket among them), and one pass can hand the same idle connection to several waiting
requests, all but one of which fail, wait and rescan (encode/httpcore#1035). With 32 requests in flight that
was about two thirds of the client's CPU per request. So on HTTP/1.1:

* each of the scheduler's slots has a small client of its own, used by one request at a time (the slot's
  holder): a rescan looks at a few connections and no two requests race for one;
* each open status stream takes an idle stream client from a free list (one connection each, as HTTP/1.1
  needs), so a stream's open and close do not rescan the other streams' connections either.

On HTTP/2 (once fal answered over it) short requests share the main client's one connection per origin, and
status streams spread over a few extra connections (:data:`H2_STREAMS_PER_CONNECTION` each): httpcore puts
every request to one origin on one HTTP/2 connection and queues what exceeds the server's stream limit, so
hundreds of streams on the main connection would hold up the submits and results behind them.

A client is used again only after its holder finished normally (a stream: read to its end). A task cancelled
while httpcore closes an answer can leave that answer's connection marked busy for ever: in one big pool that
quietly lost a connection, in a small one it would stall every later request there. So a client whose holder
was cancelled or failed is closed and replaced.

Idle connections are closed by the client they belong to, when it is next used (``keepalive_expiry``), so at
most a few per slot and one per stream client wait to be noticed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .scheduler import Scheduler

if TYPE_CHECKING:
    import httpx

__all__ = ["LoopClients", "StreamLease", "H2_STREAMS_PER_CONNECTION", "SLOT_CONNECTIONS"]

H2_STREAMS_PER_CONNECTION = 64  # under common servers' SETTINGS_MAX_CONCURRENT_STREAMS (nginx 128, hypercorn 100)
SLOT_CONNECTIONS = 4  # per slot client: fal's queue, its CDN, its REST and platform hosts each keep theirs


class StreamLease:
    """One status stream's hold on a client; the stream sets ``reusable`` once its answer was read to the end
    and closed (else the client is replaced, see the module docstring)."""

    __slots__ = ("client", "reusable")

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client, self.reusable = client, False


class LoopClients:
    """The httpx clients and the request scheduler of one event loop (an ``httpx.AsyncClient`` belongs to the
    loop that first used it). ``new_client(size)`` makes a client keeping at most ``size`` connections."""

    def __init__(self, new_client: Callable[[int], httpx.AsyncClient], max_requests: int, max_streams: int) -> None:
        self._new_client = new_client
        self.scheduler = Scheduler(max_requests)
        self._max_requests = max_requests
        self._main: httpx.AsyncClient | None = None
        self._slots: dict[int, httpx.AsyncClient] = {}
        self._idle_streams: list[httpx.AsyncClient] = []  # HTTP/1.1 stream clients not in use
        self._stream_bound = asyncio.Semaphore(max_streams)
        self._shards: list[list] = []  # HTTP/2: [client, open streams]
        self._streaming: set[httpx.AsyncClient] = set()  # HTTP/1.1 stream clients in use
        self._closing: set[asyncio.Task] = set()  # clients being closed after a holder was cancelled or failed
        self._closed = False

    @property
    def main(self) -> httpx.AsyncClient:
        """Requests outside a slot, and every short request once fal speaks HTTP/2."""
        if self._main is None:
            self._main = self._new_client(self._max_requests)
        return self._main

    def for_slot(self, number: int) -> httpx.AsyncClient:
        """The client of scheduler slot ``number`` (HTTP/1.1)."""
        client = self._slots.get(number)
        if client is None:
            client = self._slots[number] = self._new_client(SLOT_CONNECTIONS)
        return client

    def retire_slot(self, number: int) -> None:
        """The holder of slot ``number`` was cancelled or failed: its client is closed, the next holder gets a
        new one."""
        client = self._slots.pop(number, None)
        if client is not None:
            self._retire(client)

    @asynccontextmanager
    async def stream(self, multiplexed: bool) -> AsyncIterator[StreamLease]:
        """A client for one status stream, held while it is open."""
        if multiplexed:
            async with self._shard() as client:
                yield StreamLease(client)
            return
        async with self._stream_bound:
            lease = StreamLease(self._idle_streams.pop() if self._idle_streams else self._new_client(1))
            self._streaming.add(lease.client)
            try:
                yield lease
            finally:
                self._streaming.discard(lease.client)
                if lease.reusable and not self._closed:
                    self._idle_streams.append(lease.client)  # the most recently used first: it is warm
                else:
                    self._retire(lease.client)

    def _retire(self, client: httpx.AsyncClient) -> None:
        task = asyncio.get_running_loop().create_task(client.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @asynccontextmanager
    async def _shard(self) -> AsyncIterator[httpx.AsyncClient]:
        shard = min((s for s in self._shards if s[1] < H2_STREAMS_PER_CONNECTION), key=lambda s: s[1], default=None)
        if shard is None:
            shard = [self._new_client(1), 0]
            self._shards.append(shard)
        shard[1] += 1
        try:
            yield shard[0]
        finally:
            shard[1] -= 1

    async def aclose(self) -> None:
        self._closed = True
        clients = [self._main, *self._slots.values(), *self._idle_streams, *self._streaming,
                   *(s[0] for s in self._shards)]
        self._main, self._slots, self._idle_streams, self._streaming, self._shards = None, {}, [], set(), []
        for client in clients:
            if client is not None:
                await client.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
