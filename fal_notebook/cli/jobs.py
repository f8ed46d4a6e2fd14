"""The ``fal-notebook`` commands that touch jobs: submit, status, result, cancel, wait, poll, list.

They run on one :class:`~fal_notebook.runtime.JobManager` (origin ``cli``) that does not resume anything on
its own: only ``wait``, ``result``, ``poll`` and ``submit --wait`` follow jobs, and closing the manager at exit
releases every lease, so an unfinished job stays in the store for the next command, notebook or process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import FalError, FalTimeoutError, NotFoundError, UsageError, counted, one_line
from ..jobs import until
from .exit_codes import exit_code
from .output import emit, say

ORIGIN = "cli"
ACCEPT_TIMEOUT = 120.0  # submit without --wait: how long the request may take to reach fal
POLL_TIMEOUT = 300.0  # poll (one pass): how long finished jobs may take to be fetched and downloaded
_configured = False


def _configure() -> None:
    global _configured
    from .. import jobs as api

    if not _configured:
        api.set_default_origin(ORIGIN, auto_resume=False)
        _configured = True


def manager() -> Any:
    """The process's default job manager, set to origin ``cli`` and no automatic resume for the command."""
    from .. import jobs as api

    _configure()
    return api.manager()


def model_spec(model: str) -> Any:
    """The CLI's schema lookup: bundled, cached or fetched (by the CLI's manager, made only if needed)."""
    from .. import jobs as api

    _configure()
    return api.model_spec(model)


def close() -> None:
    """Stop following (in-flight submits get a grace period), release every lease, restore the defaults."""
    global _configured
    if _configured:
        from .. import jobs as api

        _configured = False
        api.set_default_origin(None)


def job_record(job: Any, **extra: Any) -> dict[str, Any]:
    """A job as every command prints it: ids, fal's three URLs, state, timings, local files (absolute), the
    typed error and the input as stored (data URIs by reference). ``status`` repeats ``state`` under the
    original skill's name. :func:`~fal_notebook.cli.emit` cuts any data URI left in it."""
    state = job.state.value
    return {
        "id": job.id,
        "request_id": job.request_id,
        "model": job.model,
        "state": state,
        "status": state,
        "queue_position": job.queue_position,
        **job.urls,
        "created_at": job.created_at,
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "elapsed": round(job.elapsed, 3),
        "inference_time": job.inference_time,
        "files": [str(Path(p).resolve()) for p in job.files],
        "error": _error_json(job.error),
        "origin": job.origin,
        "tags": list(job.tags),
        "arguments": job.arguments,
        **extra,
    }


def _error_json(error: BaseException | None) -> dict[str, Any] | None:
    """The error as the store keeps it (:func:`~fal_notebook.runtime.outcome.error_to_dict`), its class as
    ``type``."""
    if error is None:
        return None
    from ..runtime.outcome import error_to_dict

    fields = error_to_dict(error)
    return {"type": fields.pop("class"), **fields}


def _status_json(status: Any) -> dict[str, Any]:
    return {"status": status.state, "queue_position": status.queue_position, "logs": status.logs,
            "metrics": status.metrics, "error": status.error, "error_type": status.error_type}


def load_arguments(text: str) -> dict[str, Any]:
    """The JSON argument of ``submit``: inline JSON, ``@file.json``, or ``-`` for stdin."""
    if text == "-":
        text, where = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        try:
            text, where = Path(text[1:]).expanduser().read_text(encoding="utf-8"), text[1:]
        except OSError as exc:
            raise UsageError(f"cannot read {text[1:]}: {exc.strerror or exc}") from None
    else:
        where = "the JSON argument"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise UsageError(f"{where} is nested too deeply to be an input") from None
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a JSON object of input fields, e.g. '{{\"prompt\": \"a red fox\"}}'")
    return value


