"""The job runtime: one ``JobManager`` per process, following jobs on the shared portal loop.

Why this shape (DESIGN.md, jupyter-notes §6): the portal's daemon thread keeps jobs moving while cells block,
in terminal IPython and in scripts; one ``AsyncQueueClient`` lives on that loop. Every job is a row in the
store first, and a process follows only the jobs it holds a lease on (``owner`` = host:pid:nonce), renewed
while it works. A lease whose owner died on this host, or that ran out, may be taken over: two processes
sharing the store never double-process a job nor lose one.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog.pricing import combine_estimates
from ..config import Settings, key_problem, load_settings
from ..errors import ConfigError, FalError, NotFoundError, UnknownModelError, UsageError, ValidationError
from ..store.db import UNFINISHED, JobRecord, JobState, JobStore, new_job_id, new_owner, utcnow
from ..store.legacy import import_legacy
from . import cancel as _cancel
from . import steps as _steps
from . import variations as _vary
from .job import CANCEL_TIMEOUT, Job, JobGroup
from .ledger import JobRun, Phase, handle_of
from .outcome import LostJob, error_to_dict
from .pricing import PriceBook, check_budget
from .reconcile import CLEARED, needs_reconcile
from .tracker import Tracker

if TYPE_CHECKING:
    from datetime import datetime

    from .._portal import Portal
    from ..catalog import ModelSpec
    from ..client.platform import AsyncPlatformClient
    from ..client.platform_wire import RequestItem
    from ..client.queue import AsyncQueueClient
    from ..config import Limits

__all__ = ["JobManager", "default_origin"]

log = logging.getLogger("fal_notebook")
_FINAL_FIELDS = ("state", "finished_at", "queue_position", "error", "files", "logs", "result", "inference_time",
                 "started_at")
SCHEMA_TIMEOUT = 60.0  # fetching an unknown model's OpenAPI document before a submit (retries included)


@dataclass(frozen=True)
class _Prepared:
    """One request of a submit, checked: where it goes, what to send, what to upload first."""

    endpoint: str
    arguments: dict
    uploads: list
    warnings: list[str]
    spec: Any


def default_origin(env: Mapping[str, str] | None = None) -> str:
    """The notebook's path (``JPY_SESSION_NAME``, set by jupyter_server) or ``"script"``."""
    env = os.environ if env is None else env
    return env.get("JPY_SESSION_NAME") or "script"


