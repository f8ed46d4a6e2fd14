"""What happens to one job on the runtime loop: submit, follow, fetch the result once, download its media.

Each step persists before and after it talks to fal, so a process killed at any point leaves a row another
process can finish: no request id → submit again; request id, no result → follow; result → download.
Writes are conditional on still owning the job; when another process took it over (or cancelled it), the
step raises :class:`LostJob` and this process lets go.

Steps see only the :class:`~.ledger.Ledger` and the :class:`~.ledger.JobRun`; :func:`drive` returns an
:class:`~.outcome.Outcome` and the manager alone records the final state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..client.retry import TRANSIENT_STATUS
from ..errors import (
    FalError,
    FalTimeoutError,
    JobCancelledError,
    NotFoundError,
    RequestError,
    ResultExpiredError,
    TransportError,
    UnknownOutcomeError,
)
from ..store.records import JobState, utcnow
from .ledger import JobRun, Ledger, Phase, handle_of
from .outcome import COMPLETED, LostJob, Outcome, outcome_of
from .reconcile import last_look, mark_posting, needs_reconcile, reconcile_step

if TYPE_CHECKING:
    from ..client.wire import RequestHandle, Status
    from ..store.records import JobRecord

__all__ = ["LostJob", "drive", "media_items", "output_name", "PollPacer", "fetch_media", "note_pending",
           "DOWNLOADS_PENDING"]

log = logging.getLogger("fal_notebook")
MEDIA_KEYS = ("images", "image", "video", "videos", "audio")
# A resume's first status reads and its results wait in one lane, first come first served: every resumed job is
# read before results are fetched (a user sees where each stands at once), and the resume as a whole shares the
# request slots fairly with other work (a lane of its own in the scheduler's round).
RESUME_LANE = "resume"
RESULT_ATTEMPTS = 5


def transient(exc: FalError) -> bool:
    """A failure of the connection or of fal's front door, not of the job (app errors are JobFailedError)."""
    if isinstance(exc, (TransportError, FalTimeoutError)):
        return True
    return type(exc) is RequestError and exc.status_code in TRANSIENT_STATUS


def transient_delay(failures: int) -> float:
    """Seconds before trying again after ``failures`` transient failures in a row."""
    return min(30.0, 2.0 ** failures)


class PollPacer:
    """Polling cadence set by the job's phase. Each phase starts at its first interval and backs off while it
    lasts (queued: 0.5 s up to 5 s, never faster than 0.1 s per job ahead; running: 0.5 s up to 2 s). A
    queue-position change never brings the pace back to the fastest: with hundreds of jobs queued, positions
    change on every reading, and resetting made every job poll at the fastest rate."""

    PHASES = {"IN_QUEUE": (0.5, 1.6, 5.0), "IN_PROGRESS": (0.5, 1.25, 2.0)}
    PER_JOB_AHEAD = 0.1

    def __init__(self) -> None:
        self.interval = 0.0
        self._state: str | None = None

    def next(self, state: str, position: int | None) -> float:
        """Seconds to wait after a reading in ``state`` at ``position``."""
        first, factor, most = self.PHASES.get(state, self.PHASES["IN_QUEUE"])
        if state != self._state:
            self._state, self.interval = state, first
        else:
            self.interval = min(self.interval * factor, most)
        if state == "IN_QUEUE" and position:
            self.interval = max(self.interval, min(most, self.PER_JOB_AHEAD * position))
        return self.interval


# -- results and media ---------------------------------------------------------------------------------------
def _is_media(value: Any, key: str | None) -> bool:
    return isinstance(value, dict) and isinstance(value.get("url"), str) and (
        "content_type" in value or key in MEDIA_KEYS)


def _walk(value: Any, key: str | None = None) -> Iterator[dict]:
    if _is_media(value, key):
        yield value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _walk(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, key)


def media_items(result: dict) -> list[dict]:
    """fal's file objects in display order: ``images``, ``image``, ``video``, then any ``{url, content_type}``."""
    ordered: list[dict] = []
    for key in ("images", "image", "video"):
        ordered += list(_walk(result.get(key), key)) if key in result else []
    rest = {k: v for k, v in result.items() if k not in ("images", "image", "video")}
    ordered += list(_walk(rest))
    unique: dict[int, dict] = {id(item): item for item in ordered}
    return list(unique.values())


