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
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings, load_settings
from ..errors import FalError, UnknownModelError
from ..store.db import UNFINISHED, JobRecord, JobState, JobStore, new_job_id, new_owner, utcnow
from ..store.legacy import import_legacy
from . import cancel as _cancel
from . import steps as _follow
from .job import CANCEL_TIMEOUT, Job, error_to_dict

if TYPE_CHECKING:
    from .._portal import Portal
    from ..client.queue import AsyncQueueClient

__all__ = ["JobManager", "default_origin"]

log = logging.getLogger("fal_notebook")
_FINAL_FIELDS = ("state", "finished_at", "queue_position", "error", "files", "logs")
SCHEMA_TIMEOUT = 60.0  # fetching an unknown model's OpenAPI document before a submit (retries included)


def default_origin(env: Mapping[str, str] | None = None) -> str:
    """The notebook's path (``JPY_SESSION_NAME``, set by jupyter_server) or ``"script"``."""
    env = os.environ if env is None else env
    return env.get("JPY_SESSION_NAME") or "script"


class JobManager:
    """Submits, follows, resumes and cancels jobs for one process (tests make isolated ones).

        manager = JobManager(settings, store=JobStore(tmp / "jobs.sqlite3"), origin="cli")
        job = manager.submit("fal-ai/nano-banana-pro", {"prompt": "a fox"})

    ``legacy_file``: the original skill's ``fal-pending.json`` to import once (``None``: from the
    environment; ``False``: none). ``auto_resume``: on start, resume this origin's unfinished jobs.
    """

    LEASE = 60.0  # seconds a claim lasts without renewal
    RENEW_EVERY = 15.0
    WATCH_EVERY = 1.0  # how often a job followed by another process is re-read while someone waits

    def __init__(self, settings: Settings | None = None, *, store: JobStore | None = None,
                 origin: str | None = None, portal: Portal | None = None, client: AsyncQueueClient | None = None,
                 legacy_file: Path | None | bool = None, auto_resume: bool = True, max_submits: int = 4,
                 max_downloads: int = 4, max_streams: int = 16) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.store = store if store is not None else JobStore(self.settings.store_path)
        self.origin = origin or default_origin()
        self.outputs = Path(self.settings.outputs).expanduser().resolve()
        self.owner = new_owner()
        self._portal, self._client = portal, client
        self._legacy_file, self._auto_resume = legacy_file, auto_resume
        self.submit_slots = asyncio.Semaphore(max_submits)
        self.download_slots = asyncio.Semaphore(max_downloads)
        self.sse_slots = asyncio.Semaphore(max_streams)
        self._lock = threading.RLock()
        self._live: dict[str, Job] = {}  # jobs this process follows
        self._known: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        self._tasks: dict[str, asyncio.Task] = {}  # runtime thread only
        self._watched: set[str] = set()
        self._resumed: set[str] = set()  # ids this manager took over from an earlier process
        self._started = self._closed = False
        self._renewer: Any = None

    def __repr__(self) -> str:
        return f"<JobManager origin={self.origin!r} store={self.store.path} live={len(self._live)}>"

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

            self._client = AsyncQueueClient(self.settings)
        return self._client

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
            atexit.register(self.close)
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
        self.store.release(self.owner)

    async def _shutdown(self, grace: float) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        posting = [t for i, t in self._tasks.items() if self._live.get(i) and self._live[i]._phase == "posting"]
        if posting:
            await asyncio.wait(posting, timeout=grace)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.aclose()

    # -- submitting --------------------------------------------------------------------------------------
    def submit(self, model: str, arguments: Mapping[str, Any] | None = None, *, validate: bool = True,
               tags: Iterable[str] = (), priority: str | None = None, webhook_url: str | None = None,
               start_timeout: float | None = None, hint: str | None = None, **fields: Any) -> Job:
        """Check the input, store the job, and hand it to the runtime. Returns at once.

        Raises ``ValidationError`` / ``UnknownModelError`` before anything is stored or sent.
        """
        arguments = {**(arguments or {}), **fields}
        endpoint, arguments, uploads, warnings = self._check(model, arguments, validate)
        arguments, uploads = self.store.keep_uploads(arguments, uploads)
        self.start()
        options = {"validate": validate, "priority": priority, "webhook_url": webhook_url,
                   "start_timeout": start_timeout, "hint": hint}
        record = JobRecord(id=new_job_id(), endpoint=endpoint, arguments=arguments, origin=self.origin,
                           tags=list(tags), options={k: v for k, v in options.items() if v is not None},
                           owner=self.owner, lease_until=time.time() + self.LEASE)
        self.store.insert(record)
        job = Job(self, record)
        job._uploads, job.warnings = uploads, warnings
        self._follow(job)
        return job

    def _check(self, model: str, arguments: dict, validate: bool) -> tuple[str, dict, list, list[str]]:
        if not validate:
            from ..catalog import resolve

            try:
                return resolve(model), arguments, [], []
            except UnknownModelError:
                return model, arguments, [], []
        from ..catalog.validate import validate as check

        checked = check(model, arguments, fetch=self._fetch_schema, cache_dir=self.settings.schema_cache)
        for warning in checked.warnings:
            log.warning("%s: %s", checked.spec.id, warning)
        return checked.spec.id, checked.arguments, list(checked.uploads), list(checked.warnings)

    def _fetch_schema(self, endpoint_id: str) -> dict:
        return self.portal.call(self.client.fetch_openapi(endpoint_id), timeout=SCHEMA_TIMEOUT)

    # -- following ---------------------------------------------------------------------------------------
    def _fallback_urls(self, endpoint: str, request_id: str) -> tuple[str, str, str]:
        from ..client.wire import RequestHandle

        handle = RequestHandle.fallback(endpoint, request_id, self.settings.endpoints.queue)
        return handle.status_url, handle.response_url, handle.cancel_url

    def _follow(self, job: Job) -> None:
        """Register a claimed job as live and start its drive task on the loop."""
        rec = job._record
        if rec.request_id and not rec.status_url:
            rec.status_url, rec.response_url, rec.cancel_url = self._fallback_urls(rec.endpoint, rec.request_id)
        with self._lock:
            self._live[rec.id] = job
            self._known[rec.id] = job
        self.portal.submit(self._run(job))

    async def _run(self, job: Job) -> None:
        if job._record.state.terminal:  # cancelled before its task ever ran
            return
        self._tasks[job.id] = asyncio.current_task()
        try:
            await _follow.drive(self, job)
        finally:
            self._tasks.pop(job.id, None)

    def resume(self, all: bool = False) -> list[Job]:  # noqa: A002 - the public name is `all`
        """Claim and follow unfinished jobs of this origin (every origin with ``all=True``)."""
        self.start()
        resumed = []
        for row in self.store.unfinished(None if all else self.origin):
            if row.id in self._live:
                if row.id in self._resumed:  # taken over when this manager started
                    resumed.append(self._live[row.id])
                continue
            claimed = self.store.claim(row.id, self.owner, self.LEASE)
            if claimed is None:
                continue
            if claimed.request_id is None:
                log.warning("job %s never got a request id (its process stopped while submitting); "
                            "submitting it again", claimed.id)
            job = self._job_for(claimed)
            job._record = claimed
            self._resumed.add(job.id)
            self._follow(job)
            resumed.append(job)
        if resumed:
            log.info("resumed %d unfinished job(s)", len(resumed))
        return resumed

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.RENEW_EVERY)
            ids = list(self._live)
            held = self.store.renew(self.owner, ids, self.LEASE)
            for job_id in set(ids) - held:
                job = self._live.get(job_id)
                task = self._tasks.get(job_id)
                if job is not None and not job._record.state.terminal:
                    log.warning("job %s was taken over by another process; no longer following it", job_id)
                    if task is not None:
                        task.cancel()
                    self.lost(job)

    # -- called on the runtime thread by the steps --------------------------------------------------------
    def persist(self, job: Job, *names: str) -> None:
        """Write these fields while this process still owns the job, then notify; ``LostJob`` otherwise."""
        if not self.store.save(job._record, names, owner=self.owner):
            raise _follow.LostJob(job.id)
        job._notify()

    def finish(self, job: Job, state: JobState, error: BaseException | None = None) -> None:
        """Record the final state, drop the lease and wake every waiter."""
        rec = job._record
        if rec.state.terminal:
            return
        rec.state, rec.finished_at, rec.queue_position = state, utcnow(), None
        rec.error = error_to_dict(error) if error is not None else None
        job.accepted.set()  # a cancel waiting for the POST's answer must not wait for ever
        if not self.store.save(rec, _FINAL_FIELDS, owner=self.owner, release=True):
            self.lost(job)  # ended or taken over elsewhere: the store's version wins
            return
        with self._lock:
            self._live.pop(rec.id, None)
        log.debug("job %s %s", rec.id, state.value)
        job._settle()

    def lost(self, job: Job) -> None:
        """Stop following ``job`` here; re-read it, and keep watching it if someone waits."""
        with self._lock:
            self._live.pop(job.id, None)
        self.refresh(job)
        if job._waiters:
            self.watch(job)

    # -- jobs followed elsewhere ---------------------------------------------------------------------------
    def refresh(self, job: Job) -> None:
        """Re-read a job this process does not follow; settle it when the store says it ended."""
        job._refreshed = time.monotonic()
        row = self.store.get(job.id)
        if row is None or job._live:
            return
        changed = row.updated_at != job._record.updated_at
        job._record = row
        if row.state.terminal and not job._done.is_set():
            job._settle()
        elif changed:
            job._notify()

    def watch(self, job: Job) -> None:
        """Someone waits for a job followed by another process (or nobody): re-read it, take it over when
        its owner is gone."""
        with self._lock:
            if job._live or job.id in self._watched or job._done.is_set():
                return
            self._watched.add(job.id)
        self.start()
        self.portal.submit(self._watch(job))

    async def _watch(self, job: Job) -> None:
        try:
            while not job._done.is_set() and not self._closed:
                self.refresh(job)
                if job._done.is_set():
                    return
                claimed = self.store.claim(job.id, self.owner, self.LEASE)
                if claimed is not None:
                    job._record = claimed
                    self._follow(job)
                    return
                await asyncio.sleep(self.WATCH_EVERY)
        finally:
            with self._lock:
                self._watched.discard(job.id)

    def _job_for(self, record: JobRecord) -> Job:
        """The one ``Job`` object for this id in this process."""
        with self._lock:
            job = self._known.get(record.id)
            if job is None:
                job = Job(self, record)
                self._known[record.id] = job
            return job

    def get(self, ref: str) -> Job:
        """A job by local id, request id or unique prefix (``NotFoundError`` otherwise)."""
        self.start()
        record = self.store.find(ref)
        job = self._job_for(record)
        if not job._live:
            self.refresh(job)
        return job

    def jobs(self, *, model: str | None = None, state: JobState | str | Iterable | None = None,
             origin: str | None = None, all: bool = False, limit: int | None = None) -> list[Job]:  # noqa: A002
        """Stored jobs, newest first: this origin's unless ``origin`` is given or ``all=True``."""
        self.start()
        if model is not None:
            from ..catalog import resolve

            try:
                model = resolve(model)
            except UnknownModelError:
                pass
        states = None if state is None else ([state] if isinstance(state, (str, JobState)) else list(state))
        rows = self.store.list(origin=None if all else (origin or self.origin), endpoint=model,
                               states=states, limit=limit)
        return [self._live.get(row.id) or self._adopt_row(row) for row in rows]

    def _adopt_row(self, row: JobRecord) -> Job:
        job = self._job_for(row)
        if not job._live:
            job._record = row
            job._refreshed = time.monotonic()
        return job

    def unfinished(self) -> list[Job]:
        """Unfinished jobs of this origin (followed here or elsewhere)."""
        return self.jobs(state=UNFINISHED)

    # -- cancelling --------------------------------------------------------------------------------------
    def cancel(self, job: Job, timeout: float | None = CANCEL_TIMEOUT) -> str:
        """Ask fal to cancel ``job``; see :meth:`Job.cancel`."""
        if job.done:
            return job.state.value
        self.start()
        coro = _cancel.cancel_live(self, job) if job._live else _cancel.cancel_elsewhere(self, job)
        if self.portal.in_loop_thread:  # from a change callback: cannot block here
            asyncio.ensure_future(coro)
            return "CANCELLATION_REQUESTED"
        return self.portal.call(coro, timeout=timeout)
