"""Emulated queue requests whose state is a pure function of the clock.

A job never needs a background task: its phase (IN_QUEUE → IN_PROGRESS → COMPLETED), queue position and visible
log lines are computed from its timestamps whenever someone asks. That keeps the emulator thread-safe with one lock
(tests call ``hold``/``release`` from their own thread) and makes timing scenarios exact.
"""

from __future__ import annotations

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
            return True

    def clear(self) -> None:
        """Forget every job (between tests: each test sees only its own)."""
        with self._lock:
            self._jobs.clear()

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
        return count


def _logs(job: EmulatedJob, now: float) -> list[dict[str, Any]]:
    """Log lines emitted evenly over the run; the first right at start."""
    lines = []
    for i in range(job.log_lines):
        at = job.start + job.run_s * i / max(job.log_lines, 1)
        if at > now:
            break
        wall = job.submitted_wall + timedelta(seconds=at - job.submitted)
        message = "Loading model" if i == 0 else f"Generating: step {i}/{job.log_lines - 1}"
        lines.append(
            {
                "message": message,
                "level": "INFO",
                "source": "USER",
                "timestamp": wall.isoformat().replace("+00:00", "Z"),
            }
        )
    return lines
