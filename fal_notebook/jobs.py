"""The Job API: submit requests that run in the background and are never lost.

    job = fal_notebook.submit("nano-banana-pro", prompt="a red fox")   # returns at once
    job.wait().images                                                   # PIL images from local files
    job = fal_notebook.run("fal-ai/flux/dev", {"prompt": "…"})         # blocks; Ctrl-C cancels the request
    job = await fal_notebook.run_async("fal-ai/flux/dev", prompt="…")

Module functions use one default :class:`JobManager` per process, made on first use from the environment
(``load_settings()``) and made again when the environment points elsewhere (another home, endpoint or key).

Old skill verbs → here (docs/migrating-from-the-skill.md has the full table): ``submit`` → :func:`submit`;
``check_status`` → :func:`get` then ``job.state``; ``get_result`` → ``job.result()``; ``poll_pending`` →
:func:`resume` + :func:`as_completed` / :func:`wait`; ``list_pending`` → ``jobs(state=UNFINISHED)``;
``file_to_data_uri`` → ``fal_notebook.media.to_data_uri``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import FalTimeoutError, counted
from .runtime.job import Job, JobGroup, as_completed, wait_all
from .runtime.manager import JobManager
from .store.db import UNFINISHED, JobState

if TYPE_CHECKING:
    from .catalog import ModelSpec

__all__ = [
    "JobState", "Job", "JobGroup", "JobManager", "UNFINISHED",
    "submit", "run", "run_async", "get", "jobs", "wait", "as_completed", "resume", "manager", "set_manager",
    "set_default_origin", "reset_for_tests", "model_spec",
    "submit_many", "estimate", "spend", "import_history", "adopt", "search_models",
    "resubmit", "until",
]

log = logging.getLogger("fal_notebook")
_lock = threading.Lock()
_default: JobManager | None = None
_origin: str | None = None
_auto_resume = True


def manager() -> JobManager:
    """The process's default manager, started (its unfinished jobs resumed) on first use."""
    global _default
    from .config import load_settings

    settings = load_settings()
    with _lock:
        current = _default
        stale = current is not None and not current.serves(settings)
        if current is None or stale:
            if current is not None:
                log.debug("the environment changed; closing %r", current)
                current.close()
            current = _default = JobManager(settings, origin=_origin, auto_resume=_auto_resume)
    return current.start()


def set_manager(new: JobManager | None) -> None:
    """Use ``new`` for the module functions (closing the previous default); ``None`` makes one lazily."""
    global _default
    with _lock:
        old, _default = _default, new
    if old is not None and old is not new:
        old.close()


def set_default_origin(origin: str | None, *, auto_resume: bool = True) -> None:
    """Record new jobs under ``origin`` (the CLI uses ``"cli"``); ``None``: notebook path or ``"script"``.

    ``auto_resume=False``: the default manager follows only what it is asked to (the CLI's commands)."""
    global _origin, _auto_resume
    _origin, _auto_resume = origin, auto_resume
    set_manager(None)


def reset_for_tests() -> None:
    """Close the default manager so the next call builds one from the current environment."""
    set_manager(None)


def submit(model: str, arguments: Mapping[str, Any] | None = None, /, *, validate: bool = True,
           tags: Iterable[str] = (), priority: str | None = None, webhook_url: str | None = None,
           start_timeout: float | None = None, hint: str | None = None, confirm: bool = False,
           **fields: Any) -> Job:
    """Queue a request and return its :class:`Job` at once. ``fields`` add to ``arguments``.

    Raises ``ValidationError`` (nothing was sent) unless ``validate=False``, and ``CostLimitError`` (nothing
    was sent) when ``job.estimate`` would exceed ``max_cost`` unless ``confirm=True``.
    """
    return manager().submit(model, arguments, validate=validate, tags=tags, priority=priority,
                            webhook_url=webhook_url, start_timeout=start_timeout, hint=hint, confirm=confirm,
                            **fields)


def submit_many(model: str, requests: Iterable[Mapping[str, Any]], /, *, confirm: bool = False,
                **options: Any) -> JobGroup:
    """Queue several requests to one model as a group: all inputs are checked, and the group's estimate held
    against ``max_cost``, before the first is sent."""
    return manager().submit_many(model, requests, confirm=confirm, **options)


def estimate(model: str, arguments: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None, /,
             **fields: Any) -> dict[str, Any] | None:
    """What a request (or a list of requests) would cost, before sending anything:
    ``{"model", "unit_price", "unit", "quantity", "total", "currency"}``; ``None`` when fal's price for the
    model is not known (offline and never cached)."""
    if arguments is None or isinstance(arguments, Mapping):
        requests = [{**(arguments or {}), **fields}]
    else:
        requests = [{**a, **fields} for a in arguments]
    return manager().estimate(model, requests)


def spend(since: str | datetime | None = None, all: bool = False,  # noqa: A002 - the public name is `all`
          usage: bool = True) -> dict[str, Any]:
    """What this notebook's jobs (every job with ``all=True``) cost, per model, from their estimates, since
    ``since`` (``"7d"``, ``"12h"``, a date, or a datetime); with ``usage`` also fal's own usage figures when
    the key may read them (``report["fal_usage"]``)."""
    from .runtime import account

    when = since if isinstance(since, datetime) or since is None else account.parse_since(since)
    return account.spend(manager(), since=when, all=all, usage=usage)


