"""Scenarios and knobs: how fast jobs run and which faults the emulator injects.

One :class:`Knobs` value is live per server; ``configure`` swaps it whole (and resets the fault counters), so a
test that switches scenario never sees a half-applied configuration.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace
from typing import Any

from fal_notebook.emulator.faults import check_faults
from fal_notebook.errors import ConfigError

__all__ = ["Knobs", "FaultGate", "TIMING_SCENARIOS", "FAULT_SCENARIOS", "SCENARIOS"]

# (seconds in queue, seconds in progress) per timing scenario; faults run at "fast" speed.
TIMING_SCENARIOS: dict[str, tuple[float, float]] = {
    "fast": (0.05, 0.15),
    "normal": (1.0, 2.0),
    "slow": (3.0, 12.0),
}
FAULT_SCENARIOS = frozenset(
    {"rate_limit", "ingress_502", "app_503", "reset", "hung_status", "expired", "error", "locked"}
)
SCENARIOS = frozenset(TIMING_SCENARIOS) | FAULT_SCENARIOS


@dataclass(frozen=True)
class Knobs:
    """Everything a test may turn. ``None`` timings mean "as the scenario says"."""

    scenario: str = "fast"
    queue_seconds: float | None = None
    run_seconds: float | None = None
    queue_ahead: int = 3  # queue_position right after submit (counts down to 0)
    log_lines: int = 4
    fault_count: int = 2  # the first N matching calls fail (rate_limit, ingress_502, app_503, reset, hung_status)
    retry_after: float = 1.0
    hang_seconds: float = 5.0
    ping_interval: float = 15.0
    allow_subpath: bool = False  # accept sub-path status URLs instead of answering 405
    valid_keys: tuple[str, ...] | None = None  # key ids accepted; None accepts any well-formed key
    platform_status: int = 0  # non-zero: every /v1/… platform call answers this HTTP status
    faults: dict[str, dict[str, Any]] | None = None  # per-route faults (see emulator/faults.py)
    fault_seed: int = 0  # seeds which calls a fault with a rate < 1 hits
    usage_access: bool = True  # False: /v1/models/usage answers 403 (a key without admin scope)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"unknown emulator scenario {self.scenario!r}; choose from {sorted(SCENARIOS)}")

    @property
    def timing(self) -> tuple[float, float]:
        """(queue seconds, run seconds) after knob overrides."""
        queue_s, run_s = TIMING_SCENARIOS.get(self.scenario, TIMING_SCENARIOS["fast"])
        if self.queue_seconds is not None:
            queue_s = self.queue_seconds
        if self.run_seconds is not None:
            run_s = self.run_seconds
        return queue_s, run_s

    def updated(self, **changes: Any) -> Knobs:
        """A copy with ``changes``; unknown names are refused so a typo in a test fails loudly."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown emulator knob(s) {unknown}; known: {sorted(known)}")
        if changes.get("valid_keys") is not None:
            changes["valid_keys"] = tuple(changes["valid_keys"])
        if "faults" in changes:
            changes["faults"] = check_faults(changes["faults"]) or None
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["valid_keys"] = list(self.valid_keys) if self.valid_keys is not None else None
        return data


class FaultGate:
    """Counts calls per fault kind so that exactly the first ``fault_count`` of them fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def take(self, kind: str, limit: int) -> bool:
        """True when this call should fail (and counts it)."""
        with self._lock:
            used = self._counts.get(kind, 0)
            if used >= limit:
                return False
            self._counts[kind] = used + 1
            return True

    def used(self, kind: str) -> int:
        with self._lock:
            return self._counts.get(kind, 0)
