"""The one place where httpx failures and fal's error answers become ``fal_notebook.errors`` classes.

``translate_errors`` maps every httpx exception (httpx-sse's ``SSEError`` included) to ``TransportError`` or
``FalTimeoutError`` with ``raise … from exc``, as httpx's own ``map_httpcore_exceptions`` does one layer down.
``error_from_response`` turns a non-2xx answer into the typed error, keeping fal's ``detail`` as sent (a 422's
list stays a list) and building a message a person can read ("prompt: field required"). Nothing above the
client layer ever sees an httpx exception.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx

from ..errors import (
    AuthError,
    FalError,
    FalTimeoutError,
    JobFailedError,
    NotFoundError,
    RequestError,
    ResultExpiredError,
    TransportError,
    detail_lines,
)
from .retry import is_ingress_error

__all__ = ["translate_errors", "error_from_response", "format_detail", "response_json", "redact", "loads",
           "MAX_JSON_DEPTH"]

# fal's answers nest a few levels (a result's images, a 422's detail list); anything past this is hostile or
# broken, and walking it (media search, the store's JSON, a card) would hit Python's recursion limit.
MAX_JSON_DEPTH = 64

KEY_HELP = (
    "Check FAL_KEY: it must be 'key_id:key_secret' from https://fal.ai/dashboard/keys, without quotes or a "
    "trailing newline (FAL_KEY wins over FAL_KEY_ID/FAL_KEY_SECRET and TOOLS.md)."
)
ACCOUNT_HELP = (
    "fal knows the key (FAL_KEY) but refuses this account or this key's scope: see "
    "https://fal.ai/dashboard/billing and https://fal.ai/dashboard/keys."
)
RETENTION_HELP = (
    "fal keeps a result for 1 hour after the request completes, and only 6 minutes when the result is 10 KB "
    "or more; fetch results promptly (the job store keeps the request id for this)."
)


def redact(value: Any, secret: str | None) -> Any:
    """``value`` (text, or a JSON value's strings) without the key, whole or its secret half: an echoing
    proxy, or an httpx error quoting a header, must not put it in an error, the store or a log."""
    if not secret:
        return value
    if isinstance(value, str):
        half = secret.partition(":")[2]
        for part in (secret, half) if len(half) >= 8 else (secret,):
            value = value.replace(part, "***")
        return value
    if isinstance(value, list):
        return [redact(item, secret) for item in value]
    if isinstance(value, dict):
        return {key: redact(item, secret) for key, item in value.items()}
    return value


@contextlib.contextmanager
def translate_errors(what: str, *, timeout: float | None = None, secret: str | None = None) -> Iterator[None]:
    """Map httpx exceptions raised inside the block to our errors; ``what`` names the call for the message,
    ``secret`` is cut from it."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise FalTimeoutError(
            f"{what} timed out ({type(exc).__name__}); fal did not answer in time", timeout=timeout
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict) as exc:
        # HTTPError: TransportError (incl. SSEError), DecodingError, TooManyRedirects, ...
        raise TransportError(redact(f"{what} failed: {type(exc).__name__}: {exc}", secret)) from exc


def _depth_ok(value: Any, limit: int) -> bool:
    """Iteratively (no recursion) check that ``value`` nests at most ``limit`` containers deep."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return True


def loads(data: str | bytes, *, what: str = "fal's answer") -> Any:
    """``json.loads`` that refuses JSON nested deeper than :data:`MAX_JSON_DEPTH` with a clear
    ``RequestError`` (Python's own parser raises RecursionError far deeper, after using the stack);
    ``ValueError`` when it is not JSON, as ``json.loads``."""
    try:
        value = json.loads(data)
    except RecursionError:
        value, ok = None, False
    else:
        ok = _depth_ok(value, MAX_JSON_DEPTH)
    if not ok:
        raise RequestError(f"{what} is JSON nested more than {MAX_JSON_DEPTH} levels deep; refusing it "
                           "(fal's answers are a few levels deep: this is a broken or hostile server)")
    return value


def response_json(response: httpx.Response) -> Any:
    """The JSON body, or ``None`` when the body is not JSON (an nginx page, an empty answer). JSON nested
    absurdly deep raises ``RequestError``."""
    try:
        return loads(response.content or b"null")
    except ValueError:
        return None


def format_detail(detail: Any) -> str:
    """fal's ``detail`` as text: one ``field: message`` per entry of a 422 list, joined with ``; ``."""
    return "; ".join(detail_lines(detail))


def _parts(response: httpx.Response, secret: str | None) -> tuple[Any, str | None, str]:
    """(detail as sent, error_type, readable text) of an error answer."""
    body = response_json(response)
    detail: Any
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and "detail" not in body:
        # the platform API (api.fal.ai/v1): {"error": {"type", "message", "docs_url", "request_id"}}
        detail, error_type = body["error"], body["error"].get("type")
    elif isinstance(body, dict):
        detail = body.get("detail", body.get("error", body.get("status")))
        error_type = body.get("error_type")
    elif is_ingress_error(response):  # nginx's HTML page says nothing more than its status line
        detail, error_type = f"{response.reason_phrase or 'gateway error'} from fal's ingress", None
    else:
        detail = body if body is not None else response.text.strip()[:300] or None
        error_type = None
    error_type = error_type if isinstance(error_type, str) else response.headers.get("x-fal-error-type")
    return redact(detail, secret), error_type, redact(format_detail(detail), secret)


def _body_request_id(detail: Any) -> str | None:
    value = detail.get("request_id") if isinstance(detail, dict) else None
    return value if isinstance(value, str) else None


def _error_class(response: httpx.Response, kind: str, text: str) -> type[RequestError]:
    status = response.status_code
    if status in (401, 403):
        return AuthError
    if kind == "result" and not is_ingress_error(response):  # fal never answered: the job did not fail
        if status in (404, 410):
            return ResultExpiredError
        if "in progress" in text.lower():  # fetched too early: not a failure of the job
            return RequestError
        if status in (400, 422) or status >= 500:
            return JobFailedError
    if status == 404:
        return NotFoundError
    return RequestError


def error_from_response(
    response: httpx.Response, *, what: str, kind: str = "api", secret: str | None = None
) -> FalError:
    """The typed error for a non-2xx answer. ``kind="result"`` reads 404/410 as an expired result and model
    errors as ``JobFailedError``."""
    status = response.status_code
    detail, error_type, text = _parts(response, secret)
    cls = _error_class(response, kind, text)
    message = f"{what}: HTTP {status}" + (f": {text}" if text else "")
    if cls is AuthError and status == 403:  # e.g. "User is locked. Reason: Exhausted balance": not a key typo
        message = f"fal refused the request ({what}: HTTP 403: {text or 'forbidden'}). {ACCOUNT_HELP}"
    elif cls is AuthError:
        message = f"fal refused the API key ({what}: HTTP {status}: {text or 'unauthorized'}). {KEY_HELP}"
    elif cls is ResultExpiredError:
        message = f"{what}: the result is no longer available (HTTP {status}). {RETENTION_HELP}"
    elif status == 504 and response.headers.get("x-fal-request-timeout-type") == "user":
        message += " (the start timeout expired before a runner picked the request up)"
    return cls(
        message,
        status_code=status,
        detail=detail,
        error_type=error_type,
        request_id=response.headers.get("x-fal-request-id") or _body_request_id(detail),
    )
