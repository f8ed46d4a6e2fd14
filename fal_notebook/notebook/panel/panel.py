"""The panel: a form generated from the model's schema, this notebook's live job list and a gallery, one widget.

    panel = fal_notebook.panel("nano-banana-pro")   # or %fal panel nano-banana-pro
    panel                                           # fill the form, Submit; select results below
    panel.selected                                  # the Jobs selected in the gallery

Threads (DESIGN.md, jupyter-notes §1.6, §6.1): clicks arrive on the kernel's main thread or a subshell thread;
they only hand work on. Submitting, cancelling, loading the store and making thumbnails run on two small worker
threads; job changes arrive on the runtime thread. Whatever changes widget state is scheduled on the kernel's
loop with ``call_soon_threadsafe(..., context=<the displaying cell>)``, and job changes are coalesced into one
redraw. Without a kernel loop (plain Python, tests) state changes happen at once, under a lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as W

from ...errors import FalError, UsageError, one_line
from ..workers import worker
from .board import MESSAGES, Board
from .form import SchemaForm
from .records import comparison_of, detail_of, job_record, media_of, model_for_media, reusable, short_model
from .snapshot import SNAPSHOT_TILES, local_href, snapshot_html, snapshot_text
from .thumbs import cache_in, smaller, thumbnail

__all__ = ["Panel", "panel", "GALLERY_LIMIT", "JOB_LIST_LIMIT", "COMPARE_LIMIT", "THUMB_SIDE", "THUMB_BYTES"]

log = logging.getLogger("fal_notebook")

GALLERY_LIMIT = 1000  # records the gallery holds (the store may keep more; the newest are shown)
JOB_LIST_LIMIT = 100  # this notebook's newest jobs in the job list
COMPARE_LIMIT = 4
THUMB_SIDE, THUMB_BYTES = 320, 24_000  # a gallery tile / the detail preview (a JPEG data URI ≤ ~32 KB)
SNAPSHOT_SIDE, SNAPSHOT_BYTES = 128, 8_000
SNAPSHOT_WAIT = 5.0  # seconds the snapshot waits for the gallery's first thumbnails before drawing without
SUBMIT_TIMEOUT = 120.0  # Panel.submit(): storing the jobs (and fetching an unknown model's schema)
IDS_PER_REQUEST = 100  # thumbnails answered per message from the view
WARM_THUMBS = 24  # the gallery's first tiles: made while the form is built, sent before the view asks
THUMBS_PER_MESSAGE = 2  # sent together; two workers make them (Pillow decodes and resizes without the GIL):
# small batches, so each of the first tiles is sent after the fewest decodes (the 8th after 4 per worker, not 6)


def _pool(name: str) -> concurrent.futures.ThreadPoolExecutor:
    """Worker threads per kind of work, shared by every panel: submits never wait behind thumbnails."""
    return worker(f"fal-panel-{name}", 2 if name == "thumbs" else 1)


def panel(model: str | None = None) -> Panel:
    """A new :class:`Panel` for ``model`` (any fal model id; none: the form's default); show it as a cell's value."""
    return Panel(model)


class Panel:
    """One form, one job list, one gallery (see the module docstring). ``model``: the form's first model."""

    def __init__(self, model: str | None = None) -> None:
        from ... import jobs

        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            self._ctx: contextvars.Context | None = contextvars.copy_context()
        except RuntimeError:
            self._loop = self._ctx = None
        self._manager = jobs.manager()
        self._lock = threading.RLock()
        self._known: dict[str, Any] = {}  # every job the board shows, by id
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._dirty: set[str] = set()
        self._flush_pending = False
        self._comparing: list[str] = []
        self._thumbs = cache_in(self._manager.settings.home / "thumbnails")
        self._small: dict[str, str] = {}  # the snapshot's copies of the first tiles, by job id
        self._unsent: list[dict[str, str]] | None = []  # thumbnails made before the board existed (then None)
        self._warming_ids: set[str] = set()  # being made unasked: a request from the view for them waits for them
        # the gallery first: the workers make its first thumbnails (Pillow, without the GIL) while the form is built
        gallery = self._gallery_jobs(False)
        self._warming = self._warm(gallery)
        mine = self._manager.jobs(limit=JOB_LIST_LIMIT)
        self.form = SchemaForm(model, on_submit=self._on_submit)
        self.board = Board()
        self.board.on_msg(self._on_message)
        self.board.observe(self._on_selected, names=["selected"])
        self.board.observe(self._on_show_all, names=["show_all"])
        self.widget = W.VBox([self.form.widget, self.board])
        self.widget.add_class("fal-panel")
        self._load(mine, gallery, self._warming)

    # -- what users read ---------------------------------------------------------------------------------
    @property
    def selected(self) -> list[Any]:
        """The ``Job`` objects selected in the gallery, in the order they were selected."""
        return [self._known[i] for i in self.board.selected if i in self._known]

    @property
    def jobs(self) -> list[Any]:
        """This notebook's jobs as the job list shows them, newest first."""
        return [self._known[r["id"]] for r in self.board.jobs if r["id"] in self._known]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The live widget, plus a static snapshot for viewers without a kernel (nbconvert, GitHub)."""
        data = dict(self.widget._repr_mimebundle_() or {})
        data["text/html"] = self.snapshot()
        data["text/plain"] = snapshot_text(self.board.jobs, self.board.items)
        return data

    def __repr__(self) -> str:
        return f"<Panel {short_model(self.form.model)}: {snapshot_text(self.board.jobs, self.board.items)}>"

    def snapshot(self) -> str:
        """The job list and newest results as static HTML (what a saved notebook shows without a kernel).

        Its tiles are the workers' copies of the gallery's first thumbnails (made, or read from the disk cache,
        while the form was built): each picture is decoded once, in parallel, not once more here."""
        needed = -(-SNAPSHOT_TILES // THUMBS_PER_MESSAGE)  # the chunks that hold the snapshot's tiles
        concurrent.futures.wait(self._warming[:needed], timeout=SNAPSHOT_WAIT)
        return snapshot_html(self.board.jobs, self.board.items, self._snapshot_thumb, self._snapshot_link)

    def close(self) -> None:
        with self._lock:
            unsubscribes, self._unsubscribe = list(self._unsubscribe.values()), {}
        for unsubscribe in unsubscribes:
            unsubscribe()
        self.board.close()
        self.widget.close()

    # -- actions (call on the kernel's thread; the board's messages land here) ----------------------------
    def submit(self, timeout: float | None = SUBMIT_TIMEOUT) -> list[Any]:
        """Press **Submit** from code: the new jobs, once stored (they run in the background).

        Raises ``UsageError`` listing the form's problems (nothing is sent), or the submit's own error.
        """
        pending = self.form.submit()
        if pending is None:
            problems = "; ".join(str(p) for p in self.form.problems) or "the form was not submitted"
            raise UsageError(f"nothing was sent: {problems}")
        submitted = pending.result(timeout)
        if not submitted:
            raise UsageError(f"nothing was sent: {self.board.notice}")
        return submitted

    def reuse(self, ref: Any) -> None:
        """Fill the form with a job's model and inputs (**Reuse settings**)."""
        job = self._job(ref)
        self.form.load(job.model, reusable(job.arguments))
        self._say(f"settings of job {job.id} ({short_model(job.model)}) are in the form")

    def use_as_input(self, ref: Any, model: str | None = None) -> str | None:
        """Put a job's first output into the fitting media field of the form's model (or of ``model``, which
        the form switches to). Returns the field; without one, offers a model that takes it (**Use as input**)."""
        job = self._job(ref)
        media = media_of(job)
        if not media:
            self._say(f"job {job.id} has no output file to use")
            return None
        source, kind = media[0]["url"] or media[0]["path"], media[0]["kind"]
        if model is not None:
            self.form.model = model
        field = self.form.put_media(source, kind)
        if field is not None:
            self.board.offer = {}
            self._say(f"the {kind} of job {job.id} is in {field} of {short_model(self.form.model)}")
            return field
        suggestion = model_for_media(kind, self.form.model)
        self.board.offer = {"id": job.id, "model": suggestion, "kind": kind} if suggestion else {}
        hint = f": use it with {suggestion}?" if suggestion else ""
        self._say(f"{short_model(self.form.model)} takes no {kind} input{hint}")
        return None

    def compare(self, ref: Any) -> None:
        """Add a job to the side-by-side view (the oldest leaves past :data:`COMPARE_LIMIT`) (**Compare**)."""
        job = self._job(ref)
        if job.id not in self._comparing:
            self._comparing = [*self._comparing, job.id][-COMPARE_LIMIT:]
        self._draw_comparison()

    def uncompare(self, ref: Any = None) -> None:
        """Take one job (or, with no argument, every job) out of the side-by-side view."""
        self._comparing = [] if ref is None else [i for i in self._comparing if i != self._job(ref).id]
        self._draw_comparison()

    def cancel(self, ref: Any) -> concurrent.futures.Future:
        """Ask fal to cancel a job (on a worker thread: the answer may take seconds) (**Cancel**)."""
        job = self._job(ref)
        return _pool("actions").submit(self._cancel_in_background, job)

    # -- events --------------------------------------------------------------------------------------------
    def _on_submit(self, model: str, values: dict, count: int) -> concurrent.futures.Future:
        """The form's Submit (any thread): submitting stores rows and may fetch a schema, so a worker does it."""
        count = max(1, int(count or 1))
        self._hop(self._say, f"submitting {count} job(s) to {short_model(model)}…")
        return _pool("actions").submit(self._submit_in_background, model, dict(values), count)

    def _submit_in_background(self, model: str, values: dict, count: int) -> list[Any]:
        from ... import jobs

        try:
            submitted = [jobs.submit(model, values) for _ in range(count)]
        except FalError as exc:  # nothing was sent: say why, next to the form
            self._hop(self._say, one_line(exc))
            return []
        self._hop(self._track_new, submitted)
        return submitted

    def _cancel_in_background(self, job: Any) -> str:
        try:
            answer = job.cancel()
        except FalError as exc:
            answer = one_line(exc)
        self._hop(self._say, f"cancel of job {job.id}: {answer}")
        return answer

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """A click or a thumbnail request from the view (main or subshell thread): hand it on."""
        if not isinstance(content, dict) or content.get("type") not in MESSAGES:
            return
        kind, ref = content["type"], str(content.get("id") or "")
        if kind == "thumbs":
            ids = content.get("ids")
            if isinstance(ids, list):
                with self._lock:  # those being made anyway are sent when ready: not made twice
                    ids = [str(i) for i in ids[:IDS_PER_REQUEST] if str(i) not in self._warming_ids]
                for start in range(0, len(ids), THUMBS_PER_MESSAGE):  # the first tiles fill in first
                    _pool("thumbs").submit(self._send_thumbs, ids[start:start + THUMBS_PER_MESSAGE])
        elif kind == "cancel":
            self._hop(self.cancel, ref)
        elif kind == "clear_compare":
            self._hop(self.uncompare)
        else:
            action = {"reuse": self.reuse, "use": self.use_as_input, "compare": self.compare,
                      "uncompare": self.uncompare}.get(kind)
            if kind == "use_in":
                self._hop(self.use_as_input, ref, str(content.get("model") or ""))
            elif action is not None:
                self._hop(action, ref)

    def _on_selected(self, change: dict) -> None:
        self._hop(self._draw_detail)

    def _on_show_all(self, change: dict) -> None:
        _pool("actions").submit(self._reload_gallery, bool(change["new"]))

    def _reload_gallery(self, show_all: bool) -> None:
        found = self._gallery_jobs(show_all)
        self._hop(self._set_gallery, found, self._warm(found))

    # -- job changes (runtime thread) → one redraw on the kernel loop -------------------------------------
    def _changed(self, job_id: str) -> None:
        with self._lock:
            self._dirty.add(job_id)
            if self._flush_pending:
                return
            self._flush_pending = True
        self._hop(self._flush)

    def _flush(self) -> None:
        with self._lock:
            dirty, self._dirty, self._flush_pending = self._dirty, set(), False
        rows = list(self.board.jobs)
        finished = []
        for i, old in enumerate(rows):
            job = self._known.get(old["id"])
            if old["id"] not in dirty or job is None:
                continue
            rows[i] = job_record(job, mine=True)
            if job.done:
                self._stop_following(job.id)
                if _in_gallery(rows[i]):
                    finished.append(rows[i])
        self.board.jobs = rows
        if finished:
            self._add_to_gallery(finished)
        if self.board.detail.get("id") in dirty:
            self._draw_detail()

    # -- drawing (kernel loop) --------------------------------------------------------------------------------
    def _hop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` where widget state may change: the kernel's loop, or here (under the lock) without one."""
        if self._loop is None:
            with self._lock:
                self._guarded(fn, *args)
            return
        try:
            self._loop.call_soon_threadsafe(self._guarded, fn, *args, context=self._ctx)
        except RuntimeError:  # the kernel's loop is closed: nobody is watching any more
            pass

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except FalError as exc:  # a click on something gone, a model that cannot be loaded: say so
            self._say(one_line(exc))
        except Exception:
            log.exception("the panel could not %s", getattr(fn, "__name__", "update"))

    def _say(self, text: str) -> None:
        self.board.notice = text

    def _load(self, mine: Iterable[Any], gallery: Iterable[Any], warming: list[concurrent.futures.Future]) -> None:
        rows = []
        for job in mine:
            self._known[job.id] = job
            rows.append(job_record(job, mine=True))
            if not job.done:
                self._follow(job)
        self.board.jobs = rows
        self._set_gallery(gallery, warming, {r["id"]: r for r in rows})

    def _track_new(self, submitted: list[Any]) -> None:
        rows = [job_record(job, mine=True) for job in reversed(submitted)]
        for job in submitted:
            self._known[job.id] = job
            self._follow(job)
        ids = {r["id"] for r in rows}
        self.board.jobs = (rows + [r for r in self.board.jobs if r["id"] not in ids])[:JOB_LIST_LIMIT]
        self._say(f"submitted {len(submitted)} job(s): {', '.join(j.id for j in submitted)}")
        for job in submitted:  # ended before the subscription (a quick failure): draw its end too
            if job.done:
                self._changed(job.id)

    def _follow(self, job: Any) -> None:
        with self._lock:
            if job.id not in self._unsubscribe:
                self._unsubscribe[job.id] = job.on_change(lambda: self._changed(job.id))

    def _stop_following(self, job_id: str) -> None:
        with self._lock:
            unsubscribe = self._unsubscribe.pop(job_id, None)
        if unsubscribe is not None:
            unsubscribe()

    def _gallery_jobs(self, show_all: bool) -> list[Any]:
        return self._manager.jobs(state="COMPLETED", all=show_all, limit=GALLERY_LIMIT)

    def _set_gallery(self, found: Iterable[Any], warming: list[concurrent.futures.Future],
                     drawn: dict[str, dict] | None = None) -> None:
        """Show ``found`` in the gallery; ``warming`` (from :meth:`_warm`) makes its first tiles, sent as soon as
        each batch is ready (the view keeps pictures that come before it exists). ``drawn``: records of this
        notebook's jobs just made for the job list, the same for the gallery."""
        origin = self._manager.origin
        drawn = drawn or {}
        items = []
        for job in found:
            mine = job.origin == origin
            record = drawn.get(job.id) if mine else None
            record = record or job_record(job, mine=mine)
            if _in_gallery(record):
                self._known.setdefault(job.id, job)
                items.append(record)
        self.board.items = items[:GALLERY_LIMIT]
        self._warming = warming
        with self._lock:
            unsent, self._unsent = self._unsent or [], None
        for made in unsent:
            self._send(made)

    def _warm(self, found: list[Any]) -> list[concurrent.futures.Future]:
        """Start making the thumbnails of the first tiles of ``found`` (almost surely in view), and the
        snapshot's copies of the first ones, on the workers."""
        first: list[tuple[str, str]] = []
        for job in found:  # the first ones only: a job's files are read anew at each call
            files = job.files
            if files:
                first.append((job.id, str(files[0])))
                if len(first) == WARM_THUMBS:
                    break
        with self._lock:
            self._warming_ids.update(job_id for job_id, _ in first)
        return [_pool("thumbs").submit(self._make_and_send, first[start:start + THUMBS_PER_MESSAGE],
                                       start < SNAPSHOT_TILES)
                for start in range(0, len(first), THUMBS_PER_MESSAGE)]

    def _make_and_send(self, pairs: list[tuple[str, str]], small: bool) -> None:
        """Sent before the task ends, so a tile the snapshot waited for is on its way before the view is."""
        try:
            made = self._make_thumbs(pairs, small)
            with self._lock:
                if self._unsent is not None:  # no board yet: it sends them when it is filled
                    self._unsent.append(made)
                    return
            self._send(made)
        finally:  # sent (or impossible): a later request from the view makes them again (from the disk cache)
            with self._lock:
                self._warming_ids.difference_update(job_id for job_id, _ in pairs)

    def _add_to_gallery(self, records: list[dict]) -> None:
        ids = {r["id"] for r in records}
        fresh = sorted(records, key=lambda r: r["created"], reverse=True)
        self.board.items = (fresh + [r for r in self.board.items if r["id"] not in ids])[:GALLERY_LIMIT]

    def _draw_detail(self) -> None:
        chosen = [i for i in self.board.selected if i in self._known]
        self.board.detail = detail_of(self._known[chosen[-1]]) if chosen else {}
        if self.board.offer.get("id") not in chosen:  # an offer made for another result no longer applies
            self.board.offer = {}

    def _draw_comparison(self) -> None:
        jobs = [self._known[i] for i in self._comparing if i in self._known]
        self.board.comparison = comparison_of(jobs) if jobs else {}

    def _job(self, ref: Any) -> Any:
        if not isinstance(ref, str):
            self._known.setdefault(ref.id, ref)
            return ref
        job = self._known.get(ref)
        if job is None:
            raise FalError(f"job {ref!r} is not shown in this panel")
        return job

    # -- thumbnails (worker threads) --------------------------------------------------------------------------
    def _make_thumbs(self, pairs: list[tuple[str, str]], small: bool = False) -> dict[str, str]:
        """Tile thumbnails of ``(job id, file)`` pairs, from the disk cache or made and kept there; with
        ``small``, the snapshot's copies too."""
        items = {}
        for job_id, path in pairs:
            version = self._thumbs.version(path)
            uri = thumbnail(self._thumbs, path, version, THUMB_SIDE, THUMB_BYTES)
            if uri:
                items[job_id] = uri
                if small:
                    self._small[job_id] = smaller(self._thumbs, version, uri, SNAPSHOT_SIDE, SNAPSHOT_BYTES)
        return items

    def _send(self, items: dict[str, str]) -> None:
        if items:
            self.board.send({"type": "thumbs", "items": items})  # a comm message: safe from any thread

    def _send_thumbs(self, ids: list[str]) -> None:
        """What the view asked for: the thumbnails of these jobs (those the board shows)."""
        pairs = []
        for job_id in ids:
            job = self._known.get(job_id)
            if job is not None and job.files:
                pairs.append((job_id, str(job.files[0])))
        self._send(self._make_thumbs(pairs))

    def _snapshot_thumb(self, job_id: str) -> str:
        made = self._small.get(job_id)
        if made is not None:
            return made
        job = self._known.get(job_id)
        if job is None or not job.files:
            return ""
        path = str(job.files[0])
        version = self._thumbs.version(path)
        return smaller(self._thumbs, version, thumbnail(self._thumbs, path, version, THUMB_SIDE, THUMB_BYTES),
                       SNAPSHOT_SIDE, SNAPSHOT_BYTES)

    def _snapshot_link(self, job_id: str) -> str:
        job = self._known.get(job_id)
        if job is None:
            return ""
        media = media_of(job)
        return (media[0]["url"] or local_href(media[0]["path"])) if media else ""


def _in_gallery(record: dict) -> bool:
    return record["state"] == "COMPLETED" and record["files"] > 0

