"""``Job`` and ``JobGroup``: what users hold. A job reads its tracker's record (the manager keeps it current;
the store is the copy) and asks its manager, through the small :class:`~.tracker.Host` protocol, for the rest.

A job knows nothing about IPython: the presentation layer registers its own display for ``Job``. Callbacks
given to :meth:`Job.on_change` run on the runtime thread and carry no data (re-read the job); an exception in
one is logged, never raised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog.pricing import combine_estimates, cost_of
from ..errors import FalError, FalTimeoutError, JobCancelledError, UsageError
from ..media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ..store.records import JobRecord, JobState, utcnow
from . import variations as _vary
from .outcome import error_from_dict, error_to_dict
from .steps import DOWNLOADS_PENDING
from .tracker import Host, Tracker

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Job", "JobGroup", "JobSnapshot", "error_to_dict", "error_from_dict", "block_until", "completed_batches", "waiters",
           "wait_all", "as_completed"]

log = logging.getLogger("fal_notebook")
_SLICE = 0.1  # blocking waits wake this often, so Ctrl-C / a kernel interrupt lands promptly
_REFRESH_EVERY = 0.25
CANCEL_TIMEOUT = 10.0  # how long a cancel may wait for fal's answer (and for a submit in flight)


def completed_batches(futures: Iterable[concurrent.futures.Future], timeout: float | None,
                      what: str) -> Iterator[set[concurrent.futures.Future]]:
    """Yield the futures that completed since the last batch, waiting in short slices (KeyboardInterrupt
    arrives promptly); ``FalTimeoutError`` once ``timeout`` s have passed with some still pending."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or math.isnan(timeout)):
        raise UsageError(f"timeout must be a number of seconds or None, not {timeout!r}")
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    pending = set(futures)
    while pending:
        step = _SLICE if deadline is None else max(0.0, min(_SLICE, deadline - time.monotonic()))
        # those already done form one batch; the rest are waited for together for one slice. Not a wait per
        # completion: each wait registers with every pending future, which for 1,000 jobs ending one by one
        # was a million lock round trips on the caller's thread
        done = {future for future in pending if future.done()}
        if done:
            pending -= done
            yield done
        elif step > 0:
            ending = concurrent.futures.as_completed(pending, timeout=step)
            try:
                for future in ending:
                    pending.discard(future)
                    yield {future}
            except concurrent.futures.TimeoutError:
                pass
            finally:
                ending.close()
        if pending and deadline is not None and time.monotonic() >= deadline:
            raise FalTimeoutError(f"{what} did not finish within {timeout:g} s (it keeps running; "
                                  "cancel it or wait again)", timeout=timeout)


def block_until(futures: Iterable[concurrent.futures.Future], timeout: float | None, what: str) -> None:
    """Wait for every future; ``FalTimeoutError`` after ``timeout`` s."""
    for _batch in completed_batches(futures, timeout, what):
        pass


def waiters(jobs: Iterable[Job]) -> dict[concurrent.futures.Future, Job]:
    """A fresh future per job, completed when it ends (for :func:`completed_batches`); asking follows jobs
    nobody follows."""
    return {job._waiter(): job for job in jobs}


def wait_all(jobs: Iterable[Job], timeout: float | None, what: str) -> None:
    """Block until every job ended; ``FalTimeoutError`` after ``timeout`` s (the jobs keep running)."""
    block_until(waiters(job for job in jobs if not job.done), timeout, what)


def as_completed(jobs: Iterable[Job], timeout: float | None = None) -> Iterator[Job]:
    """Yield each job once it has ended (those ended together in the given order), following them meanwhile.

    ``FalTimeoutError`` after ``timeout`` s; the jobs keep running.
    """
    jobs = list(jobs)
    order = {id(job): n for n, job in enumerate(jobs)}
    pending = waiters(jobs)
    for batch in completed_batches(pending, timeout, f"{len(jobs)} job(s)"):
        yield from sorted((pending[future] for future in batch), key=lambda job: order[id(job)])


