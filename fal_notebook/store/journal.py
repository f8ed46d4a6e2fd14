"""An append-only record of every job row written, beside the SQLite file (``jobs.journal``, 0600).

Why: a corrupt or truncated database can be moved aside and replaced, but rows on a damaged page — above all
the table's root page, which defeats every SQL read of the table — cannot be read back with SQL, and SQLite's
page-level ``.recover`` is not reachable from Python's ``sqlite3`` module. A request fal billed must not be
forgotten because of a bad sector, so each write of a job row is also appended here as one JSON line
(``{"id", "new", "set": {column: stored value}}``): replaying the lines rebuilds every row, whatever happened to
the database. It is a backup: a failure to append is logged and never blocks the store. A torn last line (a
crash mid-append) is skipped on replay.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["Journal", "SKIPPED_COLUMNS"]

log = logging.getLogger("fal_notebook")
SKIPPED_COLUMNS = frozenset({"owner", "lease_until"})  # leases say who follows a job now, nothing to restore


class Journal:
    """Appends row writes to ``path``; :meth:`replay` folds them back into rows (column → stored value)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._warned = False

    def append(self, job_id: str, values: dict[str, Any], *, new: bool = False) -> None:
        kept = {name: value for name, value in values.items() if name not in SKIPPED_COLUMNS}
        line = json.dumps({"id": job_id, "new": new, "set": kept}, separators=(",", ":"), default=str) + "\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            if not self._warned:
                log.warning("the job journal %s cannot be written (%s); rows are kept in the store only",
                            self.path, exc)
                self._warned = True

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
