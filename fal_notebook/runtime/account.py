"""The account as fal sees it: what jobs cost (spend), fal's own usage figures, past requests made anywhere
(import-history), and fal's whole model catalogue (search).

Each call goes through the manager's queue-client session (same connections, retries, timeouts and key rules)
on the portal loop, and is bounded by the platform client's page and item limits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..catalog import pricing as rules
from ..errors import AuthError, FalError, UsageError
from ..store.records import JobRecord, JobState, new_job_id

if TYPE_CHECKING:
    from ..client.platform import AsyncPlatformClient
    from ..client.platform_wire import RequestItem
    from .manager import JobManager

__all__ = ["parse_since", "spend", "import_history", "search_models", "platform_client", "HISTORY_ORIGIN",
           "PLATFORM_TIMEOUT"]

log = logging.getLogger("fal_notebook")
HISTORY_ORIGIN = "fal-history"  # jobs brought in from fal's request history
PLATFORM_TIMEOUT = 120.0  # one whole platform call (every page), at most
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``12h``, ``30m``, ``2w`` (ago) or an ISO date → an aware UTC time; ``None``/"" → ``None``."""
    if text is None or not str(text).strip():
        return None
    now = now or datetime.now(UTC)
    match = _SINCE.match(str(text))
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
    try:
        value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: use a span such as 7d, 12h, 30m, 2w, or a date such as "
                         "2026-01-31") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


SEARCH_TIMEOUT = 15.0  # one page of a model search; offline, the bundled models show after one retry


def platform_client(manager: JobManager, *, quick: bool = False) -> AsyncPlatformClient:
    """A platform client on the manager's queue-client session; ``quick``: one retry and a short timeout, for
    calls whose failure has a fallback (the model search)."""
    from ..client.platform import AsyncPlatformClient
    from ..client.retry import RetryPolicy

    if quick:
        return AsyncPlatformClient(manager.settings, session=manager.client.session, timeout=SEARCH_TIMEOUT,
                                   retry=RetryPolicy(max_attempts=2))
    return AsyncPlatformClient(manager.settings, session=manager.client.session)


def _call(manager: JobManager, coro: Any) -> Any:
    return manager.portal.start().call(coro, timeout=PLATFORM_TIMEOUT)


# ---------------------------------------------------------------------------------------------- spend


def _record_cost(rec: JobRecord) -> float | None:
    return rules.cost_of(rec.estimate, rec.state.value, rec.result)


def spend(manager: JobManager, *, since: datetime | None = None, all: bool = False,  # noqa: A002
          usage: bool = True) -> dict[str, Any]:
    """What this origin's jobs (every job with ``all``) cost since ``since``, per model, from their estimates;
    with ``usage`` also fal's own figures (``/models/usage``) when the key may read them."""
    rows = manager.store.list(origin=None if all else manager.origin, since=since)
    per_model: dict[str, dict[str, Any]] = {}
    for rec in rows:
        entry = per_model.setdefault(rec.endpoint, {"model": rec.endpoint, "jobs": 0, "cost": 0.0,
                                                     "pending": 0.0, "unpriced": 0, "currency": None})
        entry["jobs"] += 1
        cost = _record_cost(rec)
        if rec.estimate:
            entry["currency"] = entry["currency"] or rec.estimate.get("currency")
        if cost is not None:
            entry["cost"] = round(entry["cost"] + cost, 9)
        elif rec.estimate and not rec.state.terminal:
            entry["pending"] = round(entry["pending"] + float(rec.estimate["total"]), 9)
        else:
            entry["unpriced"] += 1
    models = sorted(per_model.values(), key=lambda e: (-e["cost"], e["model"]))
    currencies = {e["currency"] for e in models if e["currency"]}
    report: dict[str, Any] = {
        "scope": "all" if all else manager.origin,
        "since": since.isoformat() if since else None,
        "jobs": len(rows),
        "total": round(sum(e["cost"] for e in models), 9),
        "pending": round(sum(e["pending"] for e in models), 9),
        "currency": currencies.pop() if len(currencies) == 1 else ("mixed" if currencies else "USD"),
        "models": models,
    }
    if usage:
        report["fal_usage"] = _fal_usage(manager, since, [m["model"] for m in models])
    return report


def _fal_usage(manager: JobManager, since: datetime | None, endpoint_ids: list[str]) -> dict[str, Any]:
    """fal's usage summary for these models (every model when none), or why it is not available (a key
    without usage scope, fal unreachable)."""
    start = since or datetime.now(UTC) - timedelta(days=30)
    try:
        lines = _call(manager, platform_client(manager, quick=True).usage(
            endpoint_ids=endpoint_ids, start=start, summary=True))
    except AuthError as exc:
        return {"available": False, "reason": f"this key may not read usage (HTTP {exc.status_code}); an "
                "admin-scoped key can"}
    except FalError as exc:
        return {"available": False, "reason": f"fal's usage could not be read: {exc}"}
    models: dict[str, dict[str, Any]] = {}
    for line in lines:
        entry = models.setdefault(line.endpoint_id, {"model": line.endpoint_id, "quantity": 0.0, "unit": line.unit,
                                                     "cost": 0.0, "currency": line.currency})
        entry["quantity"] = round(entry["quantity"] + line.quantity, 6)
        entry["cost"] = round(entry["cost"] + line.cost, 9)
    rows = sorted(models.values(), key=lambda e: (-e["cost"], e["model"]))
    return {"available": True, "since": start.isoformat(), "total": round(sum(e["cost"] for e in rows), 9),
            "models": rows}


