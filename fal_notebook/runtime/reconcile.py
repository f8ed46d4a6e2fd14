"""A submit whose reply never arrived: find out from fal's request history whether fal has it.

A reset or timeout after the POST left, or a process killed between the POST and storing its reply, leaves a
job whose request fal may be running (and billing). Sending it again could make a second paid request, calling
it failed would lose the first. So the job becomes ``UNKNOWN`` and is looked up in fal's request history
(``GET /v1/models/requests/by-endpoint`` with ``expand=payloads``): a request to the same endpoint, sent after
this job was posted, whose input is the one this job sent, and that no other stored job already holds.

* found → its request id is adopted and the job is followed as usual;
* not found once fal's listing delay has passed since the POST → ``NotReceivedError``: the job ends
  ``NOT_RECEIVED``, and ``job.resubmit()`` / ``fal-notebook resubmit ID`` sends it on request;
* the history cannot be read (no platform access, network down) for longer than fal keeps results → the job
  ends ``EXPIRED`` with an ``UnknownOutcomeError`` saying so, so a wait always returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import (
    AuthError,
    FalError,
    JobCancelledError,
    NotReceivedError,
    ResultExpiredError,
    UnknownOutcomeError,
)
from ..store.records import JobState, utcnow
from .ledger import handle_of

if TYPE_CHECKING:
    from .ledger import JobRun, Ledger

__all__ = ["reconcile_step", "last_look", "needs_reconcile", "same_input", "mark_posting", "POSTED_AT",
           "CLEARED"]

log = logging.getLogger("fal_notebook")
POSTED_AT = "posted_at"  # option: when the last POST left (ISO 8601, UTC)
CLEARED = "cleared_attempts"  # option: POSTs known not to have reached fal (resubmit() sets it)
CLOCK_SKEW = timedelta(minutes=5)  # fal's clock and ours may differ: the history window opens earlier
LOOK_EVERY = 5.0  # seconds between two reads of the history


def mark_posting(record: Any) -> None:
    """Before a POST: count the attempt and note when it left (both persisted before sending)."""
    record.submit_attempts += 1
    record.options = {**record.options, POSTED_AT: utcnow().isoformat()}


def needs_reconcile(record: Any) -> bool:
    """True when a POST may have reached fal but its reply was never stored."""
    return record.request_id is None and record.submit_attempts > int(record.options.get(CLEARED, 0) or 0)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def same_input(listed: Any, sent: dict[str, Any]) -> bool:
    """fal's ``json_input`` holds every field this job sent, with the same values (fal may add defaults)."""
    if not isinstance(listed, dict):
        return False
    return all(name in listed and _canonical(listed[name]) == _canonical(value) for name, value in sent.items())


def _when(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _posted_at(record: Any) -> datetime:
    return _when(record.options.get(POSTED_AT)) or record.updated_at or record.created_at


def _adopt_match(ledger: Ledger, run: JobRun, items: list, sent: dict, now: datetime) -> bool:
    """Adopt the earliest listed request with this job's input that no stored job holds; True if one was."""
    found = sorted((i for i in items if same_input(i.json_input, sent)), key=lambda i: _when(i.sent_at) or now)
    for item in found:
        if not ledger.request_known(item.request_id) and ledger.adopt_request(run, item.request_id):
            log.info("job %s: fal has its request %s; following it", run.id, item.request_id)
            return True
    return False


async def last_look(ledger: Ledger, run: JobRun) -> bool:
    """Before a resubmit sends the job again: one more look at fal's history (a request that runs long may be
    listed late); True when its request turned up and was adopted instead."""
    rec = run.record
    try:
        items = await ledger.request_history(rec.endpoint, _posted_at(rec) - CLOCK_SKEW)
    except FalError as exc:
        log.warning("job %s: fal's request history could not be read before resubmitting (%s)", rec.id, exc)
        return False
    return _adopt_match(ledger, run, items, ledger.restore_inputs(rec.arguments), utcnow())


async def reconcile_step(ledger: Ledger, run: JobRun) -> None:
    """Look for the job's request in fal's history until found (adopted), or until fal's listing delay says
    it was never received (``NotReceivedError``); see the module docstring."""
    rec = run.record
    sent = ledger.restore_inputs(rec.arguments)
    posted = _posted_at(rec)
    if rec.state is not JobState.UNKNOWN:
        rec.state = JobState.UNKNOWN
        ledger.persist(run, "state")
    limits = ledger.limits
    problem: FalError | None = None
    while True:
        looked_at = utcnow()
        try:
            items = await ledger.request_history(rec.endpoint, posted - CLOCK_SKEW)
        except FalError as exc:
            problem = exc
            log.warning("job %s: fal's request history could not be read (%s); trying again", rec.id, exc)
        else:
            problem = None
            if _adopt_match(ledger, run, items, sent, looked_at):
                if run.cancel_wanted:  # the user cancelled while it was UNKNOWN
                    await ledger.client.cancel(handle_of(rec))
                    raise JobCancelledError(f"request {rec.request_id} was cancelled", request_id=rec.request_id)
                return
            if looked_at - posted >= timedelta(seconds=limits.listing_delay):
                if run.cancel_wanted:
                    raise JobCancelledError(f"job {rec.id} was cancelled; fal never received it")
                raise NotReceivedError(
                    f"fal did not receive job {rec.id}: its request history shows no {rec.endpoint} request "
                    f"with this input since {posted:%H:%M:%S} UTC. Nothing was billed; "
                    f"`fal-notebook resubmit {rec.id}` or job.resubmit() sends it again")
        if problem is not None and (looked_at - posted).total_seconds() >= limits.unfollowable_seconds:
            hint = " (the key needs access to fal's platform API)" if isinstance(problem, AuthError) else ""
            raise ResultExpiredError(
                f"the outcome of job {rec.id} stays unknown: its submit's reply was lost and fal's request "
                f"history could not be read for {limits.unfollowable_seconds / 60:.0f} min{hint}: {problem}. "
                "If fal ran it, its result is no longer kept; see https://fal.ai/dashboard/requests"
            ) from UnknownOutcomeError(str(problem))
        await asyncio.sleep(min(LOOK_EVERY, max(0.05, limits.listing_delay / 4)))
