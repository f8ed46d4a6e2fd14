"""The queue API: submit, status (poll and SSE stream), result, cancel — fal's wire behaviour, quirks included."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from fal_notebook.emulator import models
from fal_notebook.emulator.jobs import RUNNER_DISCONNECTED, EmulatedJob, Failure, Snapshot
from fal_notebook.emulator.responses import ResetResponse, base_url, fal_json
from fal_notebook.emulator.state import EmulatorState

__all__ = ["split_app_id", "submit", "request_route", "job_output"]

_LEGACY = re.compile(r"^\d+-[A-Za-z0-9-]+$")
_NAMESPACES = ("workflows", "comfy")
_TRUE = {"1", "true", "yes", "on"}
_LATE = 0.001  # s a stream sleeps past a foreseen change, so the clock has surely reached it when it reads again


def split_app_id(segments: list[str]) -> tuple[str, str] | None:
    """``[ns/]owner/app`` and the remaining path, exactly as fal_client's ``AppId.from_endpoint_id``."""
    if len(segments) == 1:
        if _LEGACY.match(segments[0]):
            number, _, app = segments[0].partition("-")
            return f"{number}/{app}", ""
        return None
    if segments[0] in _NAMESPACES and len(segments) >= 3:
        return "/".join(segments[:3]), "/".join(segments[3:])
    return "/".join(segments[:2]), "/".join(segments[2:])


def _urls(base: str, job: EmulatedJob) -> dict[str, str]:
    response_url = f"{base}/{job.app_path}/requests/{job.request_id}"
    return {"response_url": response_url, "status_url": response_url + "/status",
            "cancel_url": response_url + "/cancel"}


def _failure_for_problems(problems: list[dict[str, Any]]) -> Failure:
    return Failure("Invalid status code: 422", "validation_error", 422, {"detail": problems})