@dataclass(frozen=True)
class JobSnapshot:
    """A job read once: plain values that do not change, so a card drawn from it is consistent (never
    COMPLETED without its files) and drawing it never reaches back into the runtime or the store."""

    id: str
    request_id: str | None
    model: str
    arguments: dict
    state: JobState
    queue_position: int | None
    logs: tuple[str, ...]
    files: tuple[Path, ...]
    elapsed: float
    inference_time: float | None
    error: FalError | None
    tags: tuple[str, ...]
    origin: str
    created_at: datetime
    finished_at: datetime | None
    output: dict | None = field(default=None, repr=False)
    estimate: dict | None = None  # the price before paying (see Job.estimate)
    cost: float | None = None  # what it cost once ended (see Job.cost)
    seed: int | None = None  # the seed the job used (see Job.seed)
    rating: int | None = None
    label_text: str | None = None
    note_text: str | None = None

    @property
    def done(self) -> bool:
        return self.state.terminal

    def result(self, timeout: float | None = None) -> dict:
        """fal's output as read (``timeout`` is accepted and ignored: nothing is waited for); the job's error
        when it did not complete."""
        if self.state is JobState.COMPLETED:
            return self.output or {}
        if not self.state.terminal:
            raise FalError(f"job {self.id} is still {self.state.value}")
        raise self.error or JobCancelledError(f"job {self.id} was cancelled", request_id=self.request_id)


