"""The job store's row model: states, one ``JobRecord`` per job, and its conversion to and from SQLite.

Times are UTC-aware ``datetime`` values stored as ISO 8601 text with the offset; list and dict columns are JSON.
"""

from __future__ import annotations

import collections
import json
import os
import secrets
import socket
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .schema import JSON_COLUMNS

__all__ = ["JobState", "JobRecord", "UNFINISHED", "COLUMNS", "utcnow", "new_job_id", "new_owner",
           "to_sql", "from_row", "owner_alive"]

LOG_TAIL = 200  # log lines kept per job (the newest)
LOG_LINE_MAX = 2_000


class JobState(StrEnum):
    """Where a job is. fal itself knows only IN_QUEUE / IN_PROGRESS / COMPLETED; the rest are ours."""

    SUBMITTING = "SUBMITTING"  # stored locally, uploads / POST not yet acknowledged (no request id yet)
    IN_QUEUE = "IN_QUEUE"  # fal accepted it and it waits for a runner (queue_position set)
    IN_PROGRESS = "IN_PROGRESS"  # a runner works on it (logs grow)
    COMPLETED = "COMPLETED"  # result fetched and media downloaded
    FAILED = "FAILED"  # fal's COMPLETED with an error, a refused submit, or an unusable input
    CANCELLED = "CANCELLED"  # fal confirmed the cancel request before a result existed
    EXPIRED = "EXPIRED"  # fal no longer holds the result (kept 1 h; 6 min for >= 10 KB)
    UNKNOWN = "UNKNOWN"  # the POST was sent, its reply never came: being looked up in fal's request history
    NOT_RECEIVED = "NOT_RECEIVED"  # fal's history shows it never got the POST: resubmit() sends it on request

    @property
    def terminal(self) -> bool:
        """True once nothing more will happen to the job."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED,
                       JobState.NOT_RECEIVED})
UNFINISHED = tuple(s.value for s in JobState if not s.terminal)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    """A local id: 12 hex digits (6 are shown, any unique prefix resolves)."""
    return secrets.token_hex(6)


def new_owner() -> str:
    """``host:pid:nonce``: who holds a job's lease. The pid lets a process on this host see its owner died."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class JobRecord:
    """One job as stored. ``arguments`` hold ``{"$data_uri": sha256, ...}`` references, never data URIs."""

    id: str
    endpoint: str
    arguments: dict = field(default_factory=dict)
    state: JobState = JobState.SUBMITTING
    request_id: str | None = None
    status_url: str | None = None
    response_url: str | None = None
    cancel_url: str | None = None
    queue_position: int | None = None
    logs: list = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    inference_time: float | None = None
    result: dict | None = None
    error: dict | None = None  # {"class", "message", "error_type", "detail", "status_code"}
    files: list = field(default_factory=list)
    origin: str = "script"
    tags: list = field(default_factory=list)
    options: dict = field(default_factory=dict)  # priority, webhook_url, start_timeout, hint, validate
    owner: str | None = None
    lease_until: float | None = None
    submit_attempts: int = 0
    result_fetches: int = 0
    estimate: dict | None = None  # the price before paying (catalog.pricing.estimate_for); None: no price known
    rating: int | None = None  # the user's 1..5
    label: str | None = None
    note: str | None = None

    def add_logs(self, lines: Iterable[str]) -> None:
        """Append log lines, keeping the newest ``LOG_TAIL`` (each cut to ``LOG_LINE_MAX`` characters). The
        work is bounded by the lines given and the tail, never by the whole history."""
        newest = collections.deque(lines, maxlen=LOG_TAIL)
        self.logs.extend(str(line)[:LOG_LINE_MAX] for line in newest)
        del self.logs[:-LOG_TAIL]


COLUMNS = tuple(f.name for f in fields(JobRecord))
_TIME_COLUMNS = ("created_at", "updated_at", "submitted_at", "started_at", "finished_at")


def to_sql(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in JSON_COLUMNS:
        return json.dumps(value, separators=(",", ":"), default=str)
    if name in _TIME_COLUMNS:
        return value.astimezone(UTC).isoformat()
    if name == "state":
        return JobState(value).value
    return value


def from_row(row: sqlite3.Row) -> JobRecord:
    values: dict[str, Any] = {}
    for name in COLUMNS:
        value = row[name]
        if value is not None and name in JSON_COLUMNS:
            value = json.loads(value)
        elif value is not None and name in _TIME_COLUMNS:
            value = datetime.fromisoformat(value)
        values[name] = value
    values["state"] = JobState(values["state"])
    for name in ("logs", "files", "tags"):
        values[name] = values[name] or []
    values["arguments"] = values["arguments"] or {}
    values["options"] = values["options"] or {}
    return JobRecord(**values)


def owner_alive(owner: str) -> bool:
    """False only when the owner ran on this host and its pid no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, somebody else's
        return True
    return True
