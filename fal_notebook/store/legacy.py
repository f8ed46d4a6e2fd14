"""Import the original skill's ``fal-pending.json`` into the job store, once.

The original wiped this file when it could not parse it. Here the file is only ever read: a corrupt one stays
byte-identical and a warning says where it is and what to do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import counted
from .db import JobRecord, JobState, JobStore, new_job_id, utcnow

__all__ = ["legacy_pending_path", "import_legacy"]

log = logging.getLogger("fal_notebook")
DEFAULT_LEGACY = Path("~/.openclaw/workspace/fal-pending.json")
UrlBuilder = Callable[[str, str], tuple[str, str, str]]


def legacy_pending_path(env: Mapping[str, str] | None = None) -> Path:
    """``$FAL_PENDING_FILE`` or ``~/.openclaw/workspace/fal-pending.json``."""
    env = os.environ if env is None else env
    return Path(env.get("FAL_PENDING_FILE") or DEFAULT_LEGACY).expanduser()


def _parse_time(value: Any) -> datetime:
    """The original wrote naive ``utcnow().isoformat()``; read it as UTC."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return utcnow()
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _entries(raw: bytes) -> list[dict]:
    """The ``requests`` list, or ``ValueError`` saying what is wrong with the file."""
    document = json.loads(raw.decode("utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("requests"), list):
        raise ValueError('expected {"requests": [...]}')
    entries = document["requests"]
    for number, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("request_id"), str)
                and isinstance(entry.get("model_id"), str)):
            raise ValueError(f"entry {number} lacks a request_id or model_id string")
    return entries


def _record(entry: dict, urls: UrlBuilder | None) -> JobRecord:
    result = entry.get("result") if isinstance(entry.get("result"), dict) else None
    record = JobRecord(
        id=new_job_id(), endpoint=entry["model_id"], request_id=entry["request_id"],
        arguments=entry.get("input") if isinstance(entry.get("input"), dict) else {},
        state=JobState.COMPLETED if result is not None else JobState.IN_QUEUE,
        queue_position=entry.get("queue_position") if isinstance(entry.get("queue_position"), int) else None,
        created_at=_parse_time(entry.get("submitted_at")), result=result,
        origin="cli", tags=["legacy"], options={"validate": False},
    )
    record.submitted_at = record.created_at
    if result is not None:
        record.finished_at = _parse_time(entry.get("updated_at"))
    if urls is not None:
        record.status_url, record.response_url, record.cancel_url = urls(record.endpoint, record.request_id)
    return record


def _warn_corrupt(store: JobStore, path: Path, raw: bytes, problem: Exception) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    key = f"legacy_corrupt:{path}"
    level = logging.DEBUG if store.meta(key) == digest else logging.WARNING
    log.log(level, "the legacy pending file %s cannot be read (%s); it was left untouched and nothing was "
            "imported. Fix or move it, then run `fal-notebook list --all` to import it", path, problem)
    store.set_meta(key, digest)


def import_legacy(store: JobStore, path: Path | None = None, *, urls: UrlBuilder | None = None) -> int:
    """Import ``path`` once (remembered in the store's meta table). Returns how many jobs were added."""
    path = (path or legacy_pending_path()).expanduser()
    key = f"legacy_import:{path.resolve()}"
    if store.meta(key) is not None or not path.is_file():
        return 0
    raw = path.read_bytes()
    try:
        entries = _entries(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        _warn_corrupt(store, path, raw, exc)
        return 0
    records = [_record(entry, urls) for entry in entries]
    note = json.dumps({"at": utcnow().isoformat(), "entries": len(entries),
                       "sha256": hashlib.sha256(raw).hexdigest()})
    count = store.insert_many(records, {key: note})
    log.info("imported %s from the legacy pending file %s (it was not changed)", counted(count, "job"), path)
    return count