async def submit(request: Request, state: EmulatorState, segments: list[str]) -> Response:
    split = split_app_id(segments)
    endpoint_id = "/".join(segments)
    if split is None:
        return fal_json(404, {"detail": f"Application '{endpoint_id}' not found"})
    model = models.find_model(endpoint_id)
    if model is None:
        return fal_json(404, {"detail": f"Application '{split[0].split('/')[-1]}' not found"})
    try:
        arguments = json.loads(await request.body() or b"{}")
    except ValueError:
        arguments = None
    problems = models.validate_input(model, arguments)
    knobs = state.knobs
    failure = _failure_for_problems(problems) if problems else None
    if failure is None and knobs.scenario == "error":
        failure = RUNNER_DISCONNECTED
    queue_s, run_s = knobs.timing
    job = state.book.add(
        endpoint_id=endpoint_id, app_path=split[0], arguments=arguments if isinstance(arguments, dict) else {},
        queue_s=queue_s, run_s=run_s, log_lines=knobs.log_lines, queue_ahead=knobs.queue_ahead,
        start_timeout=_float(request.headers.get("x-fal-request-timeout")),
        failure=failure, expired=knobs.scenario == "expired",
        priority=request.headers.get("x-fal-queue-priority"), hint=request.headers.get("x-fal-runner-hint"),
        webhook=request.query_params.get("fal_webhook"),
    )
    snap = state.book.snapshot(job)
    body = {"status": "IN_QUEUE", "request_id": job.request_id, **_urls(base_url(request), job),
            "queue_position": snap.queue_position or 0}
    return fal_json(200, body, request_id=job.request_id)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def status_body(base: str, job: EmulatedJob, snap: Snapshot, logs: list[dict[str, Any]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": snap.status, "request_id": job.request_id, **_urls(base, job)}
    if snap.status == "IN_QUEUE":
        body["queue_position"] = snap.queue_position
        return body
    body["logs"] = logs
    body["metrics"] = {"inference_time": snap.inference_time} if snap.inference_time is not None else {}
    if snap.failure is not None:
        body["error"] = snap.failure.error
        body["error_type"] = snap.failure.error_type
    return body


async def request_route(request: Request, state: EmulatorState, segments: list[str], at: int) -> Response:
    """``/[ns/]owner/app/requests/{id}[/status[/stream]|/cancel|/response]`` (``at`` indexes "requests")."""
    prefix, rest = segments[:at], segments[at + 2:]
    split = split_app_id(prefix) if prefix else None
    if split is None or (split[1] and not state.knobs.allow_subpath):
        return fal_json(405, {"detail": "Method Not Allowed"})
    job = state.book.get(segments[at + 1]) if len(segments) > at + 1 else None
    if job is not None and job.app_path != split[0]:
        job = None
    handler = {
        ("GET", ()): _result, ("GET", ("response",)): _result, ("GET", ("status",)): _status,
        ("GET", ("status", "stream")): _stream, ("PUT", ("cancel",)): _cancel,
    }.get((request.method, tuple(rest)))
    if handler is None:
        return fal_json(405, {"detail": "Method Not Allowed"})
    return await handler(request, state, job)


def _wants_logs(request: Request) -> bool:
    return request.query_params.get("logs", "0").strip().lower() in _TRUE


async def _status_refusal(state: EmulatorState, job: EmulatedJob | None) -> Response | None:
    """What status calls (poll or stream) answer before looking at the job: injected faults, unknown ids."""
    knobs = state.knobs
    if knobs.scenario == "reset" and state.gate.take("reset", knobs.fault_count):
        return ResetResponse()
    if knobs.scenario == "hung_status" and state.gate.take("hung_status", knobs.fault_count):
        await asyncio.sleep(knobs.hang_seconds)
    return fal_json(404, {"status": "NOT_FOUND"}) if job is None else None


async def _status(request: Request, state: EmulatorState, job: EmulatedJob | None) -> Response:
    refusal = await _status_refusal(state, job)
    if refusal is not None or job is None:
        return refusal or fal_json(404, {"status": "NOT_FOUND"})
    snap = state.book.snapshot(job)
    body = status_body(base_url(request), job, snap, snap.logs if _wants_logs(request) else None)
    return fal_json(200 if snap.status == "COMPLETED" else 202, body, request_id=job.request_id)


async def _stream(request: Request, state: EmulatorState, job: EmulatedJob | None) -> Response:
    refusal = await _status_refusal(state, job)
    if refusal is not None or job is None:
        return refusal or fal_json(404, {"status": "NOT_FOUND"})
    events = _events(base_url(request), state, job, _wants_logs(request))
    headers = {"x-fal-request-id": job.request_id, "cache-control": "no-cache"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _events(base: str, state: EmulatorState, job: EmulatedJob, with_logs: bool) -> AsyncIterator[str]:
    """One ``data:`` event per change with log deltas; ``: ping`` when quiet; ends after COMPLETED.

    Between events the stream sleeps until the job's next foreseeable change (the book computes it from the
    clock) or the next ping, whichever comes first; a cancel or release wakes it at once. Re-reading every
    stream on a timer cost thousands of wake-ups a second with hundreds of streams open."""
    book = state.book
    last_key, sent_logs, last_sent = None, 0, time.monotonic()
    while True:
        woken = book.watch()  # before reading: a change made after this read still wakes the sleep below
        try:
            now = time.monotonic()
            snap = book.snapshot(job, now)
            key = (snap.status, snap.queue_position, len(snap.logs))
            ping = state.knobs.ping_interval
            if key != last_key:
                delta = snap.logs[sent_logs:] if with_logs else None
                yield "data: " + json.dumps(status_body(base, job, snap, delta)) + "\n\n"
                last_key, sent_logs, last_sent = key, len(snap.logs), now
                if snap.status == "COMPLETED":
                    return
            elif now - last_sent >= ping:
                yield ": ping\n\n"
                last_sent = now
            wake_at = min(book.next_change(job, now), last_sent + ping)
            if not woken.done():
                await asyncio.wait((woken,), timeout=max(0.0, wake_at - time.monotonic()) + _LATE)
        finally:
            book.unwatch(woken)


async def _result(request: Request, state: EmulatorState, job: EmulatedJob | None) -> Response:
    if job is None:
        return fal_json(404, {"detail": "Request not found"})
    snap = state.book.snapshot(job)
    if snap.status != "COMPLETED":
        return fal_json(400, {"detail": "Request is still in progress"}, request_id=job.request_id)
    if snap.failure is not None:
        failure = snap.failure
        return fal_json(failure.http_status, failure.body, request_id=job.request_id, headers=failure.headers)
    if job.expired:
        return fal_json(404, {"detail": "Request not found"}, request_id=job.request_id)
    output = await run_in_threadpool(job_output, state, job)
    return fal_json(200, models.absolutize(output, base_url(request)), request_id=job.request_id)


def job_output(state: EmulatorState, job: EmulatedJob) -> dict[str, Any]:
    """The job's output, made (media rendered and stored) on first use; blocking: run it off the loop."""
    with job.lock:
        if job.output is None:
            model = models.find_model(job.endpoint_id)
            assert model is not None
            job.output = models.make_output(model, job.arguments, state.store, job.run_s)
        return job.output


async def _cancel(request: Request, state: EmulatorState, job: EmulatedJob | None) -> Response:
    if job is None:
        return fal_json(404, {"status": "NOT_FOUND"})
    if state.book.cancel(job):
        return fal_json(202, {"status": "CANCELLATION_REQUESTED"}, request_id=job.request_id)
    return fal_json(400, {"status": "ALREADY_COMPLETED"}, request_id=job.request_id)