class JobManager:
    """Submits, follows, resumes and cancels jobs for one process (tests make isolated ones).

    It is the only one that decides a job's final state: the steps report through it (it is their
    :class:`~.ledger.Ledger`) and return an outcome; a ``Job`` asks it for the rest (it is the job's
    :class:`~.tracker.Host`). Per job it keeps a :class:`~.tracker.Tracker` (record, waiters, callbacks) and,
    while following it here, a :class:`~.ledger.JobRun`.

        manager = JobManager(settings, store=JobStore(tmp / "jobs.sqlite3"), origin="cli")
        job = manager.submit("fal-ai/nano-banana-pro", {"prompt": "a fox"})

    ``legacy_file``: the original skill's ``fal-pending.json`` to import once (``None``: from the
    environment; ``False``: none). ``auto_resume``: on start, resume this origin's unfinished jobs.
    """

    LEASE = 60.0  # seconds a claim lasts without renewal
    RENEW_EVERY = 15.0
    WATCH_EVERY = 1.0  # how often a job followed by another process is re-read while someone waits
    FLUSH_EVERY = 0.5  # noted progress (state, queue position, logs) reaches the store in one batch this often

    def __init__(self, settings: Settings | None = None, *, store: JobStore | None = None,
                 origin: str | None = None, portal: Portal | None = None, client: AsyncQueueClient | None = None,
                 legacy_file: Path | None | bool = None, auto_resume: bool = True, max_submits: int = 16,
                 max_downloads: int = 4, max_streams: int = 256, max_requests: int = 32,
                 max_multiplexed: int = 2000, platform: AsyncPlatformClient | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.store = store if store is not None else JobStore(self.settings.store_path)
        self.origin = origin or default_origin()
        self.outputs = Path(self.settings.outputs).expanduser().resolve()
        self.owner = new_owner()
        self._portal, self._client, self._platform = portal, client, platform
        self._legacy_file, self._auto_resume = legacy_file, auto_resume
        self.submit_slots = asyncio.Semaphore(max_submits)
        self.download_slots = asyncio.Semaphore(max_downloads)
        self.sse_slots = asyncio.Semaphore(max_streams)  # HTTP/1.1: each status stream holds a connection
        self.mux_slots = asyncio.Semaphore(max_multiplexed if max_streams else 0)  # HTTP/2: streams share them
        self._max_streams, self._max_requests = max_streams, max_requests
        self._lock = threading.RLock()
        self._runs: dict[str, JobRun] = {}  # jobs this process follows
        self._trackers: weakref.WeakValueDictionary[str, Tracker] = weakref.WeakValueDictionary()
        self._known: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        self._tasks: dict[str, asyncio.Task] = {}  # runtime thread only
        self._watched: set[str] = set()
        self._resumed: set[str] = set()  # ids this manager took over from an earlier process
        self._started = self._closed = False
        self._renewer: Any = None
        self._flusher: Any = None
        self._noted: dict[str, tuple[JobRun, set[str]]] = {}  # runtime thread only: progress not yet stored
        self._prices: PriceBook | None = None

    def __repr__(self) -> str:
        return f"<JobManager origin={self.origin!r} store={self.store.path} live={len(self._runs)}>"

    # -- lifecycle ---------------------------------------------------------------------------------------
    @property
    def portal(self) -> Portal:
        if self._portal is None:
            from .._portal import get_portal

            self._portal = get_portal()
        return self._portal

    @property
    def client(self) -> AsyncQueueClient:
        if self._client is None:
            from ..client.queue import AsyncQueueClient

            self._client = AsyncQueueClient(self.settings, max_requests=self._max_requests,
                                            max_streams=self._max_streams)
        return self._client

    @property
    def platform(self) -> AsyncPlatformClient:
        """fal's platform API (request history, to settle submits whose reply was lost)."""
        if self._platform is None:
            from ..client.platform import AsyncPlatformClient

            self._platform = AsyncPlatformClient(self.settings)
        return self._platform

    @property
    def closed(self) -> bool:
        return self._closed

    def serves(self, settings: Settings) -> bool:
        """True while this manager can go on serving ``settings`` (same environment, open, loop alive)."""
        return self.settings == settings and not self._closed and (not self._started or self.portal.running)

    def start(self) -> JobManager:
        """Start following (lazily called by every entry point); imports legacy jobs and resumes this origin's."""
        with self._lock:
            if self._started:
                return self
            if self._closed:
                raise FalError("this JobManager was closed; create a new one")
            self._started = True
            self.portal.start()
            self._renewer = self.portal.submit(self._renew_forever())
            self._flusher = self.portal.submit(self._flush_forever())
            atexit.register(self.close)
        if self.store.read_only:  # reading commands work; nothing is imported, claimed or resumed here
            return self
        if self._legacy_file is not False:
            path = None if self._legacy_file in (None, True) else Path(self._legacy_file)
            import_legacy(self.store, path, urls=self._fallback_urls)
        if self._auto_resume:
            self.resume()
        return self

    def close(self, grace: float = 2.0) -> None:
        """Stop following: give in-flight POSTs ``grace`` s, cancel the rest, release every lease (the rows
        stay unfinished, so a later ``resume()`` here or elsewhere picks them up)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        atexit.unregister(self.close)
        if started and self.portal.running and not self.portal.in_loop_thread:
            try:
                self.portal.call(self._shutdown(grace), timeout=grace + 5)
            except Exception as exc:  # closing must never raise at exit
                log.debug("closing the job manager: %r", exc)
        if not self.store.read_only:  # a read-only store holds no lease of ours
            self.store.release(self.owner)

    async def _shutdown(self, grace: float) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
        posting = [t for i, t in self._tasks.items() if i in self._runs and self._runs[i].phase is Phase.POSTING]
        if posting:
            await asyncio.wait(posting, timeout=grace)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flush()
        await self.client.aclose()
        if self._prices is not None:
            await self._prices.aclose()
        if self._platform is not None:
            await self._platform.aclose()

    # -- submitting --------------------------------------------------------------------------------------
    def submit(self, model: str, arguments: Mapping[str, Any] | None = None, *, validate: bool = True,
               tags: Iterable[str] = (), priority: str | None = None, webhook_url: str | None = None,
               start_timeout: float | None = None, hint: str | None = None, confirm: bool = False,
               lineage: Iterable[tuple[str, str]] = (), **fields: Any) -> Job:
        """Check the input, price it, store the job, and hand it to the runtime. Returns at once.

        A ``Job`` given as a value stands for its first output file. When the model takes a ``seed`` and none
        was given, one is picked and sent (so every job can be reproduced). Inputs that are stored jobs'
        outputs (a local file or a result URL) make those jobs its parents; ``lineage`` adds ``(id, kind)``.
        Raises ``ValidationError`` / ``UnknownModelError`` before anything is stored or sent, and
        ``CostLimitError`` when the estimate exceeds ``max_cost`` (unless ``confirm``), and
        ``ConfigError`` when there is no key to send it with (a stored job that can only fail helps nobody).
        """
        self._require_key()
        options = {"priority": priority, "webhook_url": webhook_url, "start_timeout": start_timeout, "hint": hint}
        arguments, tags = self._check_call(model, arguments, fields, tags, **options)
        item = self._prepare(model, arguments, validate)
        estimate = self.prices.estimate(item.endpoint, [item.arguments], self._known_spec(item.endpoint))
        check_budget(estimate, confirm=confirm)
        return self._launch([item], [estimate], tags, {"validate": validate, **options}, lineage)[0]

    def submit_many(self, model: str, requests: Iterable[Mapping[str, Any]], *, validate: bool = True,
                    confirm: bool = False, axes: Iterable[str] = (), tags: Iterable[str] = (),
                    priority: str | None = None, webhook_url: str | None = None, start_timeout: float | None = None,
                    hint: str | None = None, lineage: Iterable[tuple[str, str]] = ()) -> JobGroup:
        """Submit a group (``--n`` / ``--sweep``) as one decision and one step: every input is checked once
        (one ``ValidationError`` lists the problems of every request) and the group's estimate held against
        ``max_cost`` before anything is stored; then every job is stored in one transaction and handed to the
        runtime in one call. ``axes``: the fields that vary, in drawing order (:class:`JobGroup`)."""
        from ..errors import Problem

        self._require_key()
        options = {"priority": priority, "webhook_url": webhook_url, "start_timeout": start_timeout, "hint": hint}
        requests = list(requests)
        _args, tags = self._check_call(model, {}, {}, tags, **options)
        items: list[_Prepared] = []
        problems: list[Problem] = []
        label = model
        for index, request in enumerate(requests):
            arguments, _tags = self._check_call(model, request, {}, (), **options)
            try:
                items.append(self._prepare(model, arguments, validate))
            except ValidationError as exc:
                if len(requests) == 1:
                    raise
                label = exc.model or label
                where = f"request {index + 1} of {len(requests)}"
                problems += [Problem(f"{where}: {p.field}", p.message, p.allowed) for p in exc.problems]
        if problems:
            raise ValidationError(label, problems)
        if not items:
            return JobGroup((), axes=axes)
        endpoint = items[0].endpoint
        estimates = self.prices.estimate_each(endpoint, [i.arguments for i in items], self._known_spec(endpoint))
        check_budget(combine_estimates(estimates), count=len(items), confirm=confirm)
        jobs = self._launch(items, estimates, tags, {"validate": validate, **options}, lineage)
        return JobGroup(jobs, axes=axes)

    def _require_key(self) -> None:
        """A stored job that can only fail helps nobody: no key, nothing is stored."""
        problem = key_problem(self.settings)
        if problem is not None:
            raise ConfigError(problem)

    def _prepare(self, model: str, arguments: dict, validate: bool) -> _Prepared:
        """One request checked (once) and ready to price: ``ValidationError`` / ``UsageError`` otherwise."""
        try:
            arguments = _vary.job_values(arguments)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        endpoint, arguments, uploads, warnings, spec = self._check(model, arguments, validate)
        return _Prepared(endpoint, arguments, uploads, warnings, spec)

    def _launch(self, items: list[_Prepared], estimates: list[dict[str, Any] | None], tags: list[str],
                options: dict[str, Any], lineage: Iterable[tuple[str, str]]) -> list[Job]:
        """Store checked, priced requests (one transaction for all) and hand them to the runtime (one call)."""
        self.start()
        lineage = list(lineage)
        records, runs, schemas = [], [], {}
        for item, estimate in zip(items, estimates, strict=True):
            arguments = _vary.with_seed(item.spec, item.arguments)
            arguments, uploads = self.store.keep_uploads(arguments, item.uploads)
            if item.spec is not None and id(item.spec) not in schemas:
                schemas[id(item.spec)] = _vary.schema_fingerprint(item.spec)
            kept = {**options, "schema": schemas.get(id(item.spec))}
            record = JobRecord(id=new_job_id(), endpoint=item.endpoint, arguments=arguments, origin=self.origin,
                               tags=list(tags), options={k: v for k, v in kept.items() if v is not None},
                               owner=self.owner, lease_until=time.time() + self.LEASE, estimate=estimate)
            records.append(record)
            runs.append(JobRun(Tracker(record), uploads=uploads))
        self.store.insert_all(records)
        for record in records:
            self._record_parents(record, lineage)
        jobs = [self._job_for(run.tracker, item.warnings) for run, item in zip(runs, items, strict=True)]
        self._follow(*runs)
        return jobs

    def estimate(self, model: str, requests: Iterable[Mapping[str, Any]], *, fetch: bool = True
                 ) -> dict[str, Any] | None:
        """The price of these requests to ``model`` before paying (``None``: fal's price is not known);
        ``fetch=False``: from the price cache only (a form redrawing on each keystroke)."""
        from ..catalog import resolve

        try:
            endpoint = resolve(model)
        except UnknownModelError:
            endpoint = model.strip().strip("/")
        return self.prices.estimate(endpoint, list(requests), self._known_spec(endpoint))

    def adopt(self, request_id: str, model: str, *, arguments: Mapping[str, Any] | None = None,
              tags: Iterable[str] = ()) -> Job:
        """Follow a request made elsewhere (another tool or machine) by its fal request id: it is stored and
        followed to its result here like any job. One the store already holds is returned as it is."""
        from ..catalog import resolve
        from ..client.wire import normalize_endpoint_id

        request_id = request_id.strip()
        if not request_id:
            raise ValueError("a request id is needed")
        self.start()
        known = self.store.find_request(request_id)
        if known is not None:
            return self.get(known.id)
        try:
            endpoint = resolve(model)
        except UnknownModelError:
            endpoint = normalize_endpoint_id(model)
        arguments = dict(arguments or {})
        record = JobRecord(id=new_job_id(), endpoint=endpoint, request_id=request_id, state=JobState.IN_QUEUE,
                           arguments=arguments, origin=self.origin, tags=["adopted", *tags],
                           options={"validate": False}, owner=self.owner, lease_until=time.time() + self.LEASE,
                           submitted_at=utcnow(),
                           estimate=self.estimate(endpoint, [arguments]) if arguments else None)
        record.status_url, record.response_url, record.cancel_url = self._fallback_urls(endpoint, request_id)
        self.store.insert(record)
        run = JobRun(Tracker(record))
        job = self._job_for(run.tracker)
        self._follow(run)
        return job

    @property
    def prices(self) -> PriceBook:
        with self._lock:
            if self._prices is None:
                self._prices = PriceBook(self.settings, self.portal, lambda: self.client.session)
            return self._prices

    def _known_spec(self, endpoint: str) -> ModelSpec | None:
        """The spec at hand (bundled, registered, cached): its defaults say what a request left out."""
        try:
            return self.model_spec(endpoint, fetch=False)
        except FalError:
            return None
    @staticmethod
    def _check_call(model: Any, arguments: Any, fields: dict, tags: Any, **options: Any) -> tuple[dict, list[str]]:
        """What every entry point gets checked before anything is stored: a model name, a mapping of
        arguments, text tags and sendable options (a clear error, never a TypeError from deep inside)."""
        from ..catalog.validate import check_sendable
        from ..client.queue import submit_option_problems

        if not isinstance(model, str) or not model.strip():
            raise UsageError(f"the model must be an endpoint id or alias such as 'fal-ai/flux/dev', not {model!r}")
        label = model.strip()
        if arguments is not None and not isinstance(arguments, Mapping):
            check_sendable(label, arguments)  # raises: not a mapping
        tags = [tags] if isinstance(tags, str) else tags
        try:
            tags = list(tags or ())
        except TypeError:
            raise UsageError(f"tags must be a list of text, not {type(tags).__name__}") from None
        if not all(isinstance(tag, str) for tag in tags):
            raise UsageError("tags must be text")
        problems = submit_option_problems(**options)
        if problems:
            raise ValidationError(label, problems)
        return {**(arguments or {}), **fields}, tags

    def _record_parents(self, record: JobRecord, lineage: Iterable[tuple[str, str]]) -> None:
        """Lineage is a convenience: a failure to record it is logged, never stops the job."""
        try:
            for parent, kind in lineage:
                self.store.add_parents(record.id, [parent], kind)
            self.store.add_parents(record.id, self.store.producers(_vary.file_refs(record.arguments)))
        except Exception as exc:
            log.warning("job %s: could not record where its inputs came from: %s", record.id, exc)

    def _check(self, model: str, arguments: dict, validate: bool) -> tuple[str, dict, list, list[str], Any]:
        if not validate:
            from ..catalog import resolve
            from ..catalog.validate import check_sendable
            from ..client.wire import normalize_endpoint_id

            arguments = check_sendable(model, arguments)  # the schema is skipped, JSON itself is not
            try:
                return resolve(model), arguments, [], [], None
            except UnknownModelError:
                return normalize_endpoint_id(model), arguments, [], [], None
        from ..catalog.validate import validate as check

        checked = check(self.model_spec(model), arguments, cache_dir=self.settings.schema_cache)
        for warning in checked.warnings:
            log.warning("%s: %s", checked.spec.id, warning)
        return checked.spec.id, checked.arguments, list(checked.uploads), list(checked.warnings), checked.spec

    def model_spec(self, model: str, /, *, fetch: bool = True) -> ModelSpec:
        """The catalogue's spec for ``model``: bundled, registered, cached on disk, or (``fetch``) fetched once
        from fal's OpenAPI route and cached — the one schema lookup (a :class:`~fal_notebook.catalog.Lookup`)
        behind validation, the grammar and the form panel. Raises ``UnknownModelError``."""
        from ..catalog import lookup

        return lookup(model, fetch=self.fetch_schema if fetch else None, cache_dir=self.settings.schema_cache)

    def fetch_schema(self, endpoint_id: str) -> dict:
        """fal's OpenAPI document for one endpoint: from the platform's model list, else fal's public
        per-model route (see ``AsyncQueueClient.fetch_openapi``)."""
        return self.portal.call(self.client.fetch_openapi(endpoint_id), timeout=SCHEMA_TIMEOUT)

    # -- following ---------------------------------------------------------------------------------------
    def fallback_urls(self, endpoint: str, request_id: str) -> tuple[str, str, str]:
        """(status, response, cancel) URLs of a request known only by its id (fal's documented paths)."""
        return self._fallback_urls(endpoint, request_id)

    def _fallback_urls(self, endpoint: str, request_id: str) -> tuple[str, str, str]:
        from ..client.wire import RequestHandle

        handle = RequestHandle.fallback(endpoint, request_id, self.settings.endpoints.queue)
        return handle.status_url, handle.response_url, handle.cancel_url

    def _follow(self, *runs: JobRun) -> None:
        """Register claimed jobs as followed here and start their drive tasks on the loop (one hand-over for
        all of them: a group of 200 is one call into the loop, not 200)."""
        for run in runs:
            rec = run.record
            if rec.request_id and not rec.status_url:
                rec.status_url, rec.response_url, rec.cancel_url = self._fallback_urls(rec.endpoint, rec.request_id)
        with self._lock:
            for run in runs:
                self._runs[run.id] = run
                self._trackers[run.id] = run.tracker
        if runs:
            self.portal.submit(self._drive_all(runs))

    async def _drive_all(self, runs: tuple[JobRun, ...]) -> None:
        for run in runs:
            if not run.record.state.terminal:  # not cancelled before the loop got to it
                self._tasks[run.id] = asyncio.ensure_future(self._drive(run))

    async def _drive(self, run: JobRun) -> None:
        self._tasks[run.id] = asyncio.current_task()
        try:
            outcome = await _steps.drive(self, run)
        finally:
            self._tasks.pop(run.id, None)
        if outcome.lost:
            self._lose(run.tracker)
        else:
            self.finish(run, outcome.state, outcome.error)

    def resume(self, all: bool = False) -> list[Job]:  # noqa: A002 - the public name is `all`
        """Claim and follow unfinished jobs of this origin (every origin with ``all=True``)."""
        self.start()
        resumed, free = [], []
        for row in self.store.unfinished(None if all else self.origin):
            if row.id not in self._runs:
                free.append(row.id)
            elif row.id in self._resumed:  # taken over when this manager started
                resumed.append(self._job_for(self._runs[row.id].tracker))
        for claimed in self.store.claim_many(free, self.owner, self.LEASE):  # one transaction for all
            if claimed.request_id is None:
                log.warning("job %s never got a request id (its process stopped while submitting); %s",
                            claimed.id, "looking for it in fal's request history" if needs_reconcile(claimed)
                            else "submitting it (it was never sent)")
            tracker = self._tracker_for(claimed)
            tracker.replace(claimed)
            self._resumed.add(claimed.id)
            self._follow(JobRun(tracker, resumed=True))
            resumed.append(self._job_for(tracker))
        if resumed:
            log.info("resumed %d unfinished job(s)", len(resumed))
        if not all:
            self._retry_pending_quietly()
        return resumed

    def _retry_pending_quietly(self) -> None:
        try:
            self.retry_downloads()
        except Exception as exc:  # resuming must not fail because a disk is still full
            log.warning("outputs still pending: %s", exc)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.RENEW_EVERY)
            ids = list(self._runs)
            held = self.store.renew(self.owner, ids, self.LEASE)
            for job_id in set(ids) - held:
                run = self._runs.get(job_id)
                if run is not None and not run.record.state.terminal:
                    log.warning("job %s was taken over by another process; no longer following it", job_id)
                    self._stop_task(job_id)
                    self._lose(run.tracker)

    def _stop_task(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # -- the ledger: what the steps use and report to (runtime thread) --------------------------------------
    @property
    def stream_slots(self) -> asyncio.Semaphore:
        """The bound on status streams: per connection on HTTP/1.1, much wider once fal speaks HTTP/2."""
        return self.mux_slots if self.client.multiplexed else self.sse_slots

    @property
    def schema_cache(self) -> Path | None:
        return self.settings.schema_cache

    def restore_inputs(self, arguments: dict) -> dict:
        return self.store.restore_inputs(arguments)

    @property
    def limits(self) -> Limits:
        return self.settings.limits

    async def request_history(self, endpoint: str, start: datetime) -> list[RequestItem]:
        return await self.platform.requests_by_endpoint(endpoint, start=start, payloads=True, max_items=500)

    def request_known(self, request_id: str) -> bool:
        return self.store.find_request(request_id) is not None

    def adopt_request(self, run: JobRun, request_id: str) -> bool:
        """Take over fal's request ``request_id`` for this job (its reply was lost); the store's unique
        request id makes sure two jobs never share one."""
        rec = run.record
        status_url, response_url, cancel_url = self._fallback_urls(rec.endpoint, request_id)
        values = {"request_id": request_id, "status_url": status_url, "response_url": response_url,
                  "cancel_url": cancel_url, "submitted_at": utcnow(), "state": JobState.IN_QUEUE}
        try:
            saved = self.store.update(rec.id, owner=self.owner, **values)
        except sqlite3.IntegrityError:  # another job (here or in another process) holds it already
            return False
        if not saved:
            raise LostJob(run.id)
        for name, value in values.items():
            setattr(rec, name, value)
        run.tracker.notify()
        return True

    def persist(self, run: JobRun, *names: str) -> None:
        """Write these fields (and the job's noted ones) while this process still owns the job, then notify;
        ``LostJob`` otherwise."""
        if not self.store.save(run.record, self._with_noted(run, names), owner=self.owner):
            raise LostJob(run.id)
        run.tracker.notify()

    def note(self, run: JobRun, *names: str) -> None:
        """Progress: watchers now, the store with the job's next write or the next batch."""
        self._noted.setdefault(run.id, (run, set()))[1].update(names)
        run.tracker.notify()

    def _with_noted(self, run: JobRun, names: tuple[str, ...]) -> tuple[str, ...]:
        noted = self._noted.pop(run.id, None)
        return tuple(dict.fromkeys((*names, *noted[1]))) if noted else names

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.FLUSH_EVERY)
            self._flush()

    def _flush(self) -> None:
        """Store every noted change in one transaction; a job another process took meanwhile is let go."""
        items, self._noted = list(self._noted.values()), {}
        if not items:
            return
        try:
            lost = self.store.save_many([(run.record, names) for run, names in items], owner=self.owner)
        except Exception as exc:  # progress only: the next reading brings it back
            log.warning("could not store the progress of %d job(s): %s", len(items), exc)
            return
        for run, _ in items:
            if run.id in lost and self._runs.get(run.id) is run and not run.record.state.terminal:
                log.warning("job %s was taken over by another process; no longer following it", run.id)
                self._stop_task(run.id)
                self._lose(run.tracker)

    def begin_result_fetch(self, run: JobRun) -> bool:
        return self.store.begin_result_fetch(run.id, self.owner)

    # -- final states: decided here only ------------------------------------------------------------------
    def finish(self, run: JobRun, state: JobState, error: BaseException | None = None) -> None:
        """Record the final state, drop the lease and wake every waiter."""
        rec = run.record
        if rec.state.terminal:
            return
        rec.state, rec.finished_at, rec.queue_position = state, utcnow(), None
        rec.error = error_to_dict(error) if error is not None else None
        run.accepted.set()  # a cancel waiting for the POST's answer must not wait for ever
        self._noted.pop(rec.id, None)  # the final write carries every field progress touches
        if not self.store.save(rec, _FINAL_FIELDS, owner=self.owner, release=True):
            self._lose(run.tracker)  # ended or taken over elsewhere: the store's version wins
            return
        with self._lock:
            self._runs.pop(rec.id, None)
        log.debug("job %s %s", rec.id, state.value)
        run.tracker.settle()

    def _lose(self, tracker: Tracker) -> None:
        """Stop following the job here; re-read it, and keep watching it if someone waits."""
        with self._lock:
            self._runs.pop(tracker.id, None)
        self._refresh(tracker)
        if tracker.awaited:
            self._watch_tracker(tracker)

    # -- the host: what a Job asks of its manager -----------------------------------------------------------
    def follows(self, job_id: str) -> bool:
        return job_id in self._runs

    def on_runtime_thread(self) -> bool:
        return self._portal is not None and self._portal.in_loop_thread

    def refresh(self, job_id: str) -> None:
        """Re-read a job this process does not follow; settle it when the store says it ended."""
        tracker = self._trackers.get(job_id)
        if tracker is not None:
            self._refresh(tracker)

    def _refresh(self, tracker: Tracker) -> None:
        tracker.refreshed = time.monotonic()
        row = self.store.get(tracker.id)
        if row is None or tracker.id in self._runs:
            return
        changed = row.updated_at != tracker.record.updated_at
        tracker.replace(row)
        if row.state.terminal and not tracker.settled:
            tracker.settle()
        elif changed:
            tracker.notify()

    def watch(self, job_id: str) -> None:
        """Someone waits for a job followed by another process (or nobody): re-read it, take it over when
        its owner is gone."""
        tracker = self._trackers.get(job_id)
        if tracker is not None:
            self._watch_tracker(tracker)

    def _watch_tracker(self, tracker: Tracker) -> None:
        with self._lock:
            if tracker.id in self._runs or tracker.id in self._watched or tracker.settled:
                return
            self._watched.add(tracker.id)
        self.start()
        self.portal.submit(self._watch(tracker))

    async def _watch(self, tracker: Tracker) -> None:
        try:
            while not tracker.settled and not self._closed:
                self._refresh(tracker)
                if tracker.settled:
                    return
                claimed = self.store.claim(tracker.id, self.owner, self.LEASE)
                if claimed is not None:
                    tracker.replace(claimed)
                    self._follow(JobRun(tracker, resumed=True))
                    return
                await asyncio.sleep(self.WATCH_EVERY)
        finally:
            with self._lock:
                self._watched.discard(tracker.id)

    # -- jobs by id ------------------------------------------------------------------------------------------
    def _tracker_for(self, record: JobRecord) -> Tracker:
        """The one tracker for this id in this process (made from ``record`` if none is alive)."""
        with self._lock:
            tracker = self._trackers.get(record.id)
            if tracker is None:
                tracker = self._trackers[record.id] = Tracker(record)
            return tracker

    def _job_for(self, tracker: Tracker, warnings: list[str] | None = None) -> Job:
        """The one ``Job`` object for this id in this process."""
        with self._lock:
            job = self._known.get(tracker.id)
            if job is None:
                job = self._known[tracker.id] = Job(self, tracker, warnings)
            return job

    def get(self, ref: str) -> Job:
        """A job by local id, request id or unique prefix (``NotFoundError`` otherwise)."""
        self.start()
        record = self.store.find(ref)
        tracker = self._tracker_for(record)
        if not self.follows(tracker.id):
            self._refresh(tracker)
        return self._job_for(tracker)

    def jobs(self, *, model: str | None = None, state: JobState | str | Iterable | None = None,
             origin: str | None = None, all: bool = False, limit: int | None = None,  # noqa: A002
             label: str | None = None, min_rating: int | None = None, text: str | None = None) -> list[Job]:
        """Stored jobs, newest first: this origin's unless ``origin`` is given or ``all=True``; ``label``,
        ``min_rating`` and ``text`` (in the id, model, input, label or note) narrow them down."""
        self.start()
        if model is not None:
            from ..catalog import resolve

            try:
                model = resolve(model)
            except UnknownModelError:
                pass
        states = None if state is None else ([state] if isinstance(state, (str, JobState)) else state)
        if states is not None:
            try:
                states = [JobState(s) for s in states]
            except (TypeError, ValueError):
                raise UsageError(f"unknown job state {state!r}; choose from {', '.join(JobState)}") from None
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise UsageError(f"limit must be a whole number of jobs, not {limit!r}")
        rows = self.store.list(origin=None if all else (origin or self.origin), endpoint=model,
                               states=states, limit=limit, label=label, min_rating=min_rating, text=text)
        return [self._job_for(self._adopt_row(row)) for row in rows]

    # -- judging, lineage, re-running (the Host side of Job.rate / parents / rerun) ---------------------------
    def annotate(self, job_id: str, **values: Any) -> None:
        """Keep the user's rating / label / note of a job in the store and in the record this process holds."""
        if not self.store.update(job_id, **values):
            raise NotFoundError(f"no job {job_id!r} in {self.store.path}")
        with self._lock:
            tracker = self._trackers.get(job_id)
        if tracker is not None:
            for name, value in values.items():
                setattr(tracker.record, name, value)
            tracker.notify()

    def related(self, job_id: str, up: bool) -> list[tuple[Job, str]]:
        """``(job, kind)``: the jobs whose results this one used (``up``), or those that used its results."""
        links = self.store.parents(job_id) if up else self.store.children(job_id)
        return [(self.get(other), kind) for other, kind in links]

    def rerun(self, job_id: str, changes: Mapping[str, Any], **options: Any) -> Job:
        """The same model, input and seed again, plus ``changes``; a warning when the model's schema changed."""
        old = self.store.find(job_id)
        arguments = {**self.store.restore_inputs(old.arguments)}
        seed = _vary.seed_of(old)
        if seed is not None:
            arguments["seed"] = seed
        arguments.update(changes)
        options.setdefault("validate", old.options.get("validate", True))
        options.setdefault("tags", old.tags)
        job = self.submit(old.endpoint, arguments, lineage=[(old.id, "rerun")], **options)
        before, now = old.options.get("schema"), job._record.options.get("schema")
        if before and now and before != now:
            warning = (f"the input schema of {old.endpoint} changed since job {old.id} was made: the same "
                       "arguments may now mean something else")
            log.warning("%s", warning)
            job.warnings.append(warning)
        return job

    def _adopt_row(self, row: JobRecord) -> Tracker:
        tracker = self._tracker_for(row)
        if not self.follows(row.id):
            tracker.replace(row)
        return tracker

    def unfinished(self) -> list[Job]:
        """Unfinished jobs of this origin (followed here or elsewhere)."""
        return self.jobs(state=UNFINISHED)

    # -- cancelling --------------------------------------------------------------------------------------
    def cancel(self, job: Job, timeout: float | None = CANCEL_TIMEOUT) -> str:
        """Ask fal to cancel ``job``; see :meth:`Job.cancel`."""
        return self.cancel_job(job.id, timeout)

    def retry_downloads(self, job_ids: Iterable[str] | None = None, timeout: float | None = None) -> int:
        """Try again the outputs a COMPLETED job could not write (disk full, read-only folder), for these jobs
        (default: this origin's); returns how many are still pending. fal's result was kept, so only the media
        are fetched again."""
        if job_ids is None:
            rows = self.store.with_pending_downloads(self.origin)
        else:
            rows = [r for r in (self.store.get(i) for i in job_ids) if r is not None]
        still = 0
        for rec in rows:
            if rec.state is not JobState.COMPLETED or not rec.options.get(_steps.DOWNLOADS_PENDING):
                continue
            self.start()
            files, pending = self.portal.call(_steps.fetch_media(self, rec), timeout=timeout)
            rec.files = files
            _steps.note_pending(rec, pending)
            self.store.update(rec.id, files=rec.files, options=rec.options, logs=rec.logs)
            still += pending
            tracker = self._trackers.get(rec.id)
            if tracker is not None:
                tracker.replace(self.store.get(rec.id) or rec)
                tracker.notify()
        return still

    def resubmit_job(self, job_id: str) -> None:
        """Send again a job fal did not receive (see :meth:`Job.resubmit`)."""
        self.start()
        rec = self.store.find(job_id)
        if rec.state is not JobState.NOT_RECEIVED:
            raise UsageError(f"job {rec.id} is {rec.state.value}: only a job that fal did not receive (NOT_RECEIVED) "
                             "is sent again; a request fal may have is never sent twice")
        options = {**rec.options, CLEARED: rec.submit_attempts}
        if not self.store.reopen(rec.id, JobState.NOT_RECEIVED, state=JobState.SUBMITTING, error=None,
                                 finished_at=None, options=options):
            raise UsageError(f"job {rec.id} changed meanwhile (another process resubmitted it?)")
        claimed = self.store.claim(rec.id, self.owner, self.LEASE)
        tracker = self._tracker_for(claimed or rec)
        if claimed is None:  # another process took it at once: it follows it
            return
        tracker.reopen(claimed)
        self._follow(JobRun(tracker))

    def cancel_job(self, job_id: str, timeout: float | None = CANCEL_TIMEOUT) -> str:
        """Cancel by local id (the job's own ``cancel()`` comes here)."""
        tracker = self._trackers.get(job_id)
        if tracker is None:
            tracker = self._tracker_for(self.store.find(job_id))
        run = self._runs.get(job_id)
        if run is None:
            self._refresh(tracker)
        if tracker.record.state.terminal:
            return tracker.record.state.value
        self.start()
        coro = self._cancel_live(run) if run is not None else self._cancel_elsewhere(tracker)
        if self.portal.in_loop_thread:  # from a change callback: cannot block here
            asyncio.ensure_future(coro)
            return "CANCELLATION_REQUESTED"
        return self.portal.call(coro, timeout=timeout)

    def _cancel_unsent(self, run: JobRun) -> str:
        self._stop_task(run.id)
        self.finish(run, JobState.CANCELLED, _cancel.cancelled_error(run.record))
        return "CANCELLED"

    async def _cancel_live(self, run: JobRun) -> str:
        """A job this process follows: a POST in flight is awaited first, then cancelled at fal."""
        if _cancel.unsent(run):
            return self._cancel_unsent(run)
        answer = await _cancel.ask_fal(self, run)
        if answer is None and run.record.state is JobState.UNKNOWN:  # cancelled once fal's history settles it
            run.cancel_wanted = True
            return "CANCELLATION_REQUESTED"
        if answer is None:
            return run.record.state.value
        if answer in _cancel.CONFIRMED and not run.record.state.terminal:
            self._stop_task(run.id)
            self.finish(run, JobState.CANCELLED, _cancel.cancelled_error(run.record))
        return answer

    async def _cancel_elsewhere(self, tracker: Tracker) -> str:
        """A job this process does not follow: the PUT, then the row (unless it ended meanwhile)."""
        self._refresh(tracker)
        rec = tracker.record
        if rec.state.terminal:
            return rec.state.value
        if rec.request_id is None:  # never sent: only its holder may decide; take it if nobody holds it
            claimed = self.store.claim(rec.id, self.owner, self.LEASE)
            if claimed is None:
                raise FalError(f"job {rec.id} is being submitted by another process; cancel it again shortly")
            tracker.replace(claimed)
            run = JobRun(tracker)
            with self._lock:
                self._runs[rec.id] = run
            return self._cancel_unsent(run)
        answer = await self.client.cancel(handle_of(rec))
        if answer in _cancel.CONFIRMED:
            self.store.update(rec.id, unfinished=True, state=JobState.CANCELLED, error=error_to_dict(
                _cancel.cancelled_error(rec)), finished_at=utcnow(), queue_position=None)
            self._refresh(tracker)
        return answer
