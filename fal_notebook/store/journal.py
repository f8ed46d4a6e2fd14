"""An append-only record of every job row written, beside the SQLite file (``jobs.journal``, 0600).

Why: a corrupt or truncated database can be moved aside and replaced, but rows on a damaged page — above all
the table's root page, which defeats every SQL read of the table — cannot be read back with SQL, and SQLite's
page-level ``.recover`` is not reachable from Python's ``sqlite3`` module. A request fal billed must not be
forgotten because of a bad sector, so each write of a job row is also appended here as one JSON line
(``{"id", "new", "set": {column: stored value}}``): replaying the lines rebuilds every row, whatever happened to
the database. It is a backup: a failure to append is logged and never blocks the store. A torn last line (a
crash mid-append) is skipped on replay.

It is bounded: once it holds more than :attr:`Journal.compact_at` bytes, the store rewrites it as one line per
job, read from the (healthy) database under its write lock, so it never outgrows about one copy of the rows.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["Journal", "SKIPPED_COLUMNS"]

log = logging.getLogger("fal_notebook")
SKIPPED_COLUMNS = frozenset({"owner", "lease_until"})  # leases say who follows a job now, nothing to restore
COMPACT_AT = 64 * 1024 * 1024  # bytes of journal before it is rewritten as one line per job


class Journal:
    """Appends row writes to ``path``; :meth:`replay` folds them back into rows (column → stored value)."""

    def __init__(self, path: Path, compact_at: int | None = None) -> None:
        self.path = path
        self.compact_at = COMPACT_AT if compact_at is None else compact_at
        self._floor = 0  # the size right after the last compaction: grow to twice that before compacting again
        self._warned = False
        try:
            self._size = path.stat().st_size  # other processes append too: re-read when it looks too big
        except OSError:
            self._size = 0

    @property
    def oversized(self) -> bool:
        """True when the journal has grown past :attr:`compact_at` and twice its last compacted size (checked on
        disk, where every process appends)."""
        limit = max(self.compact_at, 2 * self._floor)
        if self._size <= limit:
            return False
        try:
            self._size = self.path.stat().st_size
        except OSError:
            self._size = 0
        return self._size > limit

    def append(self, job_id: str, values: dict[str, Any], *, new: bool = False) -> None:
        self.append_all([(job_id, values)], new=new)

    def append_all(self, entries: Iterable[tuple[str, dict[str, Any]]], *, new: bool = False) -> None:
        """One line per ``(job id, values)``, written in one append (a batch of rows is one write call)."""
        text = "".join(self._line(job_id, values, new) for job_id, values in entries)
        if text:
            self._size += self._write(text, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self.path)

    def rewrite(self, rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Replace the journal with one line per job (``rows``: id and every stored column), atomically."""
        temp = self.path.with_name(self.path.name + ".compacting")
        data = "".join(self._line(job_id, values, True) for job_id, values in rows)
        if self._write(data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, temp, sync=True) == len(data.encode()):
            try:
                os.replace(temp, self.path)
                self._size = self._floor = len(data.encode())
            except OSError as exc:
                log.warning("the job journal %s could not be compacted: %s", self.path, exc)

    @staticmethod
    def _line(job_id: str, values: dict[str, Any], new: bool) -> str:
        kept = {name: value for name, value in values.items() if name not in SKIPPED_COLUMNS}
        return json.dumps({"id": job_id, "new": new, "set": kept}, separators=(",", ":"), default=str) + "\n"

    def _write(self, text: str, flags: int, path: Path, *, sync: bool = False) -> int:
        """Bytes written (0 when the file cannot be written: logged once, never raised)."""
        data = text.encode("utf-8")
        try:
            fd = os.open(path, flags, 0o600)
            try:
                os.write(fd, data)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            return len(data)
        except OSError as exc:
            if not self._warned:
                log.warning("the job journal %s cannot be written (%s); rows are kept in the store only",
                            self.path, exc)
                self._warned = True
            return 0

    def replay(self) -> dict[str, dict[str, Any]]:
        """Every job id the journal knows, with its latest stored values (torn or foreign lines skipped)."""
        rows: dict[str, dict[str, Any]] = {}
        try:
            handle = self.path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            return rows
        with handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    job_id, values = entry["id"], entry["set"]
                except (ValueError, KeyError, TypeError):
                    continue
                if isinstance(job_id, str) and isinstance(values, dict):
                    rows.setdefault(job_id, {"id": job_id}).update(values)
        return rows
