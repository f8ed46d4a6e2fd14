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
import math
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
    "sweep", "select", "check_group_size", "validate_all", "submit_group",
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
         all: bool = False, limit: int | None = None, *, label: str | None = None,  # noqa: A002 - public name
         min_rating: int | None = None, text: str | None = None) -> list[Job]:
    """Stored jobs, newest first: this notebook's (or script's) unless ``origin`` or ``all=True``; ``label``,
    ``min_rating`` (1..5) and ``text`` (in the id, model, input, label or note) narrow them down."""
    return manager().jobs(model=model, state=state, origin=origin, all=all, limit=limit, label=label,
                          min_rating=min_rating, text=text)


# -- groups, comparison, export ----------------------------------------------------------------------------------
def check_group_size(count: int, confirm: bool) -> None:
    """Refuse a group larger than the configured limit (``FAL_NOTEBOOK_GROUP_LIMIT``, default 16) unless
    confirmed: a typo in a sweep should not send hundreds of paid requests."""
    from .config import load_settings
    from .errors import UsageError

    limit = load_settings().group_limit
    if count > limit and not confirm:
        raise UsageError(f"this would send {count} requests, more than the group limit of {limit}; nothing was "
                         "sent. Add --yes (confirm=True) to send them, or set FAL_NOTEBOOK_GROUP_LIMIT")


def validate_all(model: str, requests: list[dict]) -> None:
    """Check every request of a group before any is sent; one ``ValidationError`` naming each bad one."""
    from .catalog.validate import validate
    from .errors import Problem, ValidationError

    spec = model_spec(model)
    problems: list[Problem] = []
    for index, arguments in enumerate(requests):
        try:
            validate(spec, arguments, probe_videos=False)
        except ValidationError as exc:
            label = f"request {index + 1} of {len(requests)}"
            problems += [Problem(f"{label}: {p.field}", p.message, p.allowed) for p in exc.problems]
    if problems:
        raise ValidationError(model, problems)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values (JSON has no int64)."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return value.tolist()
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    return value


def submit_group(model: str, requests: list[dict], axes: Iterable[str] = (), *, validate: bool = True,
                 tags: Iterable[str] = (), confirm: bool = False) -> JobGroup:
    """Submit prepared requests as one :class:`JobGroup` drawn along ``axes``: :func:`submit_many` lists every
    problem of every request before any is stored, and holds the group's estimate against ``max_cost``."""
    return submit_many(model, requests, validate=validate, tags=tags, confirm=confirm, axes=axes)


def sweep(model: str, arguments: Mapping[str, Any] | None = None, /, *, axes: Mapping[str, Iterable[Any]],
          n: int = 1, confirm: bool = False, validate: bool = True, tags: Iterable[str] = (),
          **fields: Any) -> JobGroup:
    """One request per combination of ``axes`` (any iterables: ``range``, numpy arrays, lists of prompts),
    ``n`` variations each (consecutive seeds), shown as one grid. Every combination is validated before
    anything is sent; groups above the size limit, or whose estimate exceeds ``max_cost``, need ``confirm=True``.

        fal_notebook.sweep("flux-dev", prompt="a fox", axes={"guidance_scale": [2, 3.5, 5],
                           "num_inference_steps": range(20, 41, 10)})
    """
    from .catalog.seeds import expand, group_axes, pick_seed, takes_seed
    from .errors import UnknownModelError, UsageError

    sweep_axes = []
    for name, values in axes.items():
        listed = [_plain(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]
        if not listed:
            raise UsageError(f"sweep axis {name!r} has no values")
        sweep_axes.append((name, listed))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be a whole number of at least 1, got {n!r}")
    base = {k: _plain(v) for k, v in {**(arguments or {}), **fields}.items()}
    count = n * math.prod(len(values) for _, values in sweep_axes)
    check_group_size(count, confirm)
    try:
        spec = model_spec(model)
    except UnknownModelError:
        spec = None
    seeded = spec is not None and takes_seed(spec)
    first = pick_seed(spec, n) if seeded and "seed" not in base else None
    requests = expand(base, sweep_axes, n, first, seeded)
    names = group_axes([name for name, _ in sweep_axes], n, seeded)
    return submit_group(model, requests, names, validate=validate, tags=tags, confirm=confirm)


def select(ids: Iterable[str] = (), *, tags: Iterable[str] = (), labels: Iterable[str] = (),
           min_rating: int | None = None) -> list[Job]:
    """Jobs by id, or from the whole history, kept when they have every tag, one of the labels and the
    rating asked for (export's selection)."""
    tags, labels = set(tags), set(labels)
    found = [get(i) for i in ids] if ids else jobs(all=True, min_rating=min_rating)
    return [job for job in found
            if tags <= set(job.tags) and (not labels or job.label_text in labels)
            and (min_rating is None or (job.rating or 0) >= min_rating)]


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
