"""Cancelling at fal: ``PUT …/cancel`` once the POST has an answer, and what fal's reply means.

The manager decides what a cancel does to the job (only it records final states): ``CANCELLATION_REQUESTED``
ends the job as CANCELLED; ``ALREADY_COMPLETED`` leaves it to finish normally (its result is fetched as usual);
a job not yet sent is simply not sent.
"""

from __future__ import annotations

from ..errors import JobCancelledError
from ..store.records import JobRecord
from .ledger import JobRun, Ledger, Phase, handle_of

__all__ = ["CONFIRMED", "unsent", "ask_fal", "cancelled_error"]

CONFIRMED = ("CANCELLATION_REQUESTED", "OK")


def unsent(run: JobRun) -> bool:
    """Nothing has reached fal's queue yet (uploads may be in flight): a cancel needs no request."""
    return run.record.request_id is None and run.phase in (Phase.PENDING, Phase.UPLOADING)


def cancelled_error(record: JobRecord) -> JobCancelledError:
    """The error a cancelled job keeps."""
    if record.request_id is None:
        return JobCancelledError(f"job {record.id} was cancelled before it was sent")
    return JobCancelledError(f"request {record.request_id} was cancelled", request_id=record.request_id)


async def ask_fal(ledger: Ledger, run: JobRun) -> str | None:
    """Wait for a POST in flight, then ask fal to cancel; fal's answer, or ``None`` when there is nothing to
    cancel (the POST failed, or the job ended meanwhile)."""
    rec = run.record
    if rec.request_id is None:
        await run.accepted.wait()
    if rec.request_id is None or rec.state.terminal:
        return None
    return await ledger.client.cancel(handle_of(rec))
