"""The two values the queue client hands out: a request's handle and one status reading."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import RequestError, UnknownModelError
from ..media import is_web_url

__all__ = ["RequestHandle", "Status", "split_endpoint_id", "normalize_endpoint_id", "STATES", "LOG_TAIL"]

log = logging.getLogger("fal_notebook")
# The log lines a Status carries (the newest). fal's list is cumulative and a stream's deltas add up without
# end: a job that logs for hours must not make every reading copy everything it ever said.
LOG_TAIL = 1000

STATES = ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
NAMESPACES = ("workflows", "comfy")
_LEGACY_ID = re.compile(r"^([0-9]+)-([A-Za-z0-9-]+)$")


_SEGMENTS = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)+$")


def normalize_endpoint_id(endpoint_id: str) -> str:
    """``owner/app[/path]`` as fal expects it; a legacy ``123-app`` id becomes ``123/app`` (protocol §1.2).
    Only URL-safe path segments pass: a space, ``?`` or ``#`` would change which URL is asked."""
    if not isinstance(endpoint_id, str):
        raise UnknownModelError(f"invalid endpoint id {endpoint_id!r}: expected text such as 'fal-ai/flux/dev'")
    endpoint_id = endpoint_id.strip().strip("/")
    if "/" in endpoint_id:
        if not _SEGMENTS.match(endpoint_id) or any(part in (".", "..") for part in endpoint_id.split("/")):
            raise UnknownModelError(f"invalid endpoint id {endpoint_id[:120]!r}: only letters, digits and . _ ~ - "
                                    "between slashes, e.g. 'fal-ai/flux/dev'")
        return endpoint_id
    match = _LEGACY_ID.match(endpoint_id)
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    raise UnknownModelError(
        f"invalid endpoint id {endpoint_id!r}: expected 'owner/app[/path]', e.g. 'fal-ai/flux/dev'"
    )


def split_endpoint_id(endpoint_id: str) -> tuple[str | None, str, str, str | None]:
    """``(namespace, owner, app, path)``: ``workflows``/``comfy`` are namespaces, the rest is ``owner/app/path``."""
    parts = normalize_endpoint_id(endpoint_id).split("/")
    if parts[0] in NAMESPACES:
        if len(parts) < 3:
            raise UnknownModelError(f"invalid endpoint id {endpoint_id!r}: '{parts[0]}/owner/app' expected")
        return parts[0], parts[1], parts[2], "/".join(parts[3:]) or None
    return None, parts[0], parts[1], "/".join(parts[2:]) or None


@dataclass(frozen=True)
class RequestHandle:
    """Where a submitted request lives: the URLs fal returned at submit, kept with the request id.

        handle = RequestHandle.fallback("fal-ai/flux/dev", "80e7…", "https://queue.fal.run")
        handle.status_url  # https://queue.fal.run/fal-ai/flux/requests/80e7…/status (no "/dev")

    Always prefer the submit reply's URLs: fal routes some sub-path models differently (protocol §1.2, P1).
    """

    request_id: str
    endpoint_id: str
    status_url: str
    response_url: str
    cancel_url: str

    @classmethod
    def fallback(cls, endpoint_id: str, request_id: str, queue_base: str) -> RequestHandle:
        """Rebuild the URLs as ``[workflows|comfy/]owner/app/requests/{id}`` (the sub-path dropped)."""
        namespace, owner, app, _path = split_endpoint_id(endpoint_id)
        prefix = f"{namespace}/" if namespace else ""
        base = f"{queue_base.rstrip('/')}/{prefix}{owner}/{app}/requests/{request_id}"
        return cls(request_id, endpoint_id, f"{base}/status", base, f"{base}/cancel")

    @classmethod
    def from_submit(cls, endpoint_id: str, body: dict[str, Any], queue_base: str) -> RequestHandle:
        """The handle from submit's reply; any URL fal left out is rebuilt by :meth:`fallback`."""
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise RequestError(f"submit to {endpoint_id}: the reply has no request_id", detail=body)
        rebuilt = cls.fallback(endpoint_id, request_id, queue_base)
        urls = []
        for name, fallback in (("status_url", rebuilt.status_url), ("response_url", rebuilt.response_url),
                               ("cancel_url", rebuilt.cancel_url)):
            url = body.get(name)
            if url and not is_web_url(url):  # only http(s) is ever followed; anything else is not fal's
                log.warning("submit to %s: ignoring a %s that is not http(s): %.80r", endpoint_id, name, url)
            urls.append(url if is_web_url(url) else fallback)
        return cls(request_id, endpoint_id, *urls)


@dataclass(frozen=True)
class Status:
    """One status reading. ``logs`` holds the newest :data:`LOG_TAIL` lines of the cumulative list (the SSE
    stream's deltas are summed) and ``log_count`` how many lines there were in all.

    There is no FAILED: a failed request is ``COMPLETED`` with ``error``/``error_type`` set, and its result call
    raises the typed error.
    """

    state: Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    queue_position: int | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    log_count: int = 0

    @property
    def done(self) -> bool:
        return self.state == "COMPLETED"

    @property
    def failed(self) -> bool:
        return self.done and self.error is not None

    @property
    def inference_time(self) -> float | None:
        value = self.metrics.get("inference_time")
        return float(value) if isinstance(value, (int, float)) else None

    @classmethod
    def from_json(cls, body: Any, *, prior: Status | None = None, delta: bool = False) -> Status:
        """Parse a status body. With ``delta`` (SSE) the body's logs are new lines added to ``prior``'s; the
        work per reading is bounded by the new lines and :data:`LOG_TAIL`, never by the whole history."""
        if not isinstance(body, dict) or body.get("status") not in STATES:
            state = body.get("status") if isinstance(body, dict) else None
            raise RequestError(f"fal sent an unknown request status {str(state)[:80]!r}", detail=None)
        sent = body.get("logs")
        sent = sent if isinstance(sent, list) else []
        new = [entry for entry in sent[-LOG_TAIL:] if isinstance(entry, dict)]
        count = len(sent)
        if delta and prior is not None:
            new = (prior.logs + new)[-LOG_TAIL:] if len(new) < LOG_TAIL else new
            count += prior.log_count
        position = body.get("queue_position")
        error = body.get("error")
        return cls(
            state=body["status"],
            queue_position=position if isinstance(position, int) and not isinstance(position, bool) else None,
            logs=new,
            log_count=count,
            metrics=body.get("metrics") if isinstance(body.get("metrics"), dict) else {},
            error=str(error)[:4000] if error is not None else None,
            error_type=str(body["error_type"])[:200] if body.get("error_type") is not None else None,
            raw=body,
        )
