"""The CLI's exit codes: one table, printed by ``--help`` and used by :func:`exit_code`."""

from __future__ import annotations

from ..errors import (
    AuthError,
    ConfigError,
    CostLimitError,
    FalTimeoutError,
    JobCancelledError,
    NotFoundError,
    NotReceivedError,
    RequestError,
    StoreError,
    TransportError,
    UnknownModelError,
    UnknownOutcomeError,
    UploadError,
    UsageError,
    ValidationError,
)

__all__ = ["EXIT_CODES", "EXIT_CODE_TEXT", "exit_code", "OK", "INTERNAL", "INTERRUPTED"]

OK, INTERNAL, INTERRUPTED = 0, 70, 130

# code → (what it means, the error classes that lead to it; the first matching class wins, in table order)
EXIT_CODES: dict[int, tuple[str, tuple[type[BaseException], ...]]] = {
    OK: ("ok", ()),
    1: ("no API key, or fal refused the key", (ConfigError, AuthError)),
    2: ("usage: an unknown command, arguments that do not parse, JSON that is not JSON", (UsageError,)),
    3: ("unknown model, or no such job", (UnknownModelError, NotFoundError)),
    4: ("invalid input: the input breaks the model's schema or limits (nothing was sent), or a file is "
        "unusable", (ValidationError, UploadError)),
    9: ("a submit's reply was lost and fal's request history does not show it (UNKNOWN), or shows fal never "
        "received it (NOT_RECEIVED: `fal-notebook resubmit ID` sends it again)", (UnknownOutcomeError,
                                                                                 NotReceivedError)),
    6: ("timed out waiting", (FalTimeoutError,)),
    7: ("the network failed and retries were used up", (TransportError,)),
    5: ("the request failed on fal's side (an error result, cancelled, expired, an HTTP error)",
        (RequestError, JobCancelledError)),
    8: ("over budget: the estimated cost exceeds max_cost (FAL_NOTEBOOK_MAX_COST); nothing was sent, --yes "
        "sends it anyway", (CostLimitError,)),
    10: ("the job store cannot be used: unreadable, read-only for a command that writes, newer than this "
         "version, or the disk is full (the message names the file)", (StoreError,)),
    INTERNAL: ("internal error (a bug: please report it with the command line)", ()),
    INTERRUPTED: ("interrupted (Ctrl-C)", ()),
}

EXIT_CODE_TEXT = "\n".join(f"  {code:<3} {meaning}" for code, (meaning, _) in sorted(EXIT_CODES.items()))


def exit_code(exc: BaseException) -> int:
    """The documented exit code of an error (:data:`EXIT_CODES`); :data:`INTERNAL` for anything unexpected."""
    for code, (_, classes) in EXIT_CODES.items():
        if classes and isinstance(exc, classes):
            return code
    return INTERNAL
