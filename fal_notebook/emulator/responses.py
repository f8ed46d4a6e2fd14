"""fal's response shapes: JSON bodies with ``x-fal-request-id``, auth refusals, and the injected faults."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fal_notebook.emulator.knobs import Knobs
from fal_notebook.emulator.state import EmulatorState

__all__ = ["fal_json", "check_key", "check_bearer", "api_fault", "ResetResponse", "base_url"]

NO_USER = "No user found for Key ID and Secret"
BAD_FORMAT = "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'."
MISSING = "Authorization header is required"
LOCKED = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing"
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"
    "\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def fal_json(status: int, body: Any, *, request_id: str | None = None, headers: dict[str, str] | None = None
             ) -> JSONResponse:
    """A JSON response that always carries ``x-fal-request-id`` (fal's own answers do; ingress ones don't)."""
    all_headers = {"x-fal-request-id": request_id or str(uuid.uuid4()), **(headers or {})}
    return JSONResponse(body, status_code=status, headers=all_headers)


def base_url(request: Request) -> str:
    """The emulator's origin as the client reached it (URLs in replies use the request's own scheme/host)."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def check_key(request: Request, knobs: Knobs) -> Response | None:
    """``Authorization: Key <id>:<secret>`` or fal's 401 / 403 body."""
    header = request.headers.get("authorization")
    if not header:
        return fal_json(401, {"detail": MISSING})
    scheme, _, credential = header.partition(" ")
    key_id, sep, secret = credential.strip().partition(":")
    if scheme != "Key" or not sep or not key_id or not secret:
        return fal_json(401, {"detail": BAD_FORMAT})
    if knobs.valid_keys is not None and key_id not in knobs.valid_keys:
        return fal_json(401, {"detail": NO_USER})
    if knobs.scenario == "locked":
        return fal_json(403, {"detail": LOCKED})
    return None


def check_bearer(request: Request, state: EmulatorState) -> Response | None:
    """CDN routes take the storage token (``Bearer …``) and nothing else."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.strip() not in state.cdn_tokens:
        return JSONResponse({"detail": "Unauthorized"}, status_code=401)
    return None


def api_fault(state: EmulatorState) -> Response | None:
    """The rate-limit / ingress / app faults for API calls (the first ``fault_count`` calls)."""
    knobs = state.knobs
    kind = knobs.scenario
    if kind not in {"rate_limit", "ingress_502", "app_503"} or not state.gate.take(kind, knobs.fault_count):
        return None
    if kind == "rate_limit":
        retry = f"{knobs.retry_after:g}"
        return fal_json(429, {"detail": "Too many requests. Please retry later."}, headers={"Retry-After": retry})
    if kind == "ingress_502":
        return Response(NGINX_502, status_code=502, media_type="text/html", headers={"server": "nginx"})
    body = {"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"}
    return fal_json(503, body, headers={"X-Fal-Error-Type": "runner_scheduling_failure"})


class ResetResponse(Response):
    """Promise a body, send part of it, then drop the connection: the client sees a transport error."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"status": "IN_PR', "more_body": True})
        # Returning without finishing makes the server close the socket mid-body.
