"""When a failed call is tried again, and how long to wait first.

fal's rules (protocol §4) with two improvements over fal_client: ``Retry-After`` is honoured (seconds or an HTTP
date, capped), and a submit is never retried once it may have reached fal's queue, so a retry never creates (and
bills) a second job:

* every call, submit included: 408, 409 and 429 (fal's queue answered and refused: no job was made), 502/503/504
  from the ingress (no ``x-fal-request-id``; nginx-style body: fal's service never answered), and connect
  errors / pool timeouts (nothing was sent);
* idempotent calls only (status, result, cancel, stream, storage, downloads): every other transport error or
  timeout — for a submit, a read timeout or a reset after sending may mean the job exists, so it surfaces
  (``FalTimeoutError`` / ``TransportError``) instead of being sent twice;
* never: a 504 with ``X-Fal-Request-Timeout-Type`` (the caller's start deadline), an app 5xx (carries
  ``x-fal-request-id``), any other 4xx, or a timeout of a request that carried ``X-Fal-Request-Timeout``.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

__all__ = [
    "RetryPolicy",
    "retry_after_seconds",
    "is_ingress_error",
    "TRANSIENT_STATUS",
    "should_retry_response",
    "should_retry_error",
]

RETRYABLE_STATUS = frozenset({408, 409, 429})
INGRESS_STATUS = frozenset({502, 503, 504})
# Codes that, once retries are used up, still say nothing about the job itself (fal's front door or queue
# service was busy or down): callers following a job carry on rather than call it failed.
TRANSIENT_STATUS = RETRYABLE_STATUS | INGRESS_STATUS | {500}
# Failures where the request never left this machine; safe to retry even for a submit.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff with a bounded number of attempts.

        policy = RetryPolicy(max_attempts=4, base_delay=0.25, max_delay=10.0)

    ``sleep`` is awaited with each delay (tests pass a recorder); ``max_retry_after`` caps a server's
    ``Retry-After`` so a hostile or broken header cannot park a job for hours.
    """

    max_attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 10.0
    max_retry_after: float = 60.0
    jitter: float = 0.5
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt ``attempt`` (1-based): ``base·2^(n-1)`` capped, times ``1 ± jitter``."""
        raw = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        factor = 1 - self.jitter + 2 * self.jitter * self.rng()
        return min(self.max_delay, raw * factor)

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """The server's ``Retry-After`` when it sent one (capped), else the backoff."""
        if response is not None:
            hinted = retry_after_seconds(response.headers.get("retry-after"))
            if hinted is not None:
                return min(hinted, self.max_retry_after)
        return self.backoff(attempt)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse ``Retry-After``: delta seconds or an HTTP date. ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_ingress_error(response: httpx.Response) -> bool:
    """A 502/503/504 from the load balancer in front of fal: no ``x-fal-request-id`` and not fal's JSON."""
    if response.status_code not in INGRESS_STATUS or "x-fal-request-id" in response.headers:
        return False
    text = response.text
    if "nginx" in text.lower():
        return True
    content_type = response.headers.get("content-type", "")
    return "json" not in content_type


def should_retry_response(response: httpx.Response) -> bool:
    """Whether an HTTP error answer is worth another attempt (see the module docstring). An answer means the
    request was refused before any job was made, so a submit is retried exactly like an idempotent call."""
    status = response.status_code
    if status == 504 and "x-fal-request-timeout-type" in response.headers:
        return False
    return status in RETRYABLE_STATUS or is_ingress_error(response)


def should_retry_error(exc: Exception, request: httpx.Request | None, *, idempotent: bool) -> bool:
    """Whether a transport failure is worth another attempt (see the module docstring)."""
    if not isinstance(exc, httpx.TransportError) or isinstance(exc, httpx.UnsupportedProtocol):
        return False
    if isinstance(exc, NOT_SENT):
        return True
    if not idempotent:
        return False
    if isinstance(exc, httpx.TimeoutException) and request is not None:
        return "x-fal-request-timeout" not in request.headers
    return True
