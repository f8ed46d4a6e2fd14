"""Job cards: one output per job, drawn from the job's current state and updated in place by display id.

Why plain HTML and not a widget: the same ``text/html`` is what JupyterLab shows live, what the saved notebook
keeps, and what nbconvert / GitHub render, so there is one picture to get right (jupyter-notes §2, §6.3).

Threads: a job's ``on_change`` callbacks run on the runtime thread. They only schedule
:meth:`LiveCard._refresh` on the kernel's loop with ``call_soon_threadsafe(..., context=<submitting cell>)``,
coalesced, so display calls normally happen on the main thread with the submitting cell's parent header. When a
later cell blocks that loop (``time.sleep``, heavy compute) for longer than :data:`BLOCKED_AFTER`, a short-lived
timer thread publishes the ``update_display_data`` itself: JupyterLab routes it to the card by display id
(jupyter-notes §2.2 case B), so pictures still arrive while the user's cell runs. Nothing else is ever printed or
displayed from a background thread. Without a kernel (terminal IPython, scripts) cards are not followed at all:
the extension reports finished jobs at the next prompt instead.

    card = LiveCard(job, live=True).show()   # display once, then redrawn as the job moves
    resend_final()                           # re-publish finished cards from the current cell (nbclient)
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from ..views.card_data import THUMB_BYTES, THUMB_SIDE, card_data, state_name, thumbnail_uri
from ..views.group import group_data, group_html, group_text, tile_budget, tile_data
from ..views.html import card_html, card_text
from .workers import worker

__all__ = [
    "JobCard", "GroupCard", "LiveCard", "LiveGroup", "card_data", "display_id", "jobs_of", "show",
    "thumbnail_uri", "resend_final", "finished_unannounced", "mark_announced",
    "notice", "THUMB_SIDE", "THUMB_BYTES", "BLOCKED_AFTER",
]

log = logging.getLogger("fal_notebook")

BLOCKED_AFTER = 1.0  # seconds a scheduled redraw may wait for a busy kernel loop before a thread publishes it
MIN_REDRAW = 0.25  # a card is redrawn at most 4 times a second while its job runs (its end is drawn at once)
MAIN_SHARE = 0.05  # ... and less often when drawing it takes longer: at most this share of the kernel's thread
BYTES_PER_SECOND = 250_000  # ... or when it is big: at most this much iopub traffic a second per output
_CARDS: list[LiveCard] = []
_CARDS_LOCK = threading.Lock()


class JobCard:
    """A static picture of a job: ``text/html`` with embedded thumbnails plus ``text/plain``.

    >>> display(JobCard(job))

    ``variant`` says what tells the job apart from the rest of its group (``[("aspect_ratio", "9:16")]``).
    """

    def __init__(self, job: Any, variant: tuple[tuple[str, str], ...] = ()) -> None:
        self.job = job
        self.variant = variant

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        data = card_data(self.job.snapshot(), self.variant)
        return {"text/html": card_html(data), "text/plain": card_text(data)}

    def __repr__(self) -> str:
        return card_text(card_data(self.job.snapshot(), self.variant))


class GroupCard:
    """A static picture of a group: one strip or labelled grid of tiles (``text/html``) plus ``text/plain``.

    ``axes`` names the varying fields in order (rows, columns, pages); by default the fields that differ."""

    def __init__(self, jobs: Iterable[Any], axes: Iterable[str] | None = None) -> None:
        self.jobs = list(jobs)
        self.axes = tuple(axes) if axes else None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        data = group_data([job.snapshot() for job in self.jobs], self.axes)
        return {"text/html": group_html(data), "text/plain": group_text(data)}

    def __repr__(self) -> str:
        return group_text(group_data([job.snapshot() for job in self.jobs], self.axes))


class _Group:
    """A group followed as one thing: done when every job is, changed when any job changes."""

    def __init__(self, jobs: list[Any]) -> None:
        self.jobs = jobs

    @property
    def id(self) -> str:
        """Stable for the same jobs (so the group's display id is too), short however large the group."""
        import hashlib

        return "group-" + hashlib.sha256(",".join(job.id for job in self.jobs).encode()).hexdigest()[:16]

    done = property(lambda self: all(job.done for job in self.jobs))
    state = property(lambda self: " ".join(state_name(job.state) for job in self.jobs))

    def on_change(self, callback: Any) -> Any:
        unsubscribes = [job.on_change(callback) for job in self.jobs if not job.done]

        def unsubscribe() -> None:
            for undo in unsubscribes:
                undo()

        return unsubscribe


class LiveCard:
    """One displayed card of one job, redrawn in place whenever the job changes.

    ``live=True`` (inside a kernel) follows the job; ``live=False`` shows it once. Methods say which thread
    calls them; none raises into the runtime thread.
    """

    def __init__(self, job: Any, *, live: bool = True, variant: tuple[tuple[str, str], ...] = ()) -> None:
        self.job = job
        self.live = live
        self.variant = variant
        self.handle: Any = None
        self.final_sent = False  # a finished card was published from inside a cell
        self.announced = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ctx: contextvars.Context | None = None
        self._lock = threading.Lock()  # guards the two fields below
        self._loop_pending = False
        self._timer: threading.Timer | None = None
        self._publish_lock = threading.Lock()  # one publish at a time, each of the then-current state
        self._unsubscribe: Any = None
        self._drawn = 0.0  # time.monotonic() of the last redraw
        self._spent = 0.0  # seconds the last redraw took on the drawing thread
        self._sent: dict[str, str] | None = None  # the last bundle published (an identical one is not resent)

    def show(self) -> LiveCard:
        """Main thread, in a cell: display the card once and, when live, follow the job."""
        from IPython.display import display

        shown_state = state_name(self.job.state)
        # one display id per job, not per card: every card of the job (a later cell showing it again, the card
        # a restart's %load_ext shows) is updated by each redraw, and a frontend that keeps display ids across
        # a kernel restart can route the new kernel's updates to the old card
        self.handle = display(self._card(), display_id=display_id(self.job))
        self._drawn = time.monotonic()
        if self.live:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self.live = False
        if self.live and not self.job.done:
            self._ctx = contextvars.copy_context()
            self._unsubscribe = self._subscribe()
            if state_name(self.job.state) != shown_state:  # moved between display and subscribe
                self._changed()
        self.announced = not self.live and self.job.done  # a card that shows the end needs no notice of it
        with _CARDS_LOCK:
            _CARDS.append(self)
        return self

    @property
    def jobs(self) -> list[Any]:
        """The jobs this output shows."""
        return [self.job]

    def _card(self) -> Any:
        return JobCard(self.job, self.variant)

    def _bundle(self) -> dict[str, str]:
        """What a live redraw publishes (a group's overrides it to skip image decoding)."""
        return self._card()._repr_mimebundle_()

    def _subscribe(self) -> Any:
        return self.job.on_change(self._changed)

    def _final(self) -> bool:
        """True when the picture will not change again: draw it at once."""
        return bool(self.job.done)

    def _interval(self) -> float:
        """Seconds between two redraws while the job runs: :data:`MIN_REDRAW`, longer for an output that is
        slow to draw or heavy to send (a 200-job grid), so redraws never crowd the user's cells."""
        sent = sum(len(v) for v in self._sent.values()) if self._sent else 0
        return max(MIN_REDRAW, self._spent / MAIN_SHARE, sent / BYTES_PER_SECOND)

    def _changed(self) -> None:
        """Runtime thread: schedule one redraw on the kernel loop (at most every :meth:`_interval` s while
        the job runs: 200 jobs moving in a queue are not 200 redraws a second), plus a timer in case that
        loop is busy."""
        delay = 0.0 if self._final() else max(0.0, self._drawn + self._interval() - time.monotonic())
        with self._lock:
            need_loop, self._loop_pending = not self._loop_pending, True
            timer = None
            if self._timer is None:
                timer = self._timer = threading.Timer(BLOCKED_AFTER + delay, self._publish_if_blocked)
                timer.daemon = True
        if need_loop and self._loop is not None:
            try:
                if delay:
                    later = functools.partial(self._loop.call_later, delay, self._refresh, context=self._ctx)
                    self._loop.call_soon_threadsafe(later)
                else:
                    self._loop.call_soon_threadsafe(self._refresh, context=self._ctx)
            except RuntimeError:  # the kernel's loop is closed: nobody is watching any more
                self._stop()
                return
        if timer is not None:
            timer.start()

    def _refresh(self) -> None:
        """Kernel loop, in the submitting cell's context: redraw from the job's current state."""
        with self._lock:
            self._loop_pending = False
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._publish()

    def _publish_if_blocked(self) -> None:
        """Timer thread: the loop has not run the redraw in time, so publish the update from here."""
        with self._lock:
            if self._timer is None or not self._loop_pending:
                return
            self._timer = None
        self._publish()

    def _publish(self) -> None:
        with self._publish_lock:
            start = time.perf_counter()
            self._drawn = time.monotonic()
            done = self._final()
            try:
                bundle = self._bundle()
                if bundle != self._sent:  # a change the picture does not show (a log line of a tile) sends nothing
                    self.handle.update(bundle, raw=True)
                    self._sent = bundle
            except Exception:
                log.exception("could not redraw the card of job %s", getattr(self.job, "id", "?"))
            self._spent = time.perf_counter() - start
        if done:
            self._stop()

    def _stop(self) -> None:
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if unsubscribe is not None:
            unsubscribe()

    def resend(self) -> None:
        """Main thread, in a cell: publish the card again from that cell (nbclient records only its messages),
        complete (thumbnails made here if they are not yet)."""
        if self.handle is not None:
            with self._publish_lock:
                bundle = self._card()._repr_mimebundle_()
                self.handle.update(bundle, raw=True)
                self._sent = bundle
            if self._final():  # nothing will change any more: no redraw or timer is left waiting
                self._stop()
        if self.job.done:
            self.final_sent = True


def display_id(job: Any) -> str:
    """The display id of every card of ``job``: stable across cells and kernel restarts."""
    return f"fal-job-{job.id}"


class LiveGroup(LiveCard):
    """A whole group as ONE output (one display id), redrawn in place as any of its jobs moves; redraws coalesce
    like a card's, so a 16-job sweep finishing at once is a handful of updates, not 16 × its states.

    A live redraw never decodes an image on the kernel's thread: each finished job's tile thumbnail is made on
    one small worker thread, which asks for a redraw when it is ready (and the output is final only once every
    thumbnail is in). A redraw whose tiles did not change (a log line, a queue position) is not even drawn."""

    def __init__(self, jobs: Iterable[Any], *, live: bool = True, axes: Iterable[str] | None = None) -> None:
        super().__init__(_Group(list(jobs)), live=live)
        self.axes = tuple(axes) if axes else None
        self._warming = 0  # thumbnails queued on the worker, not yet made
        self._warmed: set[str] = set()  # ids of the jobs whose thumbnail was queued
        self._made: set[str] = set()  # ... and made
        self._ended = {job.id for job in self.job.jobs if job.done}  # so a change need not look at every job
        self._drawn_tiles: tuple | None = None  # what the last live redraw showed, tile by tile

    @property
    def jobs(self) -> list[Any]:
        return list(self.job.jobs)

    def _card(self) -> GroupCard:
        return GroupCard(self.job.jobs, self.axes)

    def _subscribe(self) -> Any:
        undo = [job.on_change(functools.partial(self._job_changed, job)) for job in self.job.jobs if not job.done]
        self._ended.update(job.id for job in self.job.jobs if job.done)  # ended before their subscription

        def unsubscribe() -> None:
            for one in undo:
                one()

        return unsubscribe

    def _job_changed(self, job: Any) -> None:
        """Runtime thread: a finished job's thumbnail goes to the worker; then a (coalesced) redraw."""
        if job.done:
            self._ended.add(job.id)
        if job.done and job.files:
            with self._lock:
                queue = job.id not in self._warmed
                if queue:
                    self._warmed.add(job.id)
                    self._warming += 1
            if queue:
                worker("fal-thumbnails").submit(self._warm, job)
        self._changed()

    def _warm(self, job: Any) -> None:
        """Worker thread: make the tile's thumbnail (cached for every later redraw), then ask for a redraw."""
        try:
            side, max_bytes = tile_budget(len(self.job.jobs))
            tile_data(job, side, max_bytes)
        except Exception:  # decoration: the tile shows its state instead
            log.debug("no thumbnail for job %s", getattr(job, "id", "?"), exc_info=True)
        finally:
            with self._lock:
                self._warming -= 1
                self._made.add(job.id)
        self._changed()

    def _final(self) -> bool:
        with self._lock:
            warming = self._warming
        if warming:
            return False
        if self._unsubscribe is not None and len(self._ended) < len(self.job.jobs):
            return False  # followed: the jobs are counted as they end, no need to look at all 200 each change
        return bool(self.job.done)

    def _bundle(self) -> dict[str, str]:
        tiles = tuple((state_name(job.state), len(job.files), job.id in self._made) for job in self.job.jobs)
        if tiles == self._drawn_tiles and self._sent is not None:
            return self._sent  # nothing a tile shows has changed: not drawn, not sent
        data = group_data([job.snapshot() for job in self.job.jobs], self.axes, cached_only=True)
        self._drawn_tiles = tiles
        return {"text/html": group_html(data), "text/plain": group_text(data)}


def jobs_of(obj: Any) -> list[Any]:
    return list(obj) if isinstance(obj, list | tuple) else [obj]


def show(obj: Any, *, live: bool = True) -> list[LiveCard]:
    """Display a ``Job`` as one card, or a ``JobGroup`` as ONE output (a strip or a labelled grid of tiles);
    ``live`` follows them (inside a kernel). A group's ``axes`` (when it has them) order its rows and columns."""
    jobs = jobs_of(obj)
    if len(jobs) > 1:
        return [LiveGroup(jobs, live=live, axes=getattr(obj, "axes", None)).show()]
    return [LiveCard(job, live=live).show() for job in jobs]


def resend_final(jobs: Iterable[Any] | None = None) -> int:
    """Re-publish cards from the current cell: those of ``jobs`` (finished or not) and every finished card
    not yet re-published (a group once its thumbnails are made too: a later cell resends it, so the kernel's
    thread never decodes them). Returns how many were sent. Call on the main thread, inside a cell."""
    wanted = {id(job) for job in jobs} if jobs is not None else set()
    with _CARDS_LOCK:
        cards = list(_CARDS)
    sent = 0
    for card in cards:
        if any(id(job) in wanted for job in card.jobs) or (not card.final_sent and card._final()):
            card.resend()
            sent += 1
    _prune()
    return sent


def _prune() -> None:
    with _CARDS_LOCK:
        _CARDS[:] = [c for c in _CARDS if not (c.job.done and c.final_sent and (c.live or c.announced))]


def finished_unannounced() -> list[Any]:
    """Jobs shown without a kernel loop (terminal) that finished since the last call; each is returned once."""
    with _CARDS_LOCK:
        cards = [c for c in _CARDS if not c.live and not c.announced and c.job.done]
        for card in cards:
            card.announced = True
    seen: dict[int, Any] = {}
    for card in cards:
        for job in card.jobs:
            seen.setdefault(id(job), job)
    return list(seen.values())


def mark_announced(jobs: Iterable[Any]) -> None:
    """A terminal just printed these jobs' final cards: earlier cards of them need no notice any more."""
    ids = {getattr(job, "id", None) for job in jobs if job.done}
    with _CARDS_LOCK:
        for card in _CARDS:
            if all(getattr(job, "id", None) in ids for job in card.jobs):
                card.announced = True


def notice(job: Any) -> str:
    """One line saying a job finished, for a terminal prompt."""
    data = card_data(job.snapshot())
    where = ", ".join(m.path or m.href for m in data.media)
    tail = f": {where}" if where else (f": {data.error}" if data.error else "")
    return f"[fal] job {data.job_id} ({data.model}) {data.state}{tail}"
