"""One job's record as this process knows it, and who waits for it or watches it change.

The manager owns every tracker and is the only one that replaces the record or settles it; a :class:`Job` reads
it and asks its manager (through :class:`Host`) for anything else. Waiters are futures (one per waiter, so
cancelling one touches nobody else); callbacks carry no data and their errors are logged, never raised.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ..store.records import JobRecord

__all__ = ["Tracker", "Host"]

log = logging.getLogger("fal_notebook")


class Host(Protocol):
    """What a ``Job`` needs of the manager that made it (the manager is the one implementation)."""

    def follows(self, job_id: str) -> bool:
        """True while this process's runtime follows the job (else its record is re-read from the store)."""

    def refresh(self, job_id: str) -> None:
        """Re-read a job this process does not follow."""

    def watch(self, job_id: str) -> None:
        """Someone waits for the job: keep it moving here or re-read it until it ends."""

    def cancel_job(self, job_id: str, timeout: float | None) -> str:
        """Ask fal to cancel; fal's answer or the final state."""

    def resubmit_job(self, job_id: str) -> None:
        """Send again a job fal did not receive (``NOT_RECEIVED``)."""

    def retry_downloads(self, job_ids: Iterable[str] | None = None, timeout: float | None = None) -> int:
        """Try again outputs a completed job could not write; how many are still pending."""

    def on_runtime_thread(self) -> bool:
        """True on the runtime loop's thread, where blocking would stall every job."""

    def annotate(self, job_id: str, **values: Any) -> None:
        """Keep the user's rating / label / note of the job."""

    def related(self, job_id: str, up: bool) -> list[tuple[Any, str]]:
        """``(job, kind)`` pairs: the jobs whose results it used (``up``), or that used its results."""

    def rerun(self, job_id: str, changes: Mapping[str, Any], **options: Any) -> Any:
        """Submit the job again (same model, input and seed) with ``changes``."""


class Tracker:
    """The record, the end event, the waiters and the change callbacks of one job id in one process."""

    def __init__(self, record: JobRecord) -> None:
        self.record = record
        self.refreshed = time.monotonic()  # when the record was last read from the store
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._waiters: list[concurrent.futures.Future] = []
        self.callbacks: list[Callable[[], Any]] = []
        if record.state.terminal:
            self._done.set()

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def settled(self) -> bool:
        """True once the end was announced (waiters woken)."""
        return self._done.is_set()

    @property
    def awaited(self) -> bool:
        """True while someone waits for the end."""
        return bool(self._waiters)

    def replace(self, record: JobRecord) -> None:
        """A fresher record (read from the store, or claimed)."""
        self.record = record
        self.refreshed = time.monotonic()

    def reopen(self, record: JobRecord) -> None:
        """The job was ended and is going again (a resubmit): new waiters wait for its new end."""
        with self._lock:
            self._done.clear()
        self.replace(record)

    def waiter(self) -> concurrent.futures.Future:
        """A fresh future completed with ``None`` when the job ends (already done if it has)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._done.is_set():
                future.set_result(None)
            else:
                self._waiters.append(future)
        return future

    def subscribe(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call ``callback()`` after every change; returns a function that unsubscribes it."""
        with self._lock:
            self.callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self.callbacks:
                    self.callbacks.remove(callback)

        return unsubscribe

    def notify(self) -> None:
        """Tell every subscriber something changed (on the caller's thread)."""
        with self._lock:
            callbacks = list(self.callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("a change callback of job %s failed", self.id)

    def settle(self) -> None:
        """The job ended: wake every waiter, then tell the subscribers."""
        with self._lock:
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)
        self.notify()