def exit_for_jobs(jobs: Sequence[Any]) -> int:
    """Exit 0 unless a job failed; the failures are named in one stderr line, the first gives the exit code."""
    failed = [j for j in jobs if j.done and j.error is not None and j.state.value != "CANCELLED"]
    if not failed:
        return 0
    named = "; ".join(f"job {j.id} {j.state.value}: {one_line(j.error)}" for j in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    say(f"{len(failed)} jobs did not complete: {named}{more}" if len(failed) > 1 else named)
    return exit_code(failed[0].error)


def wait_and_emit(jobs: list[Any], timeout: float | None, render: Callable[[list[Any]], Any]) -> int:
    """Wait for ``jobs``; print them whatever happens (also on a timeout, then exit 6)."""
    from ..jobs import wait

    try:
        wait(jobs, timeout=timeout)
    except FalTimeoutError:
        emit(render(jobs))
        raise
    emit(render(jobs))
    return exit_for_jobs(jobs)


def cmd_submit(command: Any) -> int:
    arguments = load_arguments(command.arguments)
    job = manager().submit(command.model, arguments, validate=command.validate, tags=command.tags,
                           confirm=command.yes)
    if command.wait:
        return wait_and_emit([job], command.timeout, lambda js: job_record(js[0]))
    # the request must reach fal before this process (and its runtime thread) ends
    until(job, lambda j: j.request_id is not None or j.done, command.timeout or ACCEPT_TIMEOUT, "accepted")
    emit(job_record(job))
    return exit_for_jobs([job])


def _find(ref: str, model: str | None) -> Any | None:
    """The stored job, or None when the store does not know ``ref`` but a MODEL says where to ask fal."""
    try:
        return manager().get(ref)
    except NotFoundError:
        if model is None:
            raise
        return None


def _handle(model: str, request_id: str) -> Any:
    from ..catalog import resolve
    from ..client.wire import RequestHandle

    return RequestHandle.fallback(resolve(model), request_id, manager().settings.endpoints.queue)


def _handle_of(job: Any) -> Any:
    """fal's handle for a stored, submitted job (its own URLs)."""
    from ..client.wire import RequestHandle

    return RequestHandle(job.request_id, job.model, **job.urls)


def _unstored(handle: Any, **extra: Any) -> dict[str, Any]:
    """A request the store does not know (made elsewhere), as printed: its ids and URLs, and fal's answer."""
    return {"id": None, "request_id": handle.request_id, "model": handle.endpoint_id,
            "status_url": handle.status_url, "response_url": handle.response_url, "cancel_url": handle.cancel_url,
            **extra}


def _ask_fal(coro: Any, timeout: float | None = None) -> Any:
    return manager().portal.call(coro, timeout=timeout)


def cmd_status(command: Any) -> int:
    job = _find(command.id, command.model)
    if job is None:  # a request made elsewhere (the original skill): ask fal directly
        handle = _handle(command.model, command.id)
        emit(_unstored(handle, fal=_status_json(_ask_fal(manager().client.status(handle)))))
        return 0
    fal = None
    if not job.done and job.request_id is not None:
        fal = _status_json(_ask_fal(manager().client.status(_handle_of(job))))
    emit(job_record(job, fal=fal))
    return 0


def cmd_result(command: Any) -> int:
    job = _find(command.id, command.model)
    if job is None:
        handle = _handle(command.model, command.id)
        emit(_unstored(handle, result=_ask_fal(manager().client.result(handle))))
        return 0
    result = job.result(timeout=command.timeout)  # follows the job here if nobody else does
    emit(job_record(job, result=result))
    return 0


def _targets(ids: Sequence[str], everything: bool) -> list[Any]:
    if everything or not ids:
        return manager().unfinished()
    return [manager().get(ref) for ref in ids]


def cmd_cancel(command: Any) -> int:
    answers = []
    for job in _targets(command.ids, command.all):
        answers.append(job_record(job, cancel=job.cancel()))
    emit({"cancelled": answers, "count": len(answers)})
    return 0


def cmd_resubmit(command: Any) -> int:
    job = manager().get(command.id).resubmit()
    if command.wait:
        return wait_and_emit([job], command.timeout, lambda js: job_record(js[0]))
    until(job, lambda j: j.request_id is not None or j.done, command.timeout or ACCEPT_TIMEOUT, "accepted")
    emit(job_record(job))
    return exit_for_jobs([job])


def cmd_wait(command: Any) -> int:
    jobs = _targets(command.ids, False)
    return wait_and_emit(jobs, command.timeout, lambda js: {"jobs": [job_record(j) for j in js], "count": len(js)})


def cmd_list(command: Any) -> int:
    from ..store.db import UNFINISHED, JobState

    state: Any = None if command.all else UNFINISHED
    if command.state is not None:
        state = command.state.strip().upper()
        if state not in JobState.__members__:
            raise UsageError(f"unknown state {command.state!r}; choose from {', '.join(JobState.__members__)}")
    found = manager().jobs(model=command.model, state=state, all=command.all, limit=command.limit,
                           label=command.label, min_rating=command.min_rating, text=command.text)
    emit({"jobs": [job_record(j) for j in found], "count": len(found)})
    return 0


async def _read_all(mgr: Any, jobs: Sequence[Any]) -> list[Any]:
    return await asyncio.gather(*(mgr.client.status(_handle_of(j)) for j in jobs), return_exceptions=True)


def _poll_once(jobs: list[Any], timeout: float) -> tuple[list[Any], dict[str, Any]]:
    """Read every job's status once; the runtime takes over those fal has finished (result fetched once,
    media downloaded) and those never sent. Returns (jobs to finish, fal's reading of the rest)."""
    asked = [j for j in jobs if j.request_id is not None]
    readings = dict(zip([j.id for j in asked], _ask_fal(_read_all(manager(), asked), timeout), strict=True))
    finishing, pending = [], {}
    for job in jobs:
        reading = readings.get(job.id)
        if reading is None or isinstance(reading, NotFoundError) or getattr(reading, "done", False):
            finishing.append(job)
        elif isinstance(reading, FalError):
            pending[job.id] = {"error": one_line(reading)}
        elif isinstance(reading, BaseException):
            raise reading
        else:
            pending[job.id] = _status_json(reading)
    return finishing, pending


def _moved(job: Any, before: tuple[Any, Any], fal: dict[str, Any] | None) -> bool:
    """Whether a poll pass saw something new: the stored state or position changed, or fal's differs."""
    if (job.state, job.queue_position) != before:
        return True
    return fal is not None and (fal.get("status"), fal.get("queue_position")) != (job.state.value, job.queue_position)


def cmd_poll(command: Any) -> int:
    from ..jobs import wait
    from ..store.db import UNFINISHED

    if command.watch:
        return _watch(command.timeout, command.interval)
    jobs = manager().jobs(state=UNFINISHED, all=True)
    timeout = POLL_TIMEOUT if command.timeout is None else command.timeout
    before = {j.id: (j.state, j.queue_position) for j in jobs}
    deadline = time.monotonic() + timeout
    finishing, pending = list(jobs), {}
    try:
        finishing, pending = _poll_once(jobs, timeout)
        wait(finishing, timeout=max(0.0, deadline - time.monotonic()))
    except FalTimeoutError:
        _report_poll(jobs, before, pending)
        late = sum(not j.done for j in finishing)
        raise FalTimeoutError(f"poll: {counted(late, 'job')} {'was' if late == 1 else 'were'} not read, fetched and downloaded within {timeout:g} s; "
                              "they stay in the store (run `fal-notebook poll` again, or give a longer --timeout)",
                              timeout=timeout) from None
    _report_poll(jobs, before, pending)
    return exit_for_jobs(jobs)


def _report_poll(jobs: list[Any], before: dict[str, tuple[Any, Any]], pending: dict[str, Any]) -> None:
    changed = [job_record(j, fal=pending.get(j.id)) for j in jobs if _moved(j, before[j.id], pending.get(j.id))]
    emit({"changed": changed, "count": len(changed), "still_pending": [j.id for j in jobs if not j.done]})


def _watch(timeout: float | None, interval: float) -> int:
    """``poll --watch``: one JSON line per job as it ends, then a summary line (also after a timeout). Every
    ``interval`` s the store is read again, so jobs submitted meanwhile (by anyone) are followed too."""
    from ..runtime.job import completed_batches, waiters
    from ..store.db import UNFINISHED

    deadline = None if timeout is None else time.monotonic() + timeout
    interval = max(0.1, interval)
    seen: dict[str, Any] = {}
    waiting: dict[Any, Any] = {}  # one waiter future per job -> the job
    ended: list[Any] = []
    while True:
        new = [job for job in manager().jobs(state=UNFINISHED, all=True) if job.id not in seen]
        seen.update((job.id, job) for job in new)
        waiting.update(waiters(new))
        if not waiting:
            break
        left = None if deadline is None else deadline - time.monotonic()
        try:
            step = interval if left is None else min(interval, left)
            for batch in completed_batches(list(waiting), step, "poll"):
                for job in sorted((waiting.pop(f) for f in batch), key=lambda j: j.created_at):
                    ended.append(job)
                    emit(job_record(job), line=True)
        except FalTimeoutError:
            if left is not None and left <= interval:
                _summary(seen, ended)
                raise FalTimeoutError(f"poll --watch: {counted(len(waiting), 'job')} still unfinished after {timeout:g} s; "
                                      "they keep their place in the store", timeout=timeout) from None
    _summary(seen, ended)
    return exit_for_jobs(ended)


def _summary(seen: dict[str, Any], ended: list[Any]) -> None:
    states: dict[str, int] = {}
    for job in ended:
        states[job.state.value] = states.get(job.state.value, 0) + 1
    emit({"summary": True, "count": len(ended), "states": states,
          "still_pending": [i for i, j in seen.items() if not j.done]}, line=True)
