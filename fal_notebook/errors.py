"""Every error fal_notebook raises, in one place.

The tree (the only copy; keep it in step with the classes below):

* FalError
  * ConfigError ............ no API key, or a setting that cannot be used
  * StoreError ............. the job store cannot be used (unreadable, read-only for a write, newer, disk full)
  * UsageError ............. a %fal line or a fal-notebook command that does not parse (message says why)
  * ValidationError ........ the input breaks the model's schema; nothing was sent
  * UnknownModelError ...... a model id or alias that no catalogue and no schema source knows
  * UploadError ............ a local file could not be put on fal's CDN
  * TransportError ......... the network failed and retries were used up
    * UnknownOutcomeError .. a submit was sent but its reply never came: fal may or may not have the request
  * FalTimeoutError ........ a call or a wait took longer than its timeout (also a builtin TimeoutError)
  * RequestError ........... fal answered with an HTTP error (status_code, detail, error_type)
    * AuthError ............ 401 / 403: the key is wrong, malformed or the account is locked
    * NotFoundError ........ 404: unknown app or request id
    * JobFailedError ....... the request ended COMPLETED with an error; fal's detail is kept
      * ResultExpiredError . the result is gone: fal keeps it 1 h (6 min for >= 10 KB)
  * JobCancelledError ...... the request was cancelled before it produced a result
  * CostLimitError ......... the estimate exceeds max_cost; nothing was sent (confirm=True / --yes sends it)
  * NotReceivedError ....... fal's request history shows it never received a submit (safe to send again)

Library code raises only these. The magics turn them into one-line usage errors and the CLI into an exit code.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "one_line",
    "FalError",
    "ConfigError",
    "StoreError",
    "UsageError",
    "ValidationError",
    "UnknownModelError",
    "UploadError",
    "TransportError",
    "FalTimeoutError",
    "RequestError",
    "AuthError",
    "NotFoundError",
    "JobFailedError",
    "ResultExpiredError",
    "JobCancelledError",
    "CostLimitError",
    "UnknownOutcomeError",
    "NotReceivedError",
    "Problem",
    "detail_lines",
    "counted",
]


class FalError(Exception):
    """Base class of every fal_notebook error."""


class ConfigError(FalError):
    """A setting is missing or unusable, most often the API key."""


class StoreError(FalError):
    """The job store cannot be opened or written (permissions, a read-only home, a full disk, a newer schema).
    Reading commands still work on a read-only store."""


class UsageError(FalError):
    """A command line (``%fal …`` or ``fal-notebook …``) does not parse; the message says what was expected."""


class Problem:
    """One thing wrong with an input: the field, what is wrong, and what is allowed."""

    __slots__ = ("field", "message", "allowed")

    def __init__(self, field: str, message: str, allowed: str | None = None) -> None:
        self.field = field
        self.message = message
        self.allowed = allowed

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}"
        return f"{text} (allowed: {self.allowed})" if self.allowed else text

    def __repr__(self) -> str:
        return f"Problem({self.field!r}, {self.message!r}, allowed={self.allowed!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and (self.field, self.message, self.allowed) == (
            other.field,
            other.message,
            other.allowed,
        )

    def __hash__(self) -> int:
        return hash((self.field, self.message, self.allowed))


class ValidationError(FalError):
    """The input breaks the model's rules. Lists every problem at once; nothing was sent."""

    def __init__(self, model: str, problems: list[Problem], warnings: list[str] | None = None) -> None:
        self.model = model
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        lines = [f"{counted(len(self.problems), 'problem')} with the input for {model}; nothing was sent:"]
        lines += [f"  - {p}" for p in self.problems]
        lines += [f"  (warning) {w}" for w in self.warnings]
        super().__init__("\n".join(lines))


class UnknownModelError(FalError):
    """No bundled entry, cached schema or reachable OpenAPI document describes this model."""


class UploadError(FalError):
    """A local file, bytes or image could not be uploaded to fal's CDN."""


class TransportError(FalError):
    """The network failed (connection refused, reset, timed out) and every retry failed too."""


class FalTimeoutError(FalError, builtins.TimeoutError):
    """A call or a wait ran past its timeout. The remote request, if any, keeps running unless cancelled."""

    def __init__(self, message: str, *, timeout: float | None = None, request_id: str | None = None) -> None:
        self.timeout = timeout
        self.request_id = request_id
        super().__init__(message)


class RequestError(FalError):
    """fal answered with an HTTP error.

    ``detail`` is fal's ``detail`` as sent: a string, or for 422 the list of ``{loc, msg, type}`` entries,
    kept structured. ``error_type`` comes from the body or the ``X-Fal-Error-Type`` header.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        detail: Any = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.detail = detail
        self.error_type = error_type
        self.request_id = request_id
        super().__init__(message)


class AuthError(RequestError):
    """401/403: the key was refused. Check FAL_KEY (format ``key_id:key_secret``) or top up the account."""


class NotFoundError(RequestError):
    """404: fal knows no such app, or no such request id."""


class JobFailedError(RequestError):
    """The request reached COMPLETED with an error; fal's result call returned it (detail, error_type)."""


class ResultExpiredError(JobFailedError):
    """fal no longer holds the result (kept 1 h after completion, 6 min when it is 10 KB or more)."""


class JobCancelledError(FalError):
    """The request was cancelled before it produced a result."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        super().__init__(message)


class CostLimitError(FalError):
    """The estimated cost is above the ``max_cost`` budget; nothing was sent. ``estimate`` holds the figures
    (``model``, ``unit_price``, ``unit``, ``quantity``, ``total``, ``currency``)."""

    def __init__(self, message: str, *, estimate: dict[str, Any] | None = None, max_cost: float | None = None
                 ) -> None:
        self.estimate = dict(estimate or {})
        self.max_cost = max_cost
        super().__init__(message)
class UnknownOutcomeError(TransportError):
    """A submit left this machine but its reply never arrived (a reset or timeout after sending, a crash between
    the POST and storing its reply). fal may have the request, and bills it if so: it is never sent again
    blindly; the runtime looks for it in fal's request history instead."""


class NotReceivedError(FalError):
    """fal's request history, read after its listing delay, has no request matching a submit whose reply was
    lost: fal did not receive it. ``job.resubmit()`` / ``fal-notebook resubmit ID`` sends it on request."""


def _detail_entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    loc = [str(part) for part in entry.get("loc") or [] if part != "body"]
    msg = str(entry.get("msg") or entry.get("message") or entry.get("type") or entry)
    return f"{'.'.join(loc)}: {msg}" if loc else msg


def detail_lines(detail: Any) -> list[str]:
    """fal's ``detail`` as lines a person reads: one ``field: message`` per entry of a 422 list. Shared by
    error messages and job cards, so both word a refusal alike."""
    if detail is None or detail == "":
        return []
    return [_detail_entry(entry) for entry in (detail if isinstance(detail, list) else [detail])]


def one_line(error: BaseException) -> str:
    """An error's text on one line (CLI stderr, IPython usage errors): a ValidationError's problems joined with
    ``;``. Help text (``usage: …``) keeps its lines."""
    text = str(error).strip()
    if text.startswith("usage:") or "\noptions:" in text:
        return text
    parts = [part.strip().removeprefix("- ") for part in text.splitlines() if part.strip()]
    return "; ".join(parts).replace(":;", ":") or type(error).__name__


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 job``, ``2 jobs``, ``0 jobs``: messages say it right instead of "1 job(s)" or "1 lines"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