def output_name(job_id: str, index: int, item: dict) -> str:
    """``<job id>-<n>-<safe name>``: fal's ``file_name`` or the URL's last segment, extension from the type."""
    from ..media import data_uri_type, safe_filename

    url = item["url"]
    name = item.get("file_name") if isinstance(item.get("file_name"), str) else ""
    if not name and not url.startswith("data:"):
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    content_type = str(item.get("content_type") or "").split(";")[0].strip()
    if not content_type and url.startswith("data:"):  # sync_mode: the type is in the URI itself
        content_type = data_uri_type(url)
    ext = mimetypes.guess_extension(content_type) if content_type else None
    stem = safe_filename(name, default="output")
    if ext and not Path(stem).suffix:
        stem += ext
    return f"{job_id}-{index}-{stem}"


def inside(folder: Path, name: str) -> Path:
    """``folder/name``, refused (``FalError``) if it would resolve outside ``folder``."""
    dest = (folder / name).resolve()
    if not dest.is_relative_to(folder.resolve()) or dest == folder.resolve():
        raise FalError(f"refusing to write {name!r} outside {folder}")
    return dest


# -- steps ---------------------------------------------------------------------------------------------------
async def _upload_all(ledger: Ledger, arguments: dict, uploads: list[tuple[str, Any]]) -> dict:
    from ..catalog.validate import replace_at
    from ..client.uploads import async_upload

    for json_path, source in uploads:
        source = Path(source) if isinstance(source, (str, os.PathLike)) else source
        url = await async_upload(ledger.client, source)
        arguments = replace_at(arguments, json_path, url)
    return arguments


def _arguments_to_send(ledger: Ledger, run: JobRun) -> tuple[dict, list[tuple[str, Any]]]:
    """The stored input with data URIs rebuilt, and what still needs uploading (checked again on resume)."""
    rec = run.record
    arguments = ledger.restore_inputs(rec.arguments)
    if run.uploads is not None:
        return arguments, run.uploads
    if not rec.options.get("validate", True):
        return arguments, []
    from ..catalog.validate import validate

    checked = validate(rec.endpoint, arguments, probe_videos=False, cache_dir=ledger.schema_cache)
    return checked.arguments, checked.uploads


async def submit_step(ledger: Ledger, run: JobRun) -> None:
    """Upload local inputs (what was uploaded is stored before the POST, so a resume never uploads twice),
    POST, then store the request id, URLs and first status in one write."""
    rec = run.record
    async with ledger.submit_slots:
        run.phase = Phase.UPLOADING
        arguments, uploads = _arguments_to_send(ledger, run)
        arguments = await _upload_all(ledger, arguments, uploads)
        rec.arguments, run.uploads = arguments, []
        # always stored before the POST, uploads or not: a crash from here on leaves an UNKNOWN outcome that
        # fal's history settles, never a blind second (billed) POST
        mark_posting(rec)
        ledger.persist(run, "arguments", "submit_attempts", "options")
        run.phase = Phase.POSTING
        options = {k: rec.options.get(k) for k in ("webhook_url", "priority", "start_timeout", "hint")}
        try:
            handle, status = await ledger.client.submit(rec.endpoint, arguments, **options)
        finally:
            run.phase = Phase.FOLLOWING
            run.accepted.set()
    rec.request_id, rec.status_url = handle.request_id, handle.status_url
    rec.response_url, rec.cancel_url = handle.response_url, handle.cancel_url
    rec.submitted_at, rec.state = utcnow(), JobState.IN_QUEUE
    _read_status(run, status)
    ledger.persist(run, "request_id", "status_url", "response_url", "cancel_url", "submitted_at", "submit_attempts",
                   *PROGRESS_FIELDS)
    _check_cancelled(rec, status)


PROGRESS_FIELDS = ("state", "queue_position", "logs", "inference_time", "started_at")


def _read_status(run: JobRun, status: Status) -> bool:
    """Copy a reading into the record; True when something a user sees changed (new log lines included,
    also once the kept tail is full)."""
    rec = run.record
    if rec.state.terminal:  # the manager ended it (a cancel) while this reading was on its way: it stays so
        return False
    before = (rec.state, rec.queue_position, run.logs_seen, rec.inference_time)
    if status.state == "IN_PROGRESS" or (status.done and rec.state is not JobState.IN_PROGRESS):
        if rec.started_at is None:
            rec.started_at = utcnow()
        rec.state = JobState.IN_PROGRESS
    rec.queue_position = status.queue_position if status.state == "IN_QUEUE" else None
    if status.log_count != run.logs_seen:  # new lines: only the reading's bounded tail is looked at
        rec.logs = []
        rec.add_logs(str(entry.get("message", entry)) for entry in status.logs)
        run.logs_seen = status.log_count
    rec.inference_time = status.inference_time or rec.inference_time
    return (rec.state, rec.queue_position, run.logs_seen, rec.inference_time) != before


