"""The one narrow interface between the steps that follow a job and the manager that owns it.

A step works on a :class:`JobRun` (the job's record and what only the runtime needs: uploads still to make,
the phase, the POST's answer event) and reports through a :class:`Ledger`: ``persist`` writes fields while this
process still owns the job (``LostJob`` otherwise) and tells the job's watchers. Steps never see ``Job`` or
``JobManager`` and never decide a final state; they return, or raise, and the manager decides.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from ..client.platform_wire import RequestItem
    from ..client.queue import AsyncQueueClient
    from ..client.wire import RequestHandle
    from ..config import Limits
    from ..store.records import JobRecord
    from .tracker import Tracker

__all__ = ["Phase", "JobRun", "Ledger", "handle_of"]


class Phase(enum.Enum):
    """Where a followed job stands before fal knows it; decides what a cancel does."""

    PENDING = "pending"  # not started: a cancel ends it here, nothing is sent
    UPLOADING = "uploading"  # local inputs going to fal's storage: still nothing sent to the queue
    POSTING = "posting"  # the POST is in flight: a cancel waits for its answer, then cancels at fal
    FOLLOWING = "following"  # fal answered (or the POST failed): the request id, if any, is known


@dataclass(eq=False)
class JobRun:
    """One job followed by this process: owned by the manager, worked on by the steps."""

    tracker: Tracker
    uploads: list[tuple[str, Any]] | None = None  # fresh submits: what to upload before the POST
    phase: Phase = Phase.PENDING
    accepted: asyncio.Event = field(default_factory=asyncio.Event)  # the POST got an answer (or never will)
    streamed: bool = False  # a status stream was tried (one try per job)
    cancel_wanted: bool = False  # cancelled while UNKNOWN: cancelled at fal as soon as its request is found
    logs_seen: int = -1  # fal's log count at the last reading applied (new lines only when it changes)
    resumed: bool = False  # taken over from an earlier process: fal may have finished it long ago

    @property
    def record(self) -> JobRecord:
        return self.tracker.record

    @property
    def id(self) -> str:
        return self.tracker.record.id


class Ledger(Protocol):
    """What the steps may use and whom they report to (the manager is the one implementation)."""

    outputs: Path
    submit_slots: asyncio.Semaphore
    download_slots: asyncio.Semaphore

    @property
    def stream_slots(self) -> asyncio.Semaphore:
        """The bound on status streams open at once (wider when fal multiplexes them over HTTP/2)."""

    @property
    def client(self) -> AsyncQueueClient: ...

    @property
    def schema_cache(self) -> Path | None: ...

    @property
    def limits(self) -> Limits: ...

    async def request_history(self, endpoint: str, start: datetime) -> list[RequestItem]:
        """fal's record of this account's requests to ``endpoint`` since ``start``, inputs included."""

    def request_known(self, request_id: str) -> bool:
        """True when a stored job already holds this fal request id."""

    def adopt_request(self, run: JobRun, request_id: str) -> bool:
        """Give the job this request id (found in fal's history) and its URLs; False when another job has it."""

    def restore_inputs(self, arguments: dict) -> dict:
        """The stored input with its data URIs rebuilt from the store's files."""

    def persist(self, run: JobRun, *names: str) -> None:
        """Write these record fields (and any noted ones) while this process owns the job, then tell its
        watchers; ``LostJob`` otherwise."""

    def note(self, run: JobRun, *names: str) -> None:
        """These fields changed: tell the watchers now; the store gets them with the job's next write or the
        next batch (progress a crash may lose: the next reading brings it back)."""

    def begin_result_fetch(self, run: JobRun) -> bool:
        """Record (once, in the store) that the result is being fetched; False when the job is no longer ours."""


def handle_of(record: JobRecord) -> RequestHandle:
    """fal's handle for a submitted job, from its stored URLs."""
    from ..client.wire import RequestHandle

    return RequestHandle(record.request_id, record.endpoint, record.status_url, record.response_url,
                         record.cancel_url)
