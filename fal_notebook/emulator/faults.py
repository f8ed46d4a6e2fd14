"""Faults on every route, for reliability tests: ``configure(faults={"submit": {"kind": "reset_after"}, …})``.

Routes: ``submit``, ``status``, ``stream``, ``result``, ``cancel``, ``upload`` (storage token, CDN and signed
uploads), ``media`` (output downloads), ``history`` (the platform's request history). Each spec is a mapping:

* ``kind`` — what goes wrong:
  ``reset`` (the connection drops before the request is handled: for a submit, fal never got it),
  ``reset_after`` (handled, then the connection drops mid-reply: a submit's job exists but its id is lost),
  ``slow_reply`` (handled, then the reply waits ``seconds``: the window a kill -9 can fall into),
  ``hang`` (waits ``seconds`` before handling), ``429`` / ``502`` (ingress, retryable) / ``503`` (an app
  error), ``garbage`` (200 with a body that is not JSON), ``deep_json`` (200 with JSON nested 100 000 deep),
  ``ping_only`` (a status stream that sends keep-alives and nothing else), ``bad_urls`` (a submit reply whose
  URLs are ``file:``/``javascript:``), ``huge_logs`` (status bodies carrying 20 000 log lines);
* ``rate`` — the share of matching calls hit (0–1, default 1), drawn from a generator seeded with
  ``fault_seed``, so a run is reproducible;
* ``count`` — at most this many calls are hit (default: no limit);
* ``seconds`` — for ``slow_reply`` and ``hang`` (default 2).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response, StreamingResponse

from fal_notebook.errors import ConfigError

__all__ = ["ROUTES", "KINDS", "FaultSpec", "FaultPlan", "route_of", "apply_fault", "check_faults"]

ROUTES = ("submit", "status", "stream", "result", "cancel", "upload", "media", "history")
KINDS = ("reset", "reset_after", "slow_reply", "hang", "429", "502", "503", "garbage", "deep_json", "ping_only",
         "bad_urls", "huge_logs")
NGINX_502 = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    rate: float = 1.0
    count: int | None = None
    seconds: float = 2.0


def check_faults(faults: Any) -> dict[str, dict[str, Any]]:
    """The ``faults`` knob, checked: unknown routes, kinds or fields fail loudly (a typo must not pass)."""
    if faults is None:
        return {}
    if not isinstance(faults, Mapping):
        raise ConfigError("faults must map a route to a spec, e.g. {'submit': {'kind': 'reset_after'}}")
    out = {}
    for route, spec in faults.items():
        if route not in ROUTES:
            raise ConfigError(f"unknown fault route {route!r}; choose from {', '.join(ROUTES)}")
        if not isinstance(spec, Mapping) or spec.get("kind") not in KINDS:
            raise ConfigError(f"fault for {route}: 'kind' must be one of {', '.join(KINDS)}")
        extra = set(spec) - {"kind", "rate", "count", "seconds"}
        if extra:
            raise ConfigError(f"fault for {route}: unknown field(s) {sorted(extra)}")
        out[route] = dict(spec)
    return out


class FaultPlan:
    """Decides, call by call and reproducibly, which calls a configured fault hits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(0)
        self._hits: dict[str, int] = {}

    def reset(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)
            self._hits.clear()

    def hits(self) -> dict[str, int]:
        with self._lock:
            return dict(self._hits)

    def pick(self, faults: Mapping[str, Mapping[str, Any]], route: str | None) -> FaultSpec | None:
        raw = faults.get(route) if route else None
        if not raw:
            return None
        spec = FaultSpec(raw["kind"], float(raw.get("rate", 1.0)), raw.get("count"), float(raw.get("seconds", 2.0)))
        with self._lock:
            if spec.count is not None and self._hits.get(route, 0) >= spec.count:
                return None
            if spec.rate < 1.0 and self._rng.random() >= spec.rate:
                return None
            self._hits[route] = self._hits.get(route, 0) + 1
        return spec


def route_of(method: str, segments: list[str]) -> str | None:
    """Which fault route a request is, from its method and path (``None``: the emulator's own hooks, OpenAPI)."""
    if not segments or segments[0] in ("_emulator", "api"):
        return None
    head = segments[0]
    if head == "v1":
        return "history" if segments[1:4] == ["models", "requests", "by-endpoint"] else None
    if head in ("files", "media") and method == "GET":
        return "media"
    if head in ("files", "uploads", "storage"):
        return "upload"
    if "requests" in segments:
        rest = segments[segments.index("requests") + 2:]
        if rest == ["status", "stream"]:
            return "stream"
        if rest[:1] == ["status"]:
            return "status"
        if rest == ["cancel"]:
            return "cancel"
        return "result"
    return "submit" if method == "POST" else None


class _Reset(Response):
    """Promise a body, send part of it, drop the connection."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"status": "IN_QU', "more_body": True})


async def _pings() -> AsyncIterator[str]:
    while True:
        yield ": ping\n\n"
        await asyncio.sleep(0.05)


def _before(spec: FaultSpec, route: str) -> Response | None:
    """Faults that answer instead of the route."""
    kind = spec.kind
    if kind == "reset":
        return _Reset()
    if kind == "429":
        return Response('{"detail": "Too many requests"}', 429, media_type="application/json",
                        headers={"Retry-After": "0.2"})
    if kind == "502":
        return Response(NGINX_502, 502, media_type="text/html", headers={"server": "nginx"})
    if kind == "503":
        return Response('{"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"}', 503,
                        media_type="application/json", headers={"x-fal-request-id": "fault"})
    if kind == "garbage":
        return Response("<html>surprise</html>", 200, media_type="application/json")
    if kind == "deep_json":
        return Response("[" * 100_000 + "]" * 100_000, 200, media_type="application/json")
    if kind == "ping_only" and route == "stream":
        return StreamingResponse(_pings(), media_type="text/event-stream")
    return None


async def _after(spec: FaultSpec, response: Response) -> Response:
    """Faults that change the route's own answer."""
    kind = spec.kind
    if kind == "reset_after":
        return _Reset()
    if kind == "slow_reply":
        await asyncio.sleep(spec.seconds)
        return response
    if kind in ("bad_urls", "huge_logs") and response.media_type == "application/json":
        body = json.loads(bytes(response.body) or b"null")
        if isinstance(body, dict) and kind == "bad_urls":
            body.update(status_url="file:///etc/passwd", response_url="javascript:alert(1)",
                        cancel_url="ftp://x/cancel")
        elif isinstance(body, dict) and body.get("status") in ("IN_PROGRESS", "COMPLETED"):
            body["logs"] = [{"message": f"log {n}", "level": "INFO"} for n in range(20_000)]
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
        return Response(json.dumps(body), response.status_code, headers=headers, media_type="application/json")
    return response


async def apply_fault(spec: FaultSpec | None, route: str | None,
                      handle: Callable[[], Awaitable[Response]]) -> Response:
    """Answer a request through ``handle``, with ``spec``'s fault applied (none: just ``handle``)."""
    if spec is None or route is None:
        return await handle()
    if spec.kind == "hang":
        await asyncio.sleep(spec.seconds)
        return await handle()
    early = _before(spec, route)
    if early is not None:
        return early
    return await _after(spec, await handle())