def _check_cancelled(rec: JobRecord, status: Status) -> None:
    if status.done and status.error_type == "request_cancelled":  # cancelled, maybe by another process whose
        # row update may not have landed yet: the result GET could only repeat this, so it is not sent
        raise JobCancelledError(f"request {rec.request_id} was cancelled", request_id=rec.request_id)


def apply_status(ledger: Ledger, run: JobRun, status: Status) -> None:
    """Copy a reading into the record; when something a user sees changed, note it (watchers are told at
    once, the store gets it in the next batch)."""
    if _read_status(run, status):
        ledger.note(run, *PROGRESS_FIELDS)
    _check_cancelled(run.record, status)


async def _stream(ledger: Ledger, run: JobRun, handle: RequestHandle) -> bool:
    """Follow by SSE if a stream slot is free and this job has not tried one yet; True once COMPLETED was
    seen (else the caller polls). One try per job: a server without streams costs one request, not one per
    poll."""
    slots = ledger.stream_slots
    if slots.locked() or run.streamed:
        return False
    run.streamed = True
    async with slots:
        try:
            statuses = ledger.client.stream_status(handle, poll_fallback=False)
            async with contextlib.aclosing(statuses):
                async for status in statuses:
                    apply_status(ledger, run, status)
                    if status.done:
                        return True
        except TransportError as exc:
            log.debug("status stream of %s: %s; polling", handle.request_id, exc)
    return False


async def _poll(ledger: Ledger, run: JobRun, handle: RequestHandle) -> None:
    """Poll at the pace of the job's phase, from the last reading on (the submit's answer counts; a resumed job
    has none, and most of those ended while no process followed them: read at once); switch to the stream as
    soon as a stream slot frees up."""
    pacer, failures = PollPacer(), 0
    rec = run.record
    if not run.resumed:
        await asyncio.sleep(pacer.next(rec.state.value, rec.queue_position))
    last_read = time.monotonic()
    lane = RESUME_LANE if run.resumed else "status"
    while True:
        if await _stream(ledger, run, handle):
            return
        try:
            status = await ledger.client.status(handle, lane=lane)
        except NotFoundError as exc:
            raise ResultExpiredError(
                f"fal no longer knows request {handle.request_id} ({exc}); results are kept 1 h after "
                "completion (6 min when 10 KB or more)", status_code=404, request_id=handle.request_id
            ) from exc
        except FalError as exc:
            if not transient(exc):
                raise
            unreadable = time.monotonic() - last_read
            if unreadable >= ledger.limits.unfollowable_seconds:  # fal no longer keeps what it may have made
                raise ResultExpiredError(
                    f"the status of request {handle.request_id} could not be read for "
                    f"{f'{unreadable:.0f} s' if unreadable < 120 else f'{unreadable / 60:.0f} min'} "
                    f"(last: {exc}); fal keeps results 1 h, so it is given up", request_id=handle.request_id,
                ) from exc
            failures += 1
            delay = transient_delay(failures)
            log.warning("status of %s failed (%s); trying again in %.0f s", handle.request_id, exc, delay)
            await asyncio.sleep(delay)
            continue
        failures, last_read, lane = 0, time.monotonic(), "status"
        apply_status(ledger, run, status)
        if status.done:
            return
        await asyncio.sleep(pacer.next(status.state, status.queue_position))


async def follow_step(ledger: Ledger, run: JobRun) -> None:
    """Until fal says COMPLETED: the SSE stream when a slot is free, else polling paced by the job's phase
    (which moves to a stream when one frees up)."""
    handle = handle_of(run.record)
    if not await _stream(ledger, run, handle):
        await _poll(ledger, run, handle)