def import_history(model: str | Iterable[str] | None = None, since: str | datetime | None = "1d"
                   ) -> dict[str, Any]:
    """Bring the account's past requests (made anywhere) into the job store: inputs, outputs and times, so
    ``jobs(all=True)`` and the gallery show them. ``model``: one endpoint id or several (default: every
    model this store, the catalogue or fal's usage knows)."""
    from .runtime import account

    models = [model] if isinstance(model, str) else list(model or [])
    when = since if isinstance(since, datetime) or since is None else account.parse_since(since)
    return account.import_history(manager(), models=models, since=when)


def adopt(request_id: str, model: str) -> Job:
    """Follow a request made from any other tool, by its fal request id and model; returns its :class:`Job`."""
    return manager().adopt(request_id, model)


def search_models(text: str | None = None, category: str | None = None) -> dict[str, Any]:
    """Models matching ``text`` / ``category``: the bundled ones first, then fal's whole catalogue (offline:
    the bundled ones, and ``report["note"]`` says so)."""
    from .runtime import account

    return account.search_models(manager(), text, category)


def run(model: str, arguments: Mapping[str, Any] | None = None, /, *, timeout: float | None = None,
        **options: Any) -> Job:
    """Submit and block until the job ends. Raises its typed error; ``FalTimeoutError`` after ``timeout``.

    A ``KeyboardInterrupt`` (Ctrl-C, a kernel interrupt) cancels the remote request, then propagates.
    """
    job = submit(model, arguments, **options)
    try:
        job.wait(timeout)
    except KeyboardInterrupt:
        _cancel_quietly(job)
        raise
    job.raise_for_state()
    return job


def _cancel_quietly(job: Job) -> None:
    try:
        answer = job.cancel()
        log.info("job %s interrupted; cancel: %s", job.id, answer)
    except Exception as exc:  # the interrupt matters more than a failed cancel
        log.warning("job %s interrupted, but cancelling it failed: %s", job.id, exc)


async def run_async(model: str, arguments: Mapping[str, Any] | None = None, /, *,
                    timeout: float | None = None, **options: Any) -> Job:
    """``await`` form of :func:`run` for the kernel's loop (which it never blocks).

    Cancelling the awaiting task cancels the remote request. A kernel interrupt reaches a top-level
    ``await`` only when it finishes (ipykernel); prefer :func:`run` when that matters.
    """
    job = await asyncio.to_thread(submit, model, arguments, **options)
    try:
        return await asyncio.wait_for(job, timeout)
    except TimeoutError:
        from .errors import FalTimeoutError

        raise FalTimeoutError(f"job {job.id} did not finish within {timeout} s", timeout=timeout,
                              request_id=job.request_id) from None
    except asyncio.CancelledError:
        await asyncio.to_thread(_cancel_quietly, job)
        raise


def model_spec(model: str, /, *, fetch: bool = True) -> ModelSpec:
    """A model's spec: bundled, cached on disk, or (``fetch``) fetched from fal once by the default manager
    (made only then). The one lookup (:class:`~fal_notebook.catalog.Lookup`) the ``%fal`` grammar is given."""
    from .catalog import lookup
    from .config import load_settings

    fetcher = (lambda endpoint_id: manager().fetch_schema(endpoint_id)) if fetch else None
    return lookup(model, fetch=fetcher, cache_dir=load_settings().schema_cache)


def resubmit(ref: str) -> Job:
    """Send again a job fal did not receive (``NOT_RECEIVED``); see :meth:`Job.resubmit`."""
    return manager().get(ref).resubmit()


def get(ref: str) -> Job:
    """A job by local id, fal request id or a unique prefix of either (``NotFoundError`` otherwise)."""
    return manager().get(ref)


def jobs(model: str | None = None, state: JobState | str | Iterable | None = None, origin: str | None = None,
         all: bool = False, limit: int | None = None) -> list[Job]:  # noqa: A002 - the public name is `all`
    """Stored jobs, newest first: this notebook's (or script's) unless ``origin`` or ``all=True``."""
    return manager().jobs(model=model, state=state, origin=origin, all=all, limit=limit)


def wait(jobs: Iterable[Job] | None = None, timeout: float | None = None) -> list[Job]:
    """Block until ``jobs`` (default: this origin's unfinished ones) end; returns them.

    ``FalTimeoutError`` after ``timeout`` seconds; the jobs keep running.
    """
    targets = list(jobs) if jobs is not None else manager().unfinished()
    wait_all(targets, timeout, counted(len(targets), "job"))
    manager().retry_downloads([job.id for job in targets], timeout)  # outputs a full disk refused earlier
    return targets


def resume(all: bool = False) -> list[Job]:  # noqa: A002
    """Follow unfinished jobs again (this origin's; every origin's with ``all=True``); returns those taken."""
    return manager().resume(all=all)


def until(job: Any, predicate: Callable[[Any], bool], timeout: float, what: str) -> None:
    """Block until ``predicate(job)`` holds, woken by the job's change notifications."""
    changed = threading.Event()
    unsubscribe = job.on_change(changed.set)
    deadline = time.monotonic() + timeout
    try:
        while True:
            changed.clear()
            if predicate(job):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FalTimeoutError(f"job {job.id} was not {what} within {timeout:g} s", timeout=timeout)
            changed.wait(min(remaining, 0.5))  # slices keep Ctrl-C prompt
    finally:
        unsubscribe()


class _CallableModule(types.ModuleType):
    """``fal_notebook.jobs`` is this module once imported, and also the listing function: ``jobs(...)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Job]:
        return jobs(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
