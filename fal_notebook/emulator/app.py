"""The emulator's ASGI application: records every request, then routes it the way fal's hosts would.

One origin plays queue.fal.run, rest.fal.ai, api.fal.ai (``/v1/…``), v3.fal.media and fal.ai's OpenAPI route
at once. fal's queue paths
have a variable depth (``[ns/]owner/app[/path]``), so routing is a small explicit dispatcher rather than a route
table.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fal_notebook.emulator import models, platform_routes, queue_routes, storage_routes
from fal_notebook.emulator.faults import apply_fault, route_of
from fal_notebook.emulator.responses import api_fault, check_bearer, check_key, fal_json
from fal_notebook.emulator.state import EmulatorState, seen_from_scope
from fal_notebook.errors import ConfigError

__all__ = ["EmulatorApp", "create_app"]

Handler = Callable[[Request, EmulatorState], Awaitable[Response]]


class EmulatorApp:
    """ASGI callable. ``state`` is shared with :class:`~fal_notebook.emulator.server.EmulatorServer`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not scope["path"].startswith("/_emulator/"):
            self.state.record(seen_from_scope(scope))
        request = Request(scope, receive)
        response = await self.dispatch(request)
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        """Route the request, through the fault configured for its route (``knobs.faults``), if any."""
        segments = [s for s in request.url.path.split("/") if s]
        faults = self.state.knobs.faults
        if not faults:
            return await self._dispatch(request)
        route = route_of(request.method, segments)
        spec = self.state.faults.pick(faults, route)
        return await apply_fault(spec, route, lambda: self._dispatch(request))

    async def _dispatch(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        segments = [s for s in path.split("/") if s]
        if path.startswith("/_emulator/"):
            return await _control(request, self.state, segments[1:])
        public = _public_route(request, self.state, method, segments)
        if public is not None:
            return await public
        if segments[:2] == ["api", "openapi"]:
            return _openapi(request)
        return await self._api(request, method, segments)

    async def _api(self, request: Request, method: str, segments: list[str]) -> Response:
        """fal's key-authenticated hosts (queue + REST), behind the injected faults."""
        fault = api_fault(self.state)
        if fault is not None:
            return fault
        if segments[:1] == ["v1"] and _keyless_catalogue(request, segments):
            return await platform_routes.platform_route(request, self.state, segments)
        refused = check_key(request, self.state.knobs)
        if refused is not None:
            return refused
        if segments[:1] == ["v1"]:
            return await platform_routes.platform_route(request, self.state, segments)
        if segments[:2] == ["storage", "auth"] and method == "POST":
            return await storage_routes.storage_token(request, self.state)
        if segments[:3] == ["storage", "upload", "initiate"] and method == "POST":
            return await storage_routes.initiate_upload(request, self.state)
        if "requests" in segments:
            return await queue_routes.request_route(request, self.state, segments, segments.index("requests"))
        if method == "POST" and segments:
            return await queue_routes.submit(request, self.state, segments)
        return fal_json(405, {"detail": "Method Not Allowed"})


def _keyless_catalogue(request: Request, segments: list[str]) -> bool:
    """fal's model search takes a key but does not need one (it only raises the rate limit)."""
    return request.method == "GET" and segments == ["v1", "models"] and "authorization" not in request.headers


def _public_route(request: Request, state: EmulatorState, method: str, segments: list[str]
                  ) -> Awaitable[Response] | None:
    """Routes that take no API key: CDN (storage token), signed uploads and media downloads."""
    if not segments or segments[0] not in {"files", "media", "uploads"}:
        return None
    head, rest = segments[0], segments[1:]
    if head == "uploads" and method == "PUT" and len(rest) == 2:
        return storage_routes.signed_put(request, state, "/".join(rest))
    if method == "GET" and head in {"files", "media"} and len(rest) == 2:
        return storage_routes.serve_blob(request, state, "/".join(rest))
    if head != "files":
        return _immediate(JSONResponse({"detail": "Not Found"}, status_code=404))
    refused = check_bearer(request, state)
    if refused is not None:
        return _immediate(refused)
    if rest == ["upload"] and method == "POST":
        return storage_routes.cdn_upload(request, state)
    if rest == ["upload", "multipart"] and method == "POST":
        return storage_routes.multipart_create(request, state)
    if len(rest) == 5 and rest[2] == "multipart" and method == "PUT":
        return storage_routes.multipart_part(request, state, "/".join(rest[:2]), rest[3], rest[4])
    if len(rest) == 5 and rest[2] == "multipart" and rest[4] == "complete" and method == "POST":
        return storage_routes.multipart_complete(request, state, "/".join(rest[:2]), rest[3])
    return _immediate(JSONResponse({"detail": "Not Found"}, status_code=404))


async def _immediate(response: Response) -> Response:
    return response


def _openapi(request: Request) -> Response:
    endpoint_id = request.query_params.get("endpoint_id", "").strip("/")
    model = models.find_model(endpoint_id) if endpoint_id else None
    if model is None:
        return JSONResponse({"detail": f"Application '{endpoint_id}' not found"}, status_code=404)
    return JSONResponse(model.openapi())


async def _control(request: Request, state: EmulatorState, segments: list[str]) -> Response:
    """Test hooks, reachable from another process: ``/_emulator/{requests,config,hold,release,jobs}``."""
    name, method = (segments[0] if segments else ""), request.method
    body = json.loads(await request.body() or b"{}") if method in {"POST", "PUT"} else {}
    if name == "requests":
        if method == "DELETE":
            state.clear_records()
        return JSONResponse([r.as_dict() for r in state.records()])
    if name == "config":
        try:
            knobs = state.configure(**body) if method == "POST" else state.knobs
        except ConfigError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse(knobs.as_dict())
    if name == "hold" and method == "POST":
        state.book.hold_new = bool(body.get("hold", True))
        return JSONResponse({"hold": state.book.hold_new})
    if name == "release" and method == "POST":
        return JSONResponse({"released": state.book.release(body.get("request_id"))})
    if name == "jobs":
        return JSONResponse([_job_view(state, j) for j in state.book.all()])
    return JSONResponse({"detail": "Not Found"}, status_code=404)


def _job_view(state: EmulatorState, job: Any) -> dict[str, Any]:
    snap = state.book.snapshot(job)
    return {"request_id": job.request_id, "endpoint_id": job.endpoint_id, "status": snap.status,
            "arguments": job.arguments, "priority": job.priority, "hint": job.hint, "webhook": job.webhook,
            "start_timeout": job.start_timeout, "error": snap.failure.error if snap.failure else None}


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(state: EmulatorState | None = None) -> EmulatorApp:
    return EmulatorApp(state or EmulatorState())
