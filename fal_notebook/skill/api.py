"""The skill's functions over :mod:`fal_notebook.jobs` (see the package docstring for why they exist)."""

from __future__ import annotations

import difflib
import threading
from collections.abc import Mapping
from typing import Any

from .. import jobs as _jobs
from ..config import ApiKey, load_settings
from ..errors import FalError, NotFoundError, Problem, ValidationError
from ..store.db import UNFINISHED

__all__ = [
    "submit", "check_status", "get_result", "poll_pending", "list_pending", "validate_input", "get_model_info",
    "get_api_key", "file_to_data_uri", "image_to_data_uri", "video_to_data_uri", "SkillValidationError",
]

ACCEPT_TIMEOUT = 120.0  # seconds submit() waits for fal's answer (the original's POST had no timeout at all)
RESULT_TIMEOUT = 300.0  # seconds poll_pending() lets a finished job's result and files arrive


_lock = threading.Lock()
_unreported: list[str] = []  # pending at this process's last poll_pending(): reported once when they end


class SkillValidationError(ValidationError, ValueError):
    """The original raised ``ValueError`` on bad input; scripts that catch it keep working."""


def _unknown_fields(model_id: str, input_data: Mapping[str, Any]) -> list[Problem]:
    from .. import catalog

    try:
        spec = catalog.get(model_id)
    except FalError:  # a model the bundle does not know: the validator fetches its schema and says what it can
        return []
    props = list(spec.input_schema.get("properties", {}))
    problems = []
    for key in input_data:
        if key not in props:
            near = difflib.get_close_matches(str(key), props, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known fields: {', '.join(props)}"
            if key == "skip_validation":
                hint = "pass it as submit(model_id, input_data, skip_validation=True), not inside the input"
            problems.append(Problem(str(key), f"is not a field of {spec.id}; not sent", hint))
    return problems


def _check(model_id: str, input_data: Mapping[str, Any]) -> None:
    problems = _unknown_fields(model_id, input_data)
    if problems:
        raise SkillValidationError(model_id, problems)


def _handle_json(job: Any) -> dict[str, Any]:
    """What fal answered the submit with: ``request_id`` and the three URLs, plus ``status``/``queue_position``."""
    return {"request_id": job.request_id, **job.urls, "status": job.state.value,
            "queue_position": job.queue_position}


def submit(model_id: str, input_data: dict[str, Any], skip_validation: bool = False) -> dict[str, Any]:
    """Queue a request; returns fal's submit answer (``request_id``, ``status_url``, ``response_url``,
    ``cancel_url``) once fal accepted it. The job is kept in the store and followed to its end."""
    if not skip_validation:
        _check(model_id, input_data)
    try:
        job = _jobs.submit(model_id, input_data, validate=not skip_validation)
    except ValidationError as exc:
        raise SkillValidationError(exc.model, exc.problems, exc.warnings) from None
    _jobs.until(job, lambda j: j.request_id is not None or j.done, ACCEPT_TIMEOUT, "accepted")
    if job.request_id is None:  # ended before fal accepted it (no key, refused, cancelled): say why
        job.raise_for_state()
    return _handle_json(job)


def _stored(request_id: str) -> Any | None:
    try:
        return _jobs.get(request_id)
    except NotFoundError:
        return None


def _handle(model_id: str, request_id: str) -> Any:
    from ..catalog import resolve
    from ..client.wire import RequestHandle

    job = _stored(request_id)
    if job is not None and job.request_id:
        return RequestHandle(job.request_id, job.model, **job.urls)
    return RequestHandle.fallback(resolve(model_id), request_id, load_settings().endpoints.queue)


def check_status(model_id: str, request_id: str) -> dict[str, Any]:
    """fal's status JSON for the request (``status``, ``queue_position``, ``response_url``, ``logs`` …)."""
    manager = _jobs.manager()
    status = manager.portal.call(manager.client.status(_handle(model_id, request_id)))
    return dict(status.raw)


def get_result(model_id: str, request_id: str) -> dict[str, Any]:
    """fal's result payload (``images``, ``video``, ``seed`` …). For a stored, finished job it is read from the
    store, so a result fal no longer keeps (1 h) is still there."""
    job = _stored(request_id)
    if job is not None and job.done:
        return job.result(timeout=0)
    manager = _jobs.manager()
    return manager.portal.call(manager.client.result(_handle(model_id, request_id)))


def _entry(job: Any) -> dict[str, Any]:
    """A job as the original's pending file held it (``fal-pending.json``), plus ``result`` or ``error``."""
    entry = {"request_id": job.request_id, "model_id": job.model, "input": job.arguments,
             "status": job.state.value, "submitted_at": job.submitted_at, "updated_at": job.updated_at,
             "queue_position": job.queue_position}
    if job.state.value == "COMPLETED":
        try:
            entry["result"] = job.result(timeout=0)
        except FalError as exc:
            entry["error"] = str(exc)
    elif job.done:
        entry["error"] = str(job.error or job.state.value)
    return entry


def list_pending() -> list[dict[str, Any]]:
    """Every unfinished request of every notebook, script and the CLI, as pending-file entries."""
    return [_entry(job) for job in _jobs.jobs(state=UNFINISHED, all=True)]


def poll_pending() -> list[dict[str, Any]]:
    """One pass like the original's ``poll``: ask fal once about every unfinished request and return those that
    have finished, each with ``result`` or ``error`` (their results and files are fetched first). The rest keep
    running and stay pending; unlike the original, finished results stay in the store."""
    pending = _jobs.jobs(state=UNFINISHED, all=True)
    _jobs.resume(all=True)  # followed from here on: fetched, downloaded and recorded when they end
    manager = _jobs.manager()
    asked = [job for job in pending if job.request_id is not None]
    readings = manager.portal.call(_read_all(manager, asked), timeout=RESULT_TIMEOUT)
    ended = {job.id for job, reading in zip(asked, readings, strict=True) if getattr(reading, "done", False)}
    with _lock:  # jobs an earlier poll of this process left pending, which the runtime may since have finished
        candidates = list(dict.fromkeys([*_unreported, *(job.id for job in pending)]))
    fresh = [_jobs.get(job_id) for job_id in candidates]
    finished = [job for job in fresh if job.id in ended or job.done]
    if finished:
        _jobs.wait(finished, timeout=RESULT_TIMEOUT)
    with _lock:
        _unreported.clear()
        _unreported.extend(job.id for job in fresh if job not in finished)
    return [_entry(job) for job in finished]


async def _read_all(manager: Any, jobs: list[Any]) -> list[Any]:
    import asyncio

    from ..client.wire import RequestHandle

    calls = [manager.client.status(RequestHandle(j.request_id, j.model, **j.urls)) for j in jobs]
    return await asyncio.gather(*calls, return_exceptions=True)


def validate_input(model_id: str, input_data: dict[str, Any]) -> tuple[bool, list[str], list[str]]:
    """``(ok, errors, warnings)`` like the original, from the full schema (types, enums, ranges, limits)."""
    from ..catalog.validate import validate

    errors = [str(p) for p in _unknown_fields(model_id, input_data)]
    try:
        checked = validate(model_id, input_data, probe_videos=False)
        warnings = list(checked.warnings)
    except ValidationError as exc:
        errors += [str(p) for p in exc.problems]
        warnings = list(exc.warnings)
    except FalError as exc:
        return False, [*errors, str(exc)], []
    return not errors, errors, warnings


def get_model_info(model_id: str) -> dict[str, Any]:
    """``{"model_id", "required", "optional", "file_fields", "notes"}`` like the original's ``model-info``."""
    from .. import catalog

    spec = catalog.get(model_id)
    info = spec.describe()
    required = list(spec.required)
    return {"model_id": spec.id,
            "required": required,
            "optional": [f["name"] for f in info["fields"] if f["name"] not in required],
            "file_fields": info.get("media_fields", {}),
            "notes": [info["description"]] if info.get("description") else []}


def get_api_key() -> ApiKey | None:
    """The key that would be used (``FAL_KEY`` → ``FAL_KEY_ID``/``FAL_KEY_SECRET`` → TOOLS.md). Its ``str`` is
    masked; pass it to nothing but fal_notebook."""
    return load_settings().key


def file_to_data_uri(path: str) -> str:
    from ..media import to_data_uri

    return to_data_uri(path)


image_to_data_uri = file_to_data_uri  # the original's backward-compatible alias


def video_to_data_uri(path: str) -> str:
    from ..media import video_to_data_uri as convert

    return convert(path)