class Job:
    """One request to a fal model: ``state``, ``result()``, ``files``, ``images``, ``cancel()``, ``await job``.

    ``wait()`` returns the job whatever its outcome; ``result()``, ``await job`` and ``run()`` raise the job's
    typed error (``JobFailedError``, ``ResultExpiredError``, ``JobCancelledError``) when it did not complete.
    """

    def __init__(self, host: Host, tracker: Tracker, warnings: list[str] | None = None) -> None:
        self._host = host
        self._tracker = tracker
        self._images: tuple[tuple[str, ...], list] | None = None
        self._error: tuple[int, FalError] | None = None
        self.warnings: list[str] = list(warnings or [])

    # -- reading -----------------------------------------------------------------------------------------
    @property
    def _record(self) -> JobRecord:
        return self._tracker.record

    @property
    def _live(self) -> bool:
        """Followed by this process's runtime (else read from the store)."""
        return self._host.follows(self._tracker.id)

    @property
    def _rec(self) -> JobRecord:
        """The record; one followed elsewhere is re-read from the store (at most every 0.25 s)."""
        tracker = self._tracker
        if (not tracker.settled and time.monotonic() - tracker.refreshed > _REFRESH_EVERY
                and not self._host.follows(tracker.id)):
            self._host.refresh(tracker.id)
        return tracker.record

    id = property(lambda self: self._record.id, doc="Local id (12 hex digits; a unique prefix resolves).")
    request_id = property(lambda self: self._rec.request_id, doc="fal's request id; None until accepted.")
    model = property(lambda self: self._record.endpoint, doc="The full endpoint id.")
    arguments = property(lambda self: self._record.arguments, doc="The input as stored (data URIs by ref).")
    state = property(lambda self: self._rec.state, doc="The :class:`JobState`.")
    status = state
    queue_position = property(lambda self: self._rec.queue_position)
    logs = property(lambda self: list(self._rec.logs), doc="The newest log lines (strings).")
    created_at = property(lambda self: self._record.created_at, doc="When the job was stored (UTC).")
    submitted_at = property(lambda self: self._rec.submitted_at, doc="When fal accepted it (UTC).")
    started_at = property(lambda self: self._rec.started_at, doc="When a runner took it (UTC).")
    updated_at = property(lambda self: self._rec.updated_at, doc="The record's last change (UTC).")
    finished_at = property(lambda self: self._rec.finished_at)
    inference_time = property(lambda self: self._rec.inference_time, doc="fal's metric, seconds.")
    tags = property(lambda self: list(self._record.tags))
    origin = property(lambda self: self._record.origin)
    done = property(lambda self: self._rec.state.terminal, doc="True once the job reached a final state.")

    def snapshot(self) -> JobSnapshot:
        """Everything a view shows, read at once (at most one store read for a job followed elsewhere)."""
        rec = self._rec
        end = rec.finished_at or utcnow()
        return JobSnapshot(
            id=rec.id, request_id=rec.request_id, model=rec.endpoint, arguments=rec.arguments, state=rec.state,
            queue_position=rec.queue_position, logs=tuple(rec.logs), files=tuple(Path(p) for p in rec.files),
            elapsed=max(0.0, (end - rec.created_at).total_seconds()), inference_time=rec.inference_time,
            error=self.error, tags=tuple(rec.tags), origin=rec.origin, created_at=rec.created_at,
            finished_at=rec.finished_at, output=rec.result if rec.state is JobState.COMPLETED else None,
            estimate=dict(rec.estimate) if rec.estimate else None,
            cost=cost_of(rec.estimate, rec.state.value, rec.result),
            seed=_vary.seed_of(rec), rating=rec.rating, label_text=rec.label, note_text=rec.note)

    @property
    def estimate(self) -> dict[str, Any] | None:
        """The price before paying: ``{"model", "unit_price", "unit", "quantity", "total", "currency"}``, or
        ``None`` when fal's price for the model was not known at submit."""
        return dict(self._record.estimate) if self._record.estimate else None

    @property
    def cost(self) -> float | None:
        """What the job cost once it ended (fal bills only successful outputs: 0 for a failure or a cancel);
        ``None`` while it runs or without a price."""
        rec = self._rec
        return cost_of(rec.estimate, rec.state.value, rec.result)

    rating = property(lambda self: self._rec.rating, doc="The user's rating, 1..5 (None until rated).")
    label_text = property(lambda self: self._rec.label, doc="The user's label (see :meth:`label`).")
    note_text = property(lambda self: self._rec.note, doc="The user's note (see :meth:`note`).")

    @property
    def seed(self) -> int | None:
        """The seed the job really used: fal's answer when the model returns one, else the seed sent (the
        client picks one when the model takes a seed and none was given)."""
        return _vary.seed_of(self._rec)

    @property
    def urls(self) -> dict[str, str | None]:
        """fal's ``status_url``, ``response_url`` and ``cancel_url`` for this request (``None`` until accepted):
        enough to reach it with any client, the official SDK or curl."""
        rec = self._rec
        return {"status_url": rec.status_url, "response_url": rec.response_url, "cancel_url": rec.cancel_url}

    @property
    def elapsed(self) -> float:
        """Seconds from creation to the end (or to now while running)."""
        end = self._rec.finished_at or utcnow()
        return max(0.0, (end - self._record.created_at).total_seconds())

    @property
    def error(self) -> FalError | None:
        data = self._rec.error
        if data is None:
            return None
        cached = self._error
        if cached is None or cached[0] != id(data):
            cached = (id(data), error_from_dict(data))
            self._error = cached
        return cached[1]

    @property
    def files(self) -> list[Path]:
        """Local copies of the outputs (in ``$FAL_NOTEBOOK_OUTPUTS``), in fal's order."""
        return [Path(p) for p in self._rec.files]

    @property
    def images(self) -> list[Image.Image]:
        """The output images as PIL images, loaded from the local files on first use."""
        paths = tuple(str(p) for p in self.files if p.suffix.lower() in IMAGE_SUFFIXES)
        if self._images is None or self._images[0] != paths:
            from PIL import Image

            loaded = []
            for path in paths:
                with Image.open(path) as image:
                    image.load()
                    loaded.append(image.copy())
            self._images = (paths, loaded)
        return list(self._images[1])

    @property
    def video(self) -> Path | None:
        return next((p for p in self.files if p.suffix.lower() in VIDEO_SUFFIXES), None)

    # -- waiting -----------------------------------------------------------------------------------------
    def _waiter(self) -> concurrent.futures.Future:
        """A fresh future completed when the job ends (one per waiter: cancelling it touches nobody else);
        asking for it makes sure someone follows the job."""
        future = self._tracker.waiter()
        if not future.done():
            self._host.watch(self._tracker.id)
        return future

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job ends; ``FalTimeoutError`` after ``timeout`` s. Never raises the job's error.
        Outputs a full disk or an unusable folder refused earlier are fetched again (fal's result was kept)."""
        self._block(timeout)
        if self._rec.options.get(DOWNLOADS_PENDING) and timeout != 0:
            try:
                self._host.retry_downloads([self.id], timeout)
            except FalError as exc:
                log.warning("job %s: outputs still pending (%s)", self.id, exc)
        return self

    def _block(self, timeout: float | None) -> None:
        if not self.done:
            if self._host.on_runtime_thread():
                raise FalError("Job.wait() on the runtime thread would stall every job; use on_change() instead")
            block_until([self._waiter()], timeout, f"job {self.id}")

    def raise_for_state(self) -> None:
        """Raise the job's typed error unless it COMPLETED."""
        state = self._rec.state
        if state is JobState.COMPLETED:
            return
        if not state.terminal:
            raise FalError(f"job {self.id} is still {state.value}")
        raise self.error or JobCancelledError(f"job {self.id} was cancelled", request_id=self.request_id)

    def result(self, timeout: float | None = None) -> dict:
        """fal's output, once the job completed; raises its typed error, or ``FalTimeoutError``."""
        self._block(timeout)
        self.raise_for_state()
        return self._record.result or {}

    async def _wait_async(self) -> Job:
        if not self.done:
            await asyncio.wrap_future(self._waiter())
        self.raise_for_state()
        return self

    def __await__(self):
        """``await job`` waits without blocking the kernel's loop; raises the typed error like ``result()``."""
        return self._wait_async().__await__()

    def cancel(self, timeout: float | None = CANCEL_TIMEOUT) -> str:
        """Ask fal to cancel. Returns fal's answer (``CANCELLATION_REQUESTED`` / ``ALREADY_COMPLETED``) or
        the final state when the job had already ended."""
        return self._host.cancel_job(self.id, timeout)

    def resubmit(self) -> Job:
        """Send again a job that fal did not receive (state ``NOT_RECEIVED``: its submit's reply was lost and
        fal's request history shows no such request). Any other state raises ``UsageError``: a request fal
        may have is never sent twice. Returns the job, followed again."""
        self._host.resubmit_job(self.id)
        return self

    # -- iterating ----------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """What made this job: ``model``, every input field and the seed it used (exported with its files)."""
        return _vary.settings_of(self._rec)

    def diff(self, other: Job) -> dict[str, tuple[Any, Any]]:
        """``{field: (mine, theirs)}`` for the settings that differ (model, inputs, seed): two variations of
        one request differ only in ``seed``."""
        return _vary.diff(self.settings(), other.settings())

    def rerun(self, *, tags: Iterable[str] | None = None, validate: bool | None = None, confirm: bool = False,
              **changes: Any) -> Job:
        """Submit this job again: same model, same input, the seed it used, plus ``changes``. Logs a warning
        (and adds it to the new job's ``warnings``) when the model's input schema changed since. ``confirm``:
        send even when the estimate exceeds ``max_cost``."""
        options = {k: v for k, v in (("tags", tags), ("validate", validate)) if v is not None}
        options["confirm"] = confirm
        return self._host.rerun(self.id, changes, **options)

    def rate(self, stars: int) -> Job:
        """Rate the result 1..5 (kept in the job store; ``jobs(min_rating=4)`` finds it again)."""
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
            raise UsageError(f"a rating is a whole number from 1 to 5, got {stars!r}")
        self._host.annotate(self.id, rating=stars)
        return self

    def label(self, text: str | None) -> Job:
        """Label the job (``jobs(label=…)``, ``%fal export --label``); ``None`` removes the label."""
        self._host.annotate(self.id, label=_short_text(text, "label", 200))
        return self

    def note(self, text: str | None) -> Job:
        """Keep a note with the job (found by ``jobs(text=…)``); ``None`` removes it."""
        self._host.annotate(self.id, note=_short_text(text, "note", 10_000))
        return self

    @property
    def parents(self) -> list[Job]:
        """The jobs whose results this job used as inputs (or that it re-ran)."""
        return [job for job, _kind in self._host.related(self.id, True)]

    @property
    def children(self) -> list[Job]:
        """The jobs that used this job's results as inputs (or re-ran it)."""
        return [job for job, _kind in self._host.related(self.id, False)]

    def links(self, up: bool) -> list[tuple[Job, str]]:
        """``(job, kind)`` pairs, kind ``"input"`` or ``"rerun"``: parents when ``up``, else children."""
        return self._host.related(self.id, up)

    def code(self) -> str:
        """The Python call that makes this job again (its seed included; inline files by their kept path)."""
        arguments = _vary.plain_inputs(self._record.arguments)
        seed = self.seed
        if seed is not None:
            arguments["seed"] = seed
        return _vary.python_call(self.model, arguments)

    # -- change notification (runtime thread) -------------------------------------------------------------
    def on_change(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call ``callback()`` after every change; returns a function that unsubscribes it."""
        return self._tracker.subscribe(callback)

    @property
    def _callbacks(self) -> list[Callable[[], Any]]:
        return self._tracker.callbacks

    def _notify(self) -> None:
        self._tracker.notify()

    # -- display -----------------------------------------------------------------------------------------
    def _summary(self) -> str:
        rec = self._record
        if rec.state is JobState.IN_QUEUE and rec.queue_position is not None:
            return f"queue {rec.queue_position}"
        if not rec.files:
            return ""
        videos = sum(1 for p in rec.files if Path(p).suffix.lower() in VIDEO_SUFFIXES)
        images = len(rec.files) - videos
        parts = [f"{images} image{'s' * (images != 1)}"] if images else []
        parts += [f"{videos} video{'s' * (videos != 1)}"] if videos else []
        return " ".join(parts)

    def __repr__(self) -> str:
        rec = self._record
        model = rec.endpoint.split("/", 1)[1] if rec.endpoint.startswith("fal-ai/") else rec.endpoint
        parts = [rec.id[:6], model, rec.state.value, self._summary(), f"{self.elapsed:.1f}s"]
        return "<Job " + " ".join(p for p in parts if p) + ">"


def _short_text(text: str | None, what: str, limit: int) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise UsageError(f"a {what} is text, got {type(text).__name__}")
    text = text.strip()
    if len(text) > limit:
        raise UsageError(f"a {what} is at most {limit} characters, got {len(text)}")
    return text or None


class JobGroup(list):
    """Jobs submitted together (``--n`` / ``--sweep``): wait, cancel and collect images as one.

    ``axes`` names the fields that vary across the group, in order (rows, columns, then pages): the group
    is drawn as one strip or labelled grid in that order."""

    def __init__(self, jobs: Iterable[Job] = (), axes: Iterable[str] = ()) -> None:
        super().__init__(jobs)
        self.axes = tuple(axes)

    def wait(self, timeout: float | None = None) -> JobGroup:
        wait_all(self, timeout, f"{len(self)} jobs")
        return self

    def cancel(self) -> list[str]:
        return [job.cancel() for job in self]

    @property
    def done(self) -> bool:
        return all(job.done for job in self)

    @property
    def images(self) -> list:
        return [image for job in self for image in job.images]

    @property
    def files(self) -> list[Path]:
        return [path for job in self for path in job.files]

    @property
    def estimate(self) -> dict[str, Any] | None:
        """The group's estimate (quantities and totals summed); ``None`` when a job has no price."""
        return combine_estimates([job.estimate for job in self])

    @property
    def cost(self) -> float | None:
        """The summed cost once every job ended; ``None`` before, or when a job has no price."""
        costs = [job.cost for job in self]
        return None if not costs or any(c is None for c in costs) else round(sum(costs), 9)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for job in self:
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
        text = ", ".join(f"{n} {state}" for state, n in counts.items())
        return f"<JobGroup {len(self)} jobs{': ' + text if text else ''}>"

