"""One bound for every short request, shared fairly between the kinds of request.

Why: with hundreds of jobs, unbounded status polls and result GETs queued inside httpcore's pool, whose
bookkeeping rescans every waiting request against every connection, and a burst of them starved the submits.
Here at most ``limit`` requests are in flight per event loop; when more wait, each freed slot goes to the next
*lane* (``submit``, ``status``, ``result``, ``download``, ``upload``, ``cancel``…) in turn, first come first
served within a lane, so no kind can starve another. Status streams are long-lived and bounded apart (the
runtime decides which jobs stream).

Each slot has a number (0 to ``limit - 1``) that its holder keeps until it lets go: the session gives every
slot a client of its own (see ``connections.py``). The most recently freed number is handed out first, so a
lightly loaded runtime keeps using the same few warm connections.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["Scheduler", "DEFAULT_LIMIT"]

DEFAULT_LIMIT = 32  # short requests in flight per loop; fal's own clients keep fewer connections


class Scheduler:
    """At most ``limit`` holders at once; waiting lanes are served round-robin (fair shares)."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("a scheduler needs at least one slot")
        self.limit = limit
        self.busy = 0
        self._free = list(range(limit - 1, -1, -1))  # slot numbers nobody holds; the next one handed out last
        self._waiting: dict[str, deque[asyncio.Future[int]]] = {}
        self._turns: deque[str] = deque()  # lanes with waiters, in the order they are served
        self.granted: dict[str, int] = {}  # per lane, for benchmarks and tests

    def waiting(self, lane: str | None = None) -> int:
        """How many wait (in ``lane``, or in all lanes)."""
        queues = [self._waiting.get(lane, ())] if lane is not None else list(self._waiting.values())
        return sum(1 for queue in queues for future in queue if not future.done())

    @asynccontextmanager
    async def slot(self, lane: str) -> AsyncIterator[int]:
        """Hold one slot for the body (a request and, for a streamed answer, its reading); yields its number."""
        number = await self._acquire(lane)
        try:
            yield number
        finally:
            self._release(number)

    def _prune(self) -> None:
        """Drop waiters cancelled at the front of each lane, and lanes left without waiters."""
        for lane in list(self._turns):
            queue = self._waiting[lane]
            while queue and queue[0].done():
                queue.popleft()
            if not queue:
                self._turns.remove(lane)

    async def _acquire(self, lane: str) -> int:
        self._prune()
        if self.busy < self.limit and not self._turns:
            self.busy += 1
            self.granted[lane] = self.granted.get(lane, 0) + 1
            return self._free.pop()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(lane, deque())
        queue.append(future)
        if lane not in self._turns:
            self._turns.append(lane)
        try:
            number = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted, then cancelled: pass the slot on
                self._release(future.result())
            raise
        self.granted[lane] = self.granted.get(lane, 0) + 1
        return number

    def _release(self, number: int) -> None:
        """Hand slot ``number`` to the first waiter of the next lane in turn, or free it."""
        while self._turns:
            lane = self._turns.popleft()
            queue = self._waiting[lane]
            while queue and queue[0].done():  # cancelled while waiting
                queue.popleft()
            if not queue:
                continue
            queue.popleft().set_result(number)
            while queue and queue[0].done():
                queue.popleft()
            if queue:
                self._turns.append(lane)
            return
        self.busy -= 1
        self._free.append(number)
