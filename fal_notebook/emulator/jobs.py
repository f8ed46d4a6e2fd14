"""Emulated queue requests whose state is a pure function of the clock.

A job never needs a background task: its phase (IN_QUEUE → IN_PROGRESS → COMPLETED), queue position and visible
log lines are computed from its timestamps whenever someone asks. That keeps the emulator thread-safe with one lock
(tests call ``hold``/``release`` from their own thread) and makes timing scenarios exact.

Because the state is a function of the clock, the book also knows when a job will next look different
(:meth:`JobBook.next_change`): a status stream sleeps until then instead of re-reading the job on a timer, and
the changes the clock does not decide (cancel, release) wake it (:meth:`JobBook.watch`).
"""

from __future__ import annotations

import asyncio
import bisect
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Failure", "EmulatedJob", "Snapshot", "JobBook"]

INF = float("inf")


@dataclass(frozen=True)
class Failure:
    """How a failed request ends: the status fields and what the result GET answers."""

    error: str
    error_type: str
    http_status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


CANCELLED = Failure(
    "Request was cancelled by the user",
    "request_cancelled",
    400,
    {"detail": "Request was cancelled by the user", "error_type": "request_cancelled"},
    {"X-Fal-Error-Type": "request_cancelled"},
)
START_TIMEOUT = Failure(
    "Request timed out",
    "request_timeout",
    504,
    {"detail": "Request timed out", "error_type": "request_timeout"},
    {"X-Fal-Error-Type": "request_timeout", "X-Fal-Request-Timeout-Type": "user"},
)
RUNNER_DISCONNECTED = Failure(
    "Runner disconnected",
    "runner_disconnected",
    503,
    {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
    {"X-Fal-Error-Type": "runner_disconnected"},
)


@dataclass
class EmulatedJob:
    """One submitted request. Times are ``time.monotonic()`` seconds."""

    request_id: str
    endpoint_id: str
    app_path: str  # "[ns/]owner/app": what status/result URLs use
    arguments: dict[str, Any]
    submitted: float
    submitted_wall: datetime
    queue_s: float
    run_s: float
    log_lines: int
    queue_ahead: int
    held: bool = False
    released: float | None = None
    cancelled: float | None = None
    start_timeout: float | None = None
    failure: Failure | None = None  # decided at submit (invalid input, "error" scenario)
    expired: bool = False  # the "expired" scenario: the result is gone once completed
    priority: str | None = None
    hint: str | None = None
    webhook: str | None = None
    output: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _log_book: tuple[float, list[float], list[dict[str, Any]]] | None = field(default=None, repr=False)

    @property
    def start(self) -> float:
        if self.held:
            return INF
        return self.released if self.released is not None else self.submitted + self.queue_s

    def end(self) -> tuple[float, Failure | None]:
        """When the job completes and with which failure (``None`` on success)."""
        ends = [(self.start + self.run_s, self.failure)]
        if self.start_timeout is not None and self.start > self.submitted + self.start_timeout:
            ends.append((self.submitted + self.start_timeout, START_TIMEOUT))
        if self.cancelled is not None:
            ends.append((self.cancelled, CANCELLED))
        return min(ends, key=lambda item: item[0])


@dataclass(frozen=True)
class Snapshot:
    """What a status call reports at one instant."""

    status: str
    queue_position: int | None
    logs: list[dict[str, Any]]
    failure: Failure | None
    inference_time: float | None


class JobBook:
    """All jobs of one server, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, EmulatedJob] = {}
        self._watchers: set[asyncio.Future[None]] = set()
        self.hold_new = False  # new jobs stay IN_QUEUE until released (read under the lock as each is added)

    def add(self, **kwargs: Any) -> EmulatedJob:
        """A new job; whether it is held is decided under the lock, so a release racing the POST never leaves it
        held for ever."""
        job = EmulatedJob(
            request_id=str(uuid.uuid4()),
            submitted=time.monotonic(),
            submitted_wall=datetime.now(UTC),
            **kwargs,
        )
        with self._lock:
            job.held = self.hold_new
            self._jobs[job.request_id] = job
        return job

    def get(self, request_id: str) -> EmulatedJob | None:
        with self._lock:
            return self._jobs.get(request_id)

    def all(self) -> list[EmulatedJob]:
        with self._lock:
            return list(self._jobs.values())

    def snapshot(self, job: EmulatedJob, now: float | None = None) -> Snapshot:
        now = time.monotonic() if now is None else now
        with self._lock:
            ended_at, failure = job.end()
            start = job.start
            if now >= ended_at:
                ran = max(0.0, ended_at - start) if start <= ended_at else 0.0
                logs = _logs(job, min(now, ended_at)) if start <= ended_at else []
                timing = None if failure else round(ran, 3)
                return Snapshot("COMPLETED", None, logs, failure, timing)
            if now < start:
                return Snapshot("IN_QUEUE", self._position(job, now), [], None, None)
            return Snapshot("IN_PROGRESS", None, _logs(job, now), None, None)

    def next_change(self, job: EmulatedJob, now: float) -> float:
        """The first instant after ``now`` at which the job's status, queue position or visible log count may
        differ from what it is at ``now`` if nothing else happens (``INF`` once it ended, or while it is held
        with no deadline). Cancel and release are not foreseen: they wake :meth:`watch`."""
        with self._lock:
            ended_at, _ = job.end()
            if now >= ended_at:
                return INF
            start = job.start
            if now < start:
                if job.held or job.released is not None or job.queue_s <= 0:
                    return min(start, ended_at)
                # the position is ceil(x) - 1 with x = (start - now) / queue_s * (ahead + 1): it drops when x
                # reaches the next integer below it
                slots = job.queue_ahead + 1
                steps = math.ceil((start - now) / job.queue_s * slots) - 1
                return min(start - max(0, steps) * job.queue_s / slots, ended_at)
            times = _log_book(job)[1]
            index = bisect.bisect_right(times, now)
            return min(times[index], ended_at) if index < len(times) else ended_at

    def watch(self) -> asyncio.Future[None]:
        """A future on the running loop, resolved at the next change the clock does not decide (a cancel, a
        release, the book cleared), from whichever thread makes it. Pass it to :meth:`unwatch` when done."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._watchers.add(future)
        return future

    def unwatch(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._watchers.discard(future)

    def _wake(self) -> None:
        """Resolve every watcher (called under the lock); each on its own loop's thread."""
        watchers, self._watchers = self._watchers, set()
        for future in watchers:
            try:
                future.get_loop().call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # its loop is closed: nobody waits on it any more
                pass

    def _position(self, job: EmulatedJob, now: float) -> int:
        if job.held:
            ahead = [j for j in self._jobs.values() if j.held and j.submitted < job.submitted]
            return len(ahead)
        if job.released is not None or job.queue_s <= 0:
            return 0
        remaining = (job.start - now) / job.queue_s
        return max(0, min(job.queue_ahead, math.ceil(remaining * (job.queue_ahead + 1)) - 1))

    def cancel(self, job: EmulatedJob) -> bool:
        """Request cancellation; False when the job had already completed."""
        now = time.monotonic()
        with self._lock:
            if job.end()[0] <= now:
                return False
            job.cancelled = now
            self._wake()
            return True

    def clear(self) -> None:
        """Forget every job (between tests: each test sees only its own)."""
        with self._lock:
            self._jobs.clear()
            self._wake()

    def release(self, request_id: str | None = None, *, stop_holding: bool = False) -> int:
        """Let held jobs start now (``stop_holding``: and hold no new ones); returns how many were released."""
        now = time.monotonic()
        count = 0
        with self._lock:
            if stop_holding:
                self.hold_new = False
            for job in self._jobs.values():
                if job.held and (request_id is None or job.request_id == request_id):
                    job.held, job.released = False, now
                    count += 1
            if count:
                self._wake()
        return count


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _log_book(job: EmulatedJob) -> tuple[float, list[float], list[dict[str, Any]]]:
    """(start, when each line appears, the lines) for the job's current start, made once per start (a status
    poll with logs used to format every timestamp again); call under the book's lock."""
    start = job.start
    if job._log_book is None or job._log_book[0] != start:
        count = job.log_lines
        times = [start + job.run_s * i / max(count, 1) for i in range(count)] if start < INF else []
        lines = []
        for i, at in enumerate(times):
            wall = job.submitted_wall + timedelta(seconds=at - job.submitted)
            message = "Loading model" if i == 0 else f"Generating: step {i}/{count - 1}"
            lines.append({"message": message, "level": "INFO", "source": "USER",
                          "timestamp": wall.isoformat().replace("+00:00", "Z")})
        job._log_book = (start, times, lines)
    return job._log_book


def _logs(job: EmulatedJob, now: float) -> list[dict[str, Any]]:
    """Log lines emitted evenly over the run; the first right at start."""
    _, times, lines = _log_book(job)
    return lines[:bisect.bisect_right(times, now)]