async def result_step(ledger: Ledger, run: JobRun) -> None:
    """Fetch the result exactly once (recorded in the store first) and keep it."""
    rec = run.record
    if not ledger.begin_result_fetch(run):
        raise LostJob(rec.id)
    rec.result_fetches += 1
    for attempt in range(1, RESULT_ATTEMPTS + 1):
        try:
            rec.result = await ledger.client.result(handle_of(rec), lane=RESUME_LANE if run.resumed else "result")
            break
        except FalError as exc:  # a GET: asking again cannot make a second job
            if attempt == RESULT_ATTEMPTS or not transient(exc):
                raise
            log.warning("result of %s failed (%s); trying again", rec.request_id, exc)
            await asyncio.sleep(transient_delay(attempt))
    if media_items(rec.result or {}):  # kept before downloading, so a resume downloads without asking again
        ledger.persist(run, "result", "inference_time")


DOWNLOADS_PENDING = "downloads_pending"  # option: outputs that could not be written yet (disk full, read-only)


async def _download_one(ledger: Ledger, record: JobRecord, index: int, item: dict) -> tuple[str | None, bool]:
    """(the local path or None, whether it is worth trying again later: a local disk problem)."""
    try:
        dest = inside(ledger.outputs, output_name(record.id, index, item))
        if dest.exists() and dest.stat().st_size > 0:  # downloaded before a restart (writes are atomic)
            return str(dest), False
        async with ledger.download_slots:
            await ledger.client.download(item["url"], dest)
    except OSError as exc:  # no space, a read-only or vanished outputs folder: fal's result is kept
        log.warning("job %s: could not write output %d (%s); kept for a later wait() or resume()",
                    record.id, index, exc.strerror or exc)
        record.add_logs([f"download pending: {exc.strerror or exc} ({ledger.outputs})"])
        return None, True
    except FalError as exc:
        log.warning("job %s: could not download %s: %s", record.id, item["url"][:120], exc)
        record.add_logs([f"download failed: {exc}"])
        return None, False
    return str(dest), False


async def fetch_media(ledger: Ledger, record: JobRecord) -> tuple[list[str], int]:
    """Save the result's media (at most ``limits.max_outputs``) into the outputs folder, concurrently (bounded);
    returns the paths saved and how many could not be written here (worth retrying)."""
    items = media_items(record.result or {})
    cap = ledger.limits.max_outputs
    if len(items) > cap and not any("not downloaded" in line for line in record.logs):
        record.add_logs([f"{len(items) - cap} more outputs not downloaded (FAL_NOTEBOOK_MAX_OUTPUTS={cap}); "
                         "their URLs are in the result"])
    done = await asyncio.gather(*(_download_one(ledger, record, n, item) for n, item in enumerate(items[:cap])))
    return [path for path, _ in done if path], sum(1 for _, pending in done if pending)


def note_pending(record: JobRecord, pending: int) -> None:
    options = {k: v for k, v in record.options.items() if k != DOWNLOADS_PENDING}
    record.options = {**options, DOWNLOADS_PENDING: pending} if pending else options


async def download_step(ledger: Ledger, run: JobRun) -> None:
    """The result's media into the outputs folder; what the disk refused stays pending (the job completes)."""
    had_pending = DOWNLOADS_PENDING in run.record.options
    files, pending = await fetch_media(ledger, run.record)
    run.record.files = files  # stored with the final state, in the same write
    note_pending(run.record, pending)
    if pending or had_pending:
        ledger.persist(run, "options", "files", "logs")


async def drive(ledger: Ledger, run: JobRun) -> Outcome:
    """Take a claimed job from wherever its row stands to the point where only its final state is left to
    record; returns that outcome (``LOST`` when another process has the job now)."""
    rec = run.record
    try:
        if rec.request_id is None and needs_reconcile(rec):
            await reconcile_step(ledger, run)
        elif rec.request_id is None and rec.submit_attempts and await last_look(ledger, run):
            pass  # a resubmit whose request fal did list after all: adopted, followed, not sent again
        elif rec.request_id is None:
            try:
                await submit_step(ledger, run)
            except UnknownOutcomeError as exc:
                log.warning("job %s: %s; looking for it in fal's request history", rec.id, exc)
                await reconcile_step(ledger, run)
        if rec.result is None:
            await follow_step(ledger, run)
            await result_step(ledger, run)
        await download_step(ledger, run)
    except Exception as exc:  # every failure ends the job visibly (a bug too), never leaves it hanging
        return outcome_of(exc, rec.id)
    return COMPLETED
