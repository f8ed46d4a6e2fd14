"""Cancelling a job: fal's ``PUT …/cancel``, then the job's final state once fal confirmed it.

``CANCELLATION_REQUESTED`` ends the job as CANCELLED; ``ALREADY_COMPLETED`` leaves it to finish normally (its
result is fetched as usual). A job not yet sent is simply not sent.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import FalError, JobCancelledError
from ..store.db import JobState, utcnow
from .job import error_to_dict
from .steps import handle_of

if TYPE_CHECKING:
    from .job import Job
    from .manager import JobManager

__all__ = ["cancel_live", "cancel_elsewhere"]

CONFIRMED = ("CANCELLATION_REQUESTED", "OK")


def _stop_task(mgr: JobManager, job: Job) -> None:
    task = mgr._tasks.get(job.id)
    if task is not None and task is not asyncio.current_task():
        task.cancel()


def _unsent(mgr: JobManager, job: Job) -> str:
    _stop_task(mgr, job)
    mgr.finish(job, JobState.CANCELLED, JobCancelledError(f"job {job.id} was cancelled before it was sent"))
    return "CANCELLED"


async def cancel_live(mgr: JobManager, job: Job) -> str:
    """Cancel a job this process follows. A POST in flight is awaited first, then cancelled remotely."""
    rec = job._record
    if rec.request_id is None and job._phase in ("pending", "uploading"):
        return _unsent(mgr, job)
    if rec.request_id is None:
        await job.accepted.wait()
    if rec.request_id is None or rec.state.terminal:
        return rec.state.value
    answer = await mgr.client.cancel(handle_of(job))
    if answer in CONFIRMED and not rec.state.terminal:
        _stop_task(mgr, job)
        mgr.finish(job, JobState.CANCELLED, JobCancelledError(f"request {rec.request_id} was cancelled",
                                                              request_id=rec.request_id))
    return answer


async def cancel_elsewhere(mgr: JobManager, job: Job) -> str:
    """Cancel a job this process does not follow: the PUT, then the row (unless it ended meanwhile)."""
    mgr.refresh(job)
    rec = job._record
    if rec.state.terminal:
        return rec.state.value
    if rec.request_id is None:  # never sent: only its holder may decide; take it if nobody holds it
        claimed = mgr.store.claim(job.id, mgr.owner, mgr.LEASE)
        if claimed is None:
            raise FalError(f"job {job.id} is being submitted by another process; cancel it again shortly")
        job._record = claimed
        return _unsent(mgr, job)
    answer = await mgr.client.cancel(handle_of(job))
    if answer in CONFIRMED:
        error = error_to_dict(JobCancelledError(f"request {rec.request_id} was cancelled",
                                                request_id=rec.request_id))
        mgr.store.update(job.id, unfinished=True, state=JobState.CANCELLED, error=error, finished_at=utcnow(),
                         queue_position=None)
        mgr.refresh(job)
    return answer
