"""The durable job store: one SQLite row per request, kept after it finishes (history).

Why SQLite (stdlib) and not a JSON file: the original's ``fal-pending.json`` had no lock and no atomic write and
was silently wiped when corrupt. SQLite in WAL mode gives atomic commits, readers that never block the writer,
and ``BEGIN IMMEDIATE`` transactions that let two processes claim jobs without double-processing one.

Rules kept here: the file is 0600 in a 0700 folder; data URIs never sit inline (their bytes go to
``inputs/<sha256>`` beside the database); the API key is never written; a corrupt database is moved aside under a
timestamped name, never deleted. Nothing here knows about HTTP or display.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, StoreError
from . import inputs as _inputs
from .journal import Journal
from .records import (
    COLUMNS,
    UNFINISHED,
    JobRecord,
    JobState,
    from_row,
    new_job_id,
    new_owner,
    owner_alive,
    to_sql,
    utcnow,
)
from .schema import MIGRATIONS

__all__ = ["JobState", "JobRecord", "JobStore", "UNFINISHED", "new_job_id", "new_owner", "utcnow"]

log = logging.getLogger("fal_notebook")
BUSY_TIMEOUT_MS = 15_000
_SEARCHED = ("id", "request_id", "endpoint", "arguments", "label", "note")


def _private_file(path: Path) -> None:
    """Create the folder (0700) and the file (0600) before SQLite opens it, so it never exists world-readable."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes creating the store at once may briefly see "locked" here, and SQLite's
    busy handler does not cover this pragma, so retry for up to the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def _store_errors(store: JobStore) -> Iterator[None]:
    """SQLite's operational failures (read-only, disk full, locked past the busy timeout) as ``StoreError``."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        what = "is read-only here" if store.read_only or "readonly" in str(exc) else "cannot be written"
        raise StoreError(f"the job store {store.path} {what}: {exc}") from exc


def _rows_readable(conn: sqlite3.Connection) -> tuple[dict[str, dict[str, Any]], int | None]:
    """Rows of a damaged database that SQL can still read (a bad page skips only its rows), and the count the
    database claims (``None`` when even that is unreadable)."""
    rows: dict[str, dict[str, Any]] = {}
    try:
        claimed = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    except sqlite3.DatabaseError:
        claimed = None
    try:
        top = conn.execute("SELECT max(rowid) FROM jobs").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = 0
    step = 64
    for start in range(1, top + 1, step):
        try:
            batch = conn.execute("SELECT * FROM jobs WHERE rowid BETWEEN ? AND ?", (start, start + step - 1))
            found = batch.fetchall()
        except sqlite3.DatabaseError:
            found = []
            for rowid in range(start, start + step):
                try:
                    found += conn.execute("SELECT * FROM jobs WHERE rowid = ?", (rowid,)).fetchall()
                except sqlite3.DatabaseError:
                    continue
        for row in found:
            rows[row["id"]] = dict(row)
    return rows, claimed


def _salvage(aside: Path, conn: sqlite3.Connection, journal: Journal) -> dict[str, Any]:
    """Copy every job that can be got back (SQL-readable rows of the damaged file, else the journal) into the
    fresh store ``conn``; returns the counts: saved, lost (known to exist but not restored)."""
    try:
        old = sqlite3.connect(f"{aside.resolve().as_uri()}?mode=ro", uri=True)
        old.row_factory = sqlite3.Row
        readable, claimed = _rows_readable(old)
        old.close()
    except sqlite3.Error:
        readable, claimed = {}, None
    journaled = journal.replay()
    saved = 0
    for job_id in dict.fromkeys([*readable, *journaled]):
        values = {**journaled.get(job_id, {}), **readable.get(job_id, {})}
        values = {k: v for k, v in values.items() if k in COLUMNS}
        if not all(values.get(k) is not None for k in ("id", "endpoint", "arguments", "state", "created_at",
                                                       "updated_at", "origin")):
            continue
        names = ", ".join(values)
        try:
            saved += conn.execute(f"INSERT OR IGNORE INTO jobs ({names}) VALUES ({', '.join('?' * len(values))})",
                                  list(values.values())).rowcount
        except sqlite3.DatabaseError:
            continue
    known = max(claimed or 0, len(set(readable) | set(journaled)))
    return {"saved": saved, "lost": max(0, known - saved), "from": str(aside)}


class JobStore:
    """Job rows in ``path`` (``$FAL_NOTEBOOK_HOME/jobs.sqlite3``). Safe to share between threads and processes.

    One connection per store guarded by a lock; every write is its own transaction. Claims use ``BEGIN
    IMMEDIATE`` so two processes never both own a job.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.inputs_dir = self.path.parent / "inputs"
        self.journal = Journal(self.path.with_name(self.path.name + ".journal"))
        self.read_only = False
        self.salvage: dict[str, Any] | None = None  # {"saved", "lost", "from"} when a corrupt store was salvaged
        self._lock = threading.RLock()
        self._conn = self._open()

    # -- opening ---------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        try:
            _private_file(self.path)
            return self._connect()
        except (OSError, sqlite3.OperationalError) as exc:  # locked, unreadable, read-only: not corruption
            conn = self._open_read_only()
            if conn is None:
                raise StoreError(f"the job store {self.path} cannot be opened: {exc}") from exc
            log.warning("the job store %s is read-only here (%s): reading works, changes are refused",
                        self.path, exc)
            return conn
        except sqlite3.DatabaseError as exc:
            aside = self._move_aside(exc)
            _private_file(self.path)
            conn = self._connect()
            self.salvage = _salvage(aside, conn, self.journal)
            log.warning("the job store %s was corrupt (%s); moved it to %s; %d job(s) saved into a new store, "
                        "%d lost", self.path, exc, aside, self.salvage["saved"], self.salvage["lost"])
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('salvage', ?)",
                         (json.dumps(self.salvage),))
            return conn

    def _open_read_only(self) -> sqlite3.Connection | None:
        """A read-only connection (a home folder this user cannot write): listing and showing jobs still work."""
        if not self.path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                   isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("SELECT count(*) FROM jobs").fetchone()
        except sqlite3.Error:
            return None
        if version != len(MIGRATIONS):
            conn.close()
            return None
        self.read_only = True
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(f"the job store {self.path} has schema version {version}, newer than this "
                                  f"fal_notebook knows ({len(MIGRATIONS)}); upgrade fal_notebook")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _move_aside(self, exc: Exception) -> Path:
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            extra = self.path.with_name(self.path.name + suffix)
            if extra.exists():
                os.replace(extra, aside.with_name(aside.name + suffix))
        return aside

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        """``"ok"`` when SQLite finds nothing wrong (``PRAGMA integrity_check``)."""
        with self._lock:
            return self._conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- transactions ----------------------------------------------------------------------------------
    def _write(self, sql: str, params: Iterable[Any] = ()) -> int:
        with self._lock, _store_errors(self):
            return self._conn.execute(sql, tuple(params)).rowcount

    def _immediate(self, body):
        """Run ``body(conn)`` inside ``BEGIN IMMEDIATE`` (the write lock is taken up front, so no upgrade races)."""
        with self._lock, _store_errors(self):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                value = body(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return value

    def _journal(self, job_id: str, values: dict[str, Any], *, new: bool = False) -> None:
        self._journal_all([(job_id, values)], new=new)

    def _journal_all(self, entries: list[tuple[str, dict[str, Any]]], *, new: bool = False) -> None:
        """Record row writes in the journal (one append for all); compact it (one line per job, from the rows)
        once it is too big."""
        self.journal.append_all(entries, new=new)
        if self.journal.oversized:
            def rows(conn: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
                return [(row["id"], dict(row)) for row in conn.execute("SELECT * FROM jobs")]

            try:
                self.journal.rewrite(self._immediate(rows))  # under the write lock: no row changes meanwhile
            except StoreError as exc:  # the journal is a backup: a failed compaction must not fail the write
                log.warning("the job journal %s was not compacted: %s", self.journal.path, exc)

    # -- inputs ----------------------------------------------------------------------------------------
    def store_inputs(self, arguments: Any) -> Any:
        """``arguments`` with every data URI replaced by a reference to its bytes under ``inputs/``."""
        return _inputs.externalize(arguments, self.inputs_dir)

    def restore_inputs(self, arguments: Any) -> Any:
        """The inverse of :meth:`store_inputs`: rebuild data URIs for a re-submit."""
        return _inputs.internalize(arguments)

    def keep_uploads(self, arguments: dict, uploads: _inputs.Uploads) -> tuple[dict, list[tuple[str, str]]]:
        """Local paths made absolute, bytes and images kept under ``inputs/`` (0600) and put in place: a
        re-submit after a crash finds every upload on disk."""
        return _inputs.keep_uploads(arguments, uploads, self.inputs_dir)

    # -- rows ------------------------------------------------------------------------------------------
    def insert(self, record: JobRecord) -> JobRecord:
        """Insert a new row; ``record.arguments`` are externalized first (the record is updated in place)."""
        return self.insert_all([record])[0]

    def insert_all(self, records: Iterable[JobRecord]) -> list[JobRecord]:
        """Insert new rows in ONE transaction (a group of 200 is one commit, not 200): all or none; each
        record's ``arguments`` are externalized first (updated in place). Raises if any id exists."""
        records = list(records)
        for record in records:
            record.arguments = self.store_inputs(record.arguments)
        names, marks = ", ".join(COLUMNS), ", ".join("?" for _ in COLUMNS)
        rows = [{n: to_sql(n, getattr(record, n)) for n in COLUMNS} for record in records]

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(f"INSERT INTO jobs ({names}) VALUES ({marks})", [list(v.values()) for v in rows])

        if records:
            self._immediate(body)
            self._journal_all([(record.id, values) for record, values in zip(records, rows, strict=True)],
                              new=True)
        return records

    def save(self, record: JobRecord, names: Iterable[str], *, owner: str | None = None,
             release: bool = False) -> bool:
        """Write these fields of ``record``; with ``owner``, only while that owner holds the job."""
        values = {n: getattr(record, n) for n in names}
        return self.update(record.id, owner=owner, release=release, **values)

    def save_many(self, items: Iterable[tuple[JobRecord, Iterable[str]]], *, owner: str) -> set[str]:
        """Write fields of many records in one transaction, each only while ``owner`` holds it and it is
        unfinished (as :meth:`save`); returns the ids that were not written (lost to another process)."""
        statements = [self._update_sql(record.id, {n: getattr(record, n) for n in names}, owner=owner)
                      for record, names in items]
        if not statements:
            return set()

        def body(conn: sqlite3.Connection) -> set[str]:
            return {job_id for job_id, sql, params, _ in statements if conn.execute(sql, params).rowcount != 1}

        lost = self._immediate(body)
        for job_id, _sql, _params, stored in statements:
            if job_id not in lost:
                self._journal(job_id, stored)
        return lost

    def update(self, job_id: str, *, owner: str | None = None, unfinished: bool = False, release: bool = False,
               **values: Any) -> bool:
        """Set columns of one row (``updated_at`` too).

        With ``owner``, nothing changes unless that owner holds the job and it is unfinished (a job another
        process finished or cancelled stays as it is); ``unfinished`` alone checks only the latter;
        ``release`` also drops the lease in the same write.
        """
        if release:
            values.update(owner=None, lease_until=None)
        _, sql, params, stored = self._update_sql(job_id, values, owner=owner, unfinished=unfinished)
        written = self._write(sql, params) == 1
        if written:
            self._journal(job_id, stored)
        return written

    def _update_sql(self, job_id: str, values: dict[str, Any], *, owner: str | None = None,
                    unfinished: bool = False) -> tuple[str, str, list[Any], dict[str, Any]]:
        if "arguments" in values:
            values["arguments"] = self.store_inputs(values["arguments"])
        values.setdefault("updated_at", utcnow())
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown job columns: {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in values)
        stored = {n: to_sql(n, v) for n, v in values.items()}
        params = [*stored.values(), job_id]
        where = "id = ?"
        if owner is not None:
            where += " AND owner = ?"
            params.append(owner)
        if owner is not None or unfinished:
            where += f" AND state IN ({', '.join('?' for _ in UNFINISHED)})"
            params += UNFINISHED
        return job_id, f"UPDATE jobs SET {sets} WHERE {where}", params, stored

    def reopen(self, job_id: str, from_state: JobState, **values: Any) -> bool:
        """Set columns of a job that is in ``from_state`` (a finished job going again: a resubmit), dropping its
        lease; False when it is no longer in that state (two resubmits race: one wins)."""
        values.update(owner=None, lease_until=None, updated_at=utcnow())
        sets = ", ".join(f"{name} = ?" for name in values)
        stored = {n: to_sql(n, v) for n, v in values.items()}
        written = self._write(f"UPDATE jobs SET {sets} WHERE id = ? AND state = ?",
                              [*stored.values(), job_id, JobState(from_state).value]) == 1
        if written:
            self._journal(job_id, stored)
        return written

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return from_row(row) if row else None

    def find(self, ref: str) -> JobRecord:
        """A job by local id, request id, or a unique prefix of either. ``NotFoundError`` otherwise."""
        if not isinstance(ref, str):
            raise NotFoundError(f"a job id is text (a local id, a fal request id or a prefix), not {ref!r}")
        ref = ref.strip()
        if not ref:
            raise NotFoundError("an empty job id")
        queries = [
            ("SELECT * FROM jobs WHERE id = ? OR request_id = ?", (ref, ref)),
            ("SELECT * FROM jobs WHERE substr(id, 1, ?) = ? OR substr(request_id, 1, ?) = ? LIMIT 6",
             (len(ref), ref, len(ref), ref)),
        ]
        for sql, params in queries:
            with self._lock:
                rows = self._conn.execute(sql, params).fetchall()
            if len(rows) == 1:
                return from_row(rows[0])
            if len(rows) > 1:
                shown = ", ".join(row["id"] for row in rows[:5])
                raise NotFoundError(f"{ref!r} matches several jobs ({shown}…); give more characters")
        raise NotFoundError(f"no job {ref!r} in {self.path}; `fal-notebook list --all` shows the known ones")

    def find_request(self, request_id: str) -> JobRecord | None:
        """The job holding exactly this fal request id, or ``None``."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
        return from_row(row) if row else None

    def list(self, *, origin: str | None = None, endpoint: str | None = None,
             states: Iterable[JobState | str] | None = None, limit: int | None = None,
             since: datetime | None = None, label: str | None = None, min_rating: int | None = None,
             text: str | None = None, ids: Iterable[str] | None = None) -> list[JobRecord]:
        """Rows, newest first, filtered by origin, endpoint, states, creation time (``since``, inclusive), label,
        rating, text (in the id, model, arguments, label or note; case-insensitive) and ids."""
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("created_at >= ?")
            params.append(to_sql("created_at", since))
        if label is not None:
            where.append("label = ?")
            params.append(label)
        if min_rating is not None:
            where.append("rating >= ?")
            params.append(int(min_rating))
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")")
            params.extend([pattern] * len(_SEARCHED))
        if ids is not None:
            wanted_ids = list(ids)
            where.append(f"id IN ({', '.join('?' for _ in wanted_ids) or 'NULL'})")
            params.extend(wanted_ids)
        if origin is not None:
            where.append("origin = ?")
            params.append(origin)
        if endpoint is not None:
            where.append("endpoint = ?")
            params.append(endpoint)
        if states is not None:
            wanted = [JobState(s).value for s in states]
            where.append(f"state IN ({', '.join('?' for _ in wanted)})")
            params.extend(wanted)
        sql = f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [from_row(row) for row in rows]

    def with_pending_downloads(self, origin: str | None = None) -> list[JobRecord]:
        """COMPLETED jobs whose outputs could not all be written (``downloads_pending`` in their options)."""
        sql = "SELECT * FROM jobs WHERE state = ? AND options LIKE '%\"downloads_pending\"%'"
        params: list[Any] = [JobState.COMPLETED.value]
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [from_row(row) for row in rows]

    def unfinished(self, origin: str | None = None) -> list[JobRecord]:
        return self.list(origin=origin, states=UNFINISHED)

    # -- leases ----------------------------------------------------------------------------------------
    def claim(self, job_id: str, owner: str, lease: float) -> JobRecord | None:
        """Take the job for ``owner`` for ``lease`` seconds, unless a live owner holds an unexpired lease.

        Returns the claimed row, or ``None`` (finished, unknown, or held by someone alive).
        """
        claimed = self.claim_many([job_id], owner, lease)
        return claimed[0] if claimed else None

    def claim_many(self, job_ids: Iterable[str], owner: str, lease: float) -> list[JobRecord]:
        """:meth:`claim` for many jobs in one transaction (a resume of 1,000 jobs is one write, not 1,000);
        returns the rows claimed, in the order asked."""
        ids = list(job_ids)

        def take(conn: sqlite3.Connection, job_id: str) -> JobRecord | None:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["state"] not in UNFINISHED:
                return None
            held_by, until = row["owner"], row["lease_until"] or 0.0
            if held_by and held_by != owner and until > time.time() and owner_alive(held_by):
                return None
            conn.execute("UPDATE jobs SET owner = ?, lease_until = ? WHERE id = ?",
                         (owner, time.time() + lease, job_id))
            record = from_row(row)
            record.owner, record.lease_until = owner, time.time() + lease
            return record

        def body(conn: sqlite3.Connection) -> list[JobRecord]:
            return [record for job_id in ids if (record := take(conn, job_id)) is not None]

        return self._immediate(body) if ids else []

    def renew(self, owner: str, job_ids: Iterable[str], lease: float) -> set[str]:
        """Extend ``owner``'s leases; returns the ids it still holds (a lost one was taken over)."""
        ids = list(job_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)

        def body(conn: sqlite3.Connection) -> set[str]:
            conn.execute(f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND id IN ({marks})",
                         [time.time() + lease, owner, *ids])
            rows = conn.execute(f"SELECT id FROM jobs WHERE owner = ? AND id IN ({marks})", [owner, *ids])
            return {row["id"] for row in rows}

        return self._immediate(body)

    def release(self, owner: str, job_ids: Iterable[str] | None = None) -> None:
        """Give up leases so another process may take the jobs at once."""
        if job_ids is None:
            self._write("UPDATE jobs SET owner = NULL, lease_until = NULL WHERE owner = ?", (owner,))
            return
        for job_id in job_ids:
            self._write("UPDATE jobs SET owner = NULL, lease_until = NULL WHERE owner = ? AND id = ?",
                        (owner, job_id))

    def begin_result_fetch(self, job_id: str, owner: str) -> bool:
        """Record that ``owner`` fetches the result now; ``False`` if it lost the job or it has a result."""

        def body(conn: sqlite3.Connection) -> bool:
            changed = conn.execute(
                "UPDATE jobs SET result_fetches = result_fetches + 1 WHERE id = ? AND owner = ? "
                f"AND result IS NULL AND lease_until > ? AND state IN ({', '.join('?' for _ in UNFINISHED)})",
                (job_id, owner, time.time(), *UNFINISHED)).rowcount
            return changed == 1

        return self._immediate(body)

    # -- cells -----------------------------------------------------------------------------------------
    def remember_cell_run(self, origin: str, cell_key: str, job_ids: Iterable[str]) -> None:
        """Record that the cell ``cell_key`` of ``origin`` submitted ``job_ids`` (replacing an older run)."""
        self._write("INSERT OR REPLACE INTO cell_runs (origin, cell_key, job_ids, created_at) VALUES (?, ?, ?, ?)",
                    (origin, cell_key, json.dumps(list(job_ids)), utcnow().isoformat()))

    def cell_run(self, origin: str, cell_key: str) -> list[str]:
        """The job ids the cell's last run submitted; empty when it never ran (or the store forgot)."""
        with self._lock:
            row = self._conn.execute("SELECT job_ids FROM cell_runs WHERE origin = ? AND cell_key = ?",
                                     (origin, cell_key)).fetchone()
        return [str(i) for i in json.loads(row["job_ids"])] if row else []

    # -- lineage ---------------------------------------------------------------------------------------
    def add_parents(self, child: str, parents: Iterable[str], kind: str = "input") -> None:
        """Record that ``child`` used the results of ``parents`` (a job is never its own parent)."""
        rows = [(child, parent, kind) for parent in dict.fromkeys(parents) if parent != child]
        if rows:
            with self._lock:
                self._conn.executemany("INSERT OR IGNORE INTO lineage (child, parent, kind) VALUES (?, ?, ?)",
                                       rows)

    def parents(self, job_id: str) -> list[tuple[str, str]]:
        """``(parent id, kind)`` of one job, oldest parent first."""
        return self._related("SELECT l.parent, l.kind FROM lineage l JOIN jobs j ON j.id = l.parent "
                             "WHERE l.child = ? ORDER BY j.created_at", job_id)

    def children(self, job_id: str) -> list[tuple[str, str]]:
        """``(child id, kind)`` of one job, oldest child first."""
        return self._related("SELECT l.child, l.kind FROM lineage l JOIN jobs j ON j.id = l.child "
                             "WHERE l.parent = ? ORDER BY j.created_at", job_id)

    def _related(self, sql: str, job_id: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(row[0], row[1]) for row in self._conn.execute(sql, (job_id,))]

    def producers(self, values: Iterable[str]) -> list[str]:
        """Ids of the stored jobs that produced any of ``values``: a local output path or a result URL."""
        wanted = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
        if not wanted:
            return []
        marks = ", ".join("?" for _ in wanted)
        sql = (f"SELECT j.id FROM jobs j, json_each(j.files) f WHERE j.files IS NOT NULL AND f.value IN ({marks}) "
               f"UNION SELECT j.id FROM jobs j, json_tree(j.result) t WHERE j.result IS NOT NULL "
               f"AND t.key = 'url' AND t.value IN ({marks})")
        with self._lock:
            return [row[0] for row in self._conn.execute(sql, wanted + wanted)]

    # -- meta ------------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def insert_many(self, records: Iterable[JobRecord], meta: dict[str, str]) -> int:
        """Insert rows whose request id is not yet known, and meta keys, in one transaction. Returns the count."""
        records = list(records)
        for record in records:
            record.arguments = self.store_inputs(record.arguments)
        names, marks = ", ".join(COLUMNS), ", ".join("?" for _ in COLUMNS)

        written: list[tuple[str, dict[str, Any]]] = []

        def body(conn: sqlite3.Connection) -> int:
            for record in records:
                values = {n: to_sql(n, getattr(record, n)) for n in COLUMNS}
                if conn.execute(f"INSERT OR IGNORE INTO jobs ({names}) VALUES ({marks})",
                                list(values.values())).rowcount:
                    written.append((record.id, values))
            for key, value in meta.items():
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return len(written)

        count = self._immediate(body)
        for job_id, values in written:
            self._journal(job_id, values, new=True)
        return count

    def __repr__(self) -> str:
        return f"<JobStore {self.path}>"
