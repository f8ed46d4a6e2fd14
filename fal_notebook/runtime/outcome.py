"""How a job ended, as the steps report it and the store keeps it; the manager turns it into a final state.

The steps never decide a job's final state: :func:`outcome_of` says which state an exception means, and the
manager (the only writer of final states) records it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..errors import FalError, FalTimeoutError, JobCancelledError, NotReceivedError, ResultExpiredError
from ..store.records import JobState

__all__ = ["Outcome", "LostJob", "outcome_of", "error_to_dict", "error_from_dict"]

log = logging.getLogger("fal_notebook")


class LostJob(Exception):
    """Another process holds the job now, or it was finished elsewhere: stop following, change nothing."""


@dataclass(frozen=True)
class Outcome:
    """What following a job came to: a final state (with its error), or ``lost`` (another process has it)."""

    state: JobState | None
    error: FalError | None = None

    @property
    def lost(self) -> bool:
        return self.state is None


COMPLETED = Outcome(JobState.COMPLETED)
LOST = Outcome(None)


def outcome_of(exc: BaseException, job_id: str) -> Outcome:
    """The final state an exception out of the steps means (a bug still ends the job, visibly)."""
    if isinstance(exc, LostJob):
        return LOST
    if isinstance(exc, ResultExpiredError):
        return Outcome(JobState.EXPIRED, exc)
    if isinstance(exc, NotReceivedError):
        return Outcome(JobState.NOT_RECEIVED, exc)
    if isinstance(exc, FalError):
        cancelled = isinstance(exc, JobCancelledError) or getattr(exc, "error_type", None) == "request_cancelled"
        return Outcome(JobState.CANCELLED if cancelled else JobState.FAILED, exc)
    log.error("job %s failed inside fal_notebook", job_id, exc_info=exc)
    return Outcome(JobState.FAILED, FalError(f"internal error while following the job: {exc!r}"))


def error_to_dict(error: BaseException) -> dict[str, Any]:
    """What the store keeps of an error: class, message and fal's fields. Never the key (errors carry none)."""
    return {
        "class": type(error).__name__,
        "message": str(error),
        "error_type": getattr(error, "error_type", None),
        "detail": getattr(error, "detail", None),
        "status_code": getattr(error, "status_code", None),
        "request_id": getattr(error, "request_id", None),
    }


def error_from_dict(data: dict[str, Any]) -> FalError:
    """The typed error back from its stored form (unknown classes become ``FalError``)."""
    cls = getattr(errors, str(data.get("class")), FalError)
    if not (isinstance(cls, type) and issubclass(cls, FalError)):
        cls = FalError
    message = data.get("message") or cls.__name__
    if issubclass(cls, errors.RequestError):
        return cls(message, status_code=data.get("status_code"), detail=data.get("detail"),
                   error_type=data.get("error_type"), request_id=data.get("request_id"))
    if cls in (JobCancelledError, FalTimeoutError):
        return cls(message, request_id=data.get("request_id"))
    try:
        return cls(message)
    except TypeError:  # a class with a richer constructor (ValidationError): keep the text
        return FalError(message)
