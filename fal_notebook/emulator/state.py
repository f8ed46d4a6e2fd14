"""Everything one emulator instance remembers: knobs, jobs, stored bytes, tokens and the request record."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from fal_notebook.emulator.blobs import BlobStore
from fal_notebook.emulator.faults import FaultPlan
from fal_notebook.emulator.jobs import JobBook
from fal_notebook.emulator.knobs import FaultGate, Knobs

__all__ = ["SeenRequest", "EmulatorState", "RECORDED_HEADERS"]

# Headers worth asserting on. Authorization is never stored: only whether it was there and its scheme.
RECORDED_HEADERS = (
    "content-type", "content-length", "accept", "user-agent", "x-fal-file-name", "x-fal-queue-priority",
    "x-fal-runner-hint", "x-fal-request-timeout", "x-fal-object-lifecycle-preference", "x-fal-store-io",
    "x-fal-no-retry", "transfer-encoding",
)
MAX_RECORDS = 20_000  # read when a state is made (a benchmark raises it first to keep every request of a run)


@dataclass(frozen=True)
class SeenRequest:
    """One HTTP request as the emulator saw it (without any credential)."""

    method: str
    path: str
    query: str
    authorized: bool  # an Authorization header was present
    headers: dict[str, str] = field(default_factory=dict)
    auth_scheme: str | None = None  # "Key", "Bearer", … (the credential itself is never kept)
    at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EmulatorState:
    """Shared by the ASGI app (server thread) and :class:`EmulatorServer` (test thread); every part locks."""

    def __init__(self, scenario: str = "fast") -> None:
        self._lock = threading.Lock()
        self._knobs = Knobs(scenario=scenario)
        self.gate = FaultGate()
        self.faults = FaultPlan()
        self.book = JobBook()
        self.store = BlobStore()
        self._records: deque[SeenRequest] = deque(maxlen=MAX_RECORDS)  # the oldest fall off in O(1)
        self.cdn_tokens: set[str] = set()
        self.signed_uploads: dict[str, str] = {}  # blob key → signature
        self.multipart: dict[str, str] = {}  # uploadId → blob key

    @property
    def knobs(self) -> Knobs:
        with self._lock:
            return self._knobs

    def configure(self, **changes: Any) -> Knobs:
        """Apply knob changes (``scenario=`` included) and restart the fault counters."""
        with self._lock:
            self._knobs = self._knobs.updated(**changes)
            knobs = self._knobs
        self.gate.reset()
        self.faults.reset(knobs.fault_seed)
        return knobs

    def reset(self, scenario: str = "fast") -> None:
        """Back to a fresh scenario with default knobs, no jobs, nothing held, no records (between tests)."""
        with self._lock:
            self._knobs = Knobs(scenario=scenario)
            self._records.clear()
        self.gate.reset()
        self.faults.reset(0)
        self.book.hold_new = False
        self.book.clear()

    def record(self, seen: SeenRequest) -> None:
        with self._lock:
            self._records.append(seen)

    def records(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._records)

    def clear_records(self) -> None:
        with self._lock:
            self._records.clear()


def seen_from_scope(scope: dict[str, Any]) -> SeenRequest:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    auth = headers.get("authorization")
    scheme = auth.split(" ", 1)[0] if auth else None
    return SeenRequest(
        method=scope["method"],
        path=scope["path"],
        query=scope.get("query_string", b"").decode("latin-1"),
        authorized=auth is not None,
        headers={k: headers[k] for k in RECORDED_HEADERS if k in headers},
        auth_scheme=scheme,
        at=time.time(),
    )