# ---------------------------------------------------------------------------------------------- history


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _history_record(manager: JobManager, item: RequestItem) -> JobRecord:
    """A finished request as a stored job (an unfinished one is adopted and followed instead)."""
    sent = _when(item.sent_at) or _when(item.started_at) or datetime.now(UTC)
    arguments = item.json_input if isinstance(item.json_input, dict) else {}
    record = JobRecord(id=new_job_id(), endpoint=item.endpoint_id, request_id=item.request_id,
                       arguments=arguments, origin=HISTORY_ORIGIN, tags=["fal-history"],
                       options={"validate": False}, created_at=sent, submitted_at=sent,
                       started_at=_when(item.started_at), finished_at=_when(item.ended_at),
                       inference_time=item.duration)
    record.status_url, record.response_url, record.cancel_url = manager.fallback_urls(item.endpoint_id,
                                                                                      item.request_id)
    if item.succeeded:
        record.state = JobState.COMPLETED
        record.result = item.json_output if isinstance(item.json_output, dict) else None
    else:
        record.state = JobState.FAILED
        record.error = {"class": "JobFailedError", "status_code": item.status_code, "detail": None,
                        "error_type": None,
                        "message": f"the request ended with HTTP {item.status_code} (from fal's request history)"}
    return record


def import_history(manager: JobManager, *, models: Iterable[str] = (), since: datetime | None = None,
                   max_per_model: int = 500) -> dict[str, Any]:
    """Adopt the account's past requests (inputs, outputs, times) into the store. ``models``: endpoint ids to
    look at (fal lists requests per endpoint); none: this store's models, the bundled ones and, with a key
    that may read usage, every model the account used. Known request ids are skipped; unfinished requests
    are followed here like any job."""
    from ..catalog import bundled, resolve

    start = since or datetime.now(UTC) - timedelta(days=1)
    wanted = [resolve(m) for m in models]
    if not wanted:
        wanted = sorted({r.endpoint for r in manager.store.list()} | {s.id for s in bundled()}
                        | _used_models(manager, start))
    client = platform_client(manager)
    added, adopted, seen, failures = 0, 0, 0, []
    for endpoint in wanted:
        try:
            items = _call(manager, client.requests_by_endpoint(endpoint, start=start, payloads=True,
                                                               max_items=max_per_model))
        except FalError as exc:
            failures.append({"model": endpoint, "error": str(exc)})
            continue
        seen += len(items)
        fresh = [i for i in items if manager.store.find_request(i.request_id) is None]
        finished = [i for i in fresh if i.status_code is not None]
        records = [_history_record(manager, i) for i in finished]
        _price(manager, endpoint, records)
        added += manager.store.insert_many(records, {})
        for item in fresh:
            if item.status_code is None:
                arguments = item.json_input if isinstance(item.json_input, dict) else None
                manager.adopt(item.request_id, endpoint, arguments=arguments, tags=["fal-history"])
                adopted += 1
    return {"models": wanted, "since": start.isoformat(), "seen": seen, "imported": added, "following": adopted,
            "failed": failures}


def _price(manager: JobManager, endpoint: str, records: list[JobRecord]) -> None:
    """Give imported jobs the estimate a submit would have had, so spend counts them."""
    for record in records:
        if record.arguments:
            record.estimate = manager.estimate(endpoint, [record.arguments])


def _used_models(manager: JobManager, start: datetime) -> set[str]:
    try:
        lines = _call(manager, platform_client(manager, quick=True).usage(start=start, summary=True))
    except FalError:
        return set()
    return {line.endpoint_id for line in lines}


# ---------------------------------------------------------------------------------------------- models


def search_models(manager: JobManager | None, text: str | None = None, category: str | None = None,
                  *, limit: int = 200) -> dict[str, Any]:
    """Bundled models that match first, then fal's whole catalogue (``GET /v1/models``); offline, or without
    a manager, the bundled ones only and a ``note`` saying so."""
    from ..catalog import bundled

    needle = (text or "").strip().lower()

    def matches(spec: Any) -> bool:
        words = " ".join([spec.id, spec.title, spec.description, *spec.aliases]).lower()
        return (category in (None, "", spec.category)) and all(w in words for w in needle.split())

    local = [_spec_summary(s) for s in bundled() if matches(s)]
    report: dict[str, Any] = {"models": local, "source": "bundled"}
    if manager is None:
        report["note"] = "fal's catalogue was not searched; showing the bundled models only"
        return report
    try:
        found = _call(manager, platform_client(manager, quick=True).models(
            q=needle or None, category=category or None, max_items=limit))
    except FalError as exc:
        report["note"] = f"offline: fal's catalogue could not be searched ({exc}); showing the bundled models only"
        return report
    ids = {m["id"] for m in local}
    report["models"] = local + [{**m.to_json(), "source": "fal"} for m in found if m.endpoint_id not in ids]
    report["source"] = "bundled+fal"
    return report


def _spec_summary(spec: Any) -> dict[str, Any]:
    return {"id": spec.id, "title": spec.title, "category": spec.category, "description": spec.description,
            "aliases": list(spec.aliases), "required": list(spec.required),
            "file_fields": sorted(spec.media_fields), "output": spec.output, "source": spec.source}
