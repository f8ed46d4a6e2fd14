"""fal's platform API (``/v1/models…``) played from the emulator's own catalogue and the jobs it ran.

Shapes as fal documents them (see ``fal_notebook/client/platform.py``): ``{"models"|"prices"|"items": […],
"next_cursor", "has_more"}`` with an opaque base64 page cursor, ``endpoint_id`` repeated or comma-separated
(1-50), errors as ``{"error": {"type", "message", "docs_url", "request_id"}}``. Prices are this emulator's own,
one per model (:data:`PRICES`); usage and request history come from the job book, billed with the catalogue's
quantity rules (what a request asked for: images, megapixels, seconds).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fal_notebook.catalog.pricing import quantity
from fal_notebook.emulator import models
from fal_notebook.emulator.jobs import EmulatedJob
from fal_notebook.emulator.queue_routes import job_output
from fal_notebook.emulator.responses import base_url
from fal_notebook.emulator.state import EmulatorState

__all__ = ["PRICES", "platform_route", "price_of"]

# endpoint id → (unit_price, unit); every price in USD.
PRICES: dict[str, tuple[float, str]] = {
    "fal-ai/nano-banana-pro": (0.15, "image"),
    "fal-ai/nano-banana-pro/edit": (0.15, "image"),
    "fal-ai/flux/dev/image-to-image": (0.03, "megapixel"),
    "fal-ai/flux/dev": (0.025, "megapixel"),
    "fal-ai/flux/schnell": (0.003, "megapixel"),
    "fal-ai/kling-video/v2.1/standard/image-to-video": (0.05, "second"),
    "fal-ai/kling-video/o3/pro/video-to-video/edit": (0.336, "second"),
    "fal-ai/kling-video/o3/standard/video-to-video/edit": (0.252, "second"),
    "fal-ai/fast-sdxl": (0.0025, "image"),
}
DOCS = "https://docs.fal.ai/platform-apis"
MAX_IDS = 50


def price_of(endpoint_id: str) -> tuple[float, str] | None:
    return PRICES.get(endpoint_id)


def _error(status: int, kind: str, message: str) -> JSONResponse:
    request_id = str(uuid.uuid4())
    body = {"error": {"type": kind, "message": message, "docs_url": DOCS, "request_id": request_id}}
    return JSONResponse(body, status_code=status, headers={"x-fal-request-id": request_id})


def _ids(request: Request) -> list[str]:
    """``?endpoint_id=a&endpoint_id=b`` and ``?endpoint_id=a,b`` alike."""
    ids: list[str] = []
    for value in request.query_params.getlist("endpoint_id"):
        ids += [part.strip().strip("/") for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(ids))


def _expand(request: Request) -> set[str]:
    return {part.strip() for value in request.query_params.getlist("expand") for part in value.split(",")}


def _page(request: Request, items: list[Any], key: str, default_limit: int, max_limit: int | None = None
          ) -> Response:
    raw_limit = request.query_params.get("limit")
    try:
        limit = int(raw_limit) if raw_limit is not None else default_limit
        offset = int(base64.b64decode(request.query_params.get("cursor") or "MA==", validate=True)) \
            if request.query_params.get("cursor") else 0
    except (ValueError, binascii.Error):
        return _error(400, "validation_error", "limit must be an integer >= 1 and cursor one this API gave")
    if limit < 1 or (max_limit is not None and limit > max_limit) or offset < 0:
        bound = f" and <= {max_limit}" if max_limit else ""
        return _error(400, "validation_error", f"limit must be >= 1{bound}")
    chunk = items[offset:offset + limit]
    more = offset + limit < len(items)
    cursor = base64.b64encode(str(offset + limit).encode()).decode() if more else None
    return JSONResponse({key: chunk, "next_cursor": cursor, "has_more": more})


async def platform_route(request: Request, state: EmulatorState, segments: list[str]) -> Response:
    """``/v1/…`` after the key check: dispatch on method and path."""
    knobs = state.knobs
    if knobs.platform_status:
        return _error(knobs.platform_status, "server_error", "the platform API is unavailable (emulated)")
    path, method = "/".join(segments[1:]), request.method
    if (method, path) == ("GET", "models"):
        return _models(request)
    if (method, path) == ("GET", "models/pricing"):
        return _pricing(request)
    if (method, path) == ("POST", "models/pricing/estimate"):
        return await _estimate(request)
    if (method, path) == ("GET", "models/usage"):
        if not knobs.usage_access:
            return _error(403, "authorization_error", "This endpoint requires an ADMIN-scoped API key")
        return _usage(request, state)
    if (method, path) == ("GET", "models/requests/by-endpoint"):
        return await _requests(request, state)
    return _error(404, "not_found", f"No route {method} /v1/{path}")


# ---------------------------------------------------------------------------------------------- models


def _model_json(endpoint_id: str, openapi: bool) -> dict[str, Any] | None:
    model = models.find_model(endpoint_id)
    if model is None:
        return None
    doc = model.openapi()
    info = doc.get("info") or {}
    metadata = {
        "display_name": model.spec.title if model.spec else str(info.get("title") or endpoint_id),
        "category": model.category,
        "description": model.spec.description if model.spec else str(info.get("description") or ""),
        "status": "active",
        "tags": [],
        "updated_at": "2026-01-01T00:00:00Z",
        "thumbnail_url": "",
        "model_url": f"https://fal.run/{endpoint_id}",
        "date": "2026-01-01T00:00:00Z",
        "highlighted": False,
        "pinned": False,
    }
    entry: dict[str, Any] = {"endpoint_id": endpoint_id, "metadata": metadata}
    if openapi:
        entry["openapi"] = doc
    return entry


def _matches(entry: dict[str, Any], q: str, category: str, status: str) -> bool:
    meta = entry["metadata"]
    text = " ".join([entry["endpoint_id"], meta["display_name"], meta["description"], meta["category"]]).lower()
    words = q.lower().split()
    return (all(word in text for word in words) and (not category or meta["category"] == category)
            and (not status or meta["status"] == status))


def _models(request: Request) -> Response:
    ids, params = _ids(request), request.query_params
    if len(ids) > MAX_IDS:
        return _error(400, "validation_error", f"at most {MAX_IDS} endpoint_id values")
    status = params.get("status", "")
    if status and status not in {"active", "deprecated"}:
        return _error(400, "validation_error", "status must be active or deprecated")
    openapi = "openapi-3.0" in _expand(request)
    wanted = ids or models.known_model_ids()
    entries = [e for e in (_model_json(i, openapi) for i in wanted) if e is not None]
    entries = [e for e in entries if _matches(e, params.get("q", ""), params.get("category", ""), status)]
    return _page(request, entries, "models", 10 if openapi else 50)


# ---------------------------------------------------------------------------------------------- prices


def _pricing(request: Request) -> Response:
    ids = _ids(request)
    if not ids or len(ids) > MAX_IDS:
        return _error(400, "validation_error", f"endpoint_id is required (1-{MAX_IDS} ids)")
    prices = [{"endpoint_id": i, "unit_price": PRICES[i][0], "unit": PRICES[i][1], "currency": "USD"}
              for i in ids if i in PRICES]
    return _page(request, prices, "prices", 50)


def _defaults(endpoint_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    model = models.find_model(endpoint_id)
    if model is None or model.spec is None:
        return {}, {}
    return model.spec.defaults, model.spec.limits


async def _estimate(request: Request) -> Response:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return _error(400, "validation_error", "the body is not JSON")
    kind = body.get("estimate_type") if isinstance(body, dict) else None
    endpoints = body.get("endpoints") if isinstance(body, dict) else None
    if kind not in {"historical_api_price", "unit_price"} or not isinstance(endpoints, dict) or not endpoints:
        return _error(422, "validation_error",
                      "estimate_type must be historical_api_price or unit_price, endpoints a non-empty map")
    field = "call_quantity" if kind == "historical_api_price" else "unit_quantity"
    total = 0.0
    for endpoint_id, spec in endpoints.items():
        amount = spec.get(field) if isinstance(spec, dict) else None
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            return _error(422, "validation_error", f"endpoints[{endpoint_id!r}].{field} must be a number >= 0")
        if endpoint_id not in PRICES:
            return _error(404, "not_found", f"No pricing for endpoint {endpoint_id!r}")
        unit_price, unit = PRICES[endpoint_id]
        if kind == "unit_price":
            total += unit_price * amount
        else:  # a typical call: the model's defaults
            defaults, limits = _defaults(endpoint_id)
            total += unit_price * quantity(unit, {}, defaults, limits) * amount
    return JSONResponse({"estimate_type": kind, "total_cost": round(total, 9), "currency": "USD"})


# ---------------------------------------------------------------------------------------------- usage, requests


def _when(text: str | None, default: datetime) -> datetime | None:
    if not text:
        return default
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _window(request: Request, default_days: float = 1.0) -> tuple[datetime, datetime] | None:
    now = datetime.now(UTC)
    start = _when(request.query_params.get("start"), now - timedelta(days=default_days))
    end = _when(request.query_params.get("end"), now + timedelta(seconds=1))
    return None if start is None or end is None else (start, end)


def _finished(state: EmulatorState, job: EmulatedJob) -> tuple[bool, int, datetime | None, datetime | None]:
    """(ended, HTTP status, started, ended) of a job as the platform reports it."""
    snap = state.book.snapshot(job)
    if snap.status != "COMPLETED":
        return False, 0, None, None
    ended_mono, failure = job.end()
    started = job.submitted_wall + timedelta(seconds=max(0.0, min(job.start, ended_mono) - job.submitted))
    ended = job.submitted_wall + timedelta(seconds=ended_mono - job.submitted)
    status = failure.http_status if failure is not None else 200
    return True, status, started, ended


def _billed(job: EmulatedJob) -> tuple[float, float, str] | None:
    """(quantity, unit price, unit) of a successful job of a priced model."""
    if job.endpoint_id not in PRICES:
        return None
    unit_price, unit = PRICES[job.endpoint_id]
    defaults, limits = _defaults(job.endpoint_id)
    return quantity(unit, job.arguments, defaults, limits), unit_price, unit


def _usage(request: Request, state: EmulatorState) -> Response:
    window = _window(request)
    if window is None:
        return _error(400, "validation_error", "start and end must be ISO 8601 dates")
    ids = set(_ids(request))
    rows: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    series: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0.0]))
    for job in state.book.all():
        ended, status, _started, ended_at = _finished(state, job)
        billed = _billed(job)
        if not ended or status != 200 or billed is None or ended_at is None:
            continue
        if (ids and job.endpoint_id not in ids) or not window[0] <= ended_at < window[1]:
            continue
        amount, unit_price, unit = billed
        bucket = ended_at.replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
        for table in (rows, series[bucket]):
            entry = table[(job.endpoint_id, unit)]
            entry[0] += amount
            entry[1] = unit_price
            entry[2] += amount * unit_price

    def line(key: tuple[str, str], entry: list[float]) -> dict[str, Any]:
        return {"endpoint_id": key[0], "unit": key[1], "quantity": round(entry[0], 6), "unit_price": entry[1],
                "cost": round(entry[2], 9), "currency": "USD"}

    expand = _expand(request) or {"time_series"}
    body: dict[str, Any] = {"next_cursor": None, "has_more": False}
    if "time_series" in expand:
        body["time_series"] = [{"bucket": b, "results": [line(k, e) for k, e in sorted(t.items())]}
                               for b, t in sorted(series.items())]
    if "summary" in expand:
        body["summary"] = [line(k, e) for k, e in sorted(rows.items())]
    return JSONResponse(body)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


async def _requests(request: Request, state: EmulatorState) -> Response:
    ids = _ids(request)
    if not ids:
        return _error(400, "validation_error", "endpoint_id is required")
    params = request.query_params
    window = _window(request, default_days=90.0 if params.get("request_id") else 1.0)
    if window is None:
        return _error(400, "validation_error", "start and end must be ISO 8601 dates")
    status_filter, wanted_id = params.get("status"), params.get("request_id")
    payloads = "payloads" in _expand(request)
    items = []
    for job in state.book.all():
        if job.endpoint_id not in ids or (wanted_id and job.request_id != wanted_id):
            continue
        if not window[0] <= job.submitted_wall < window[1]:
            continue
        ended, status, started, ended_at = _finished(state, job)
        kind = None if not ended else "success" if status == 200 else "user_error" if status < 500 else "error"
        if status_filter and status_filter != kind:
            continue
        item: dict[str, Any] = {
            "request_id": job.request_id, "endpoint_id": job.endpoint_id, "sent_at": _iso(job.submitted_wall),
            "started_at": _iso(started), "ended_at": _iso(ended_at), "status_code": status or None,
            "duration": round((ended_at - started).total_seconds(), 3) if ended_at and started else None,
        }
        if payloads:
            item["json_input"] = job.arguments
            output = await run_in_threadpool(job_output, state, job) if status == 200 and not job.expired else None
            item["json_output"] = models.absolutize(output, base_url(request)) if output is not None else None
        items.append(item)
    by_duration = params.get("sort_by") == "duration"
    items.sort(key=lambda i: (i["duration"] or 0.0) if by_duration else (i["ended_at"] or i["sent_at"]),
               reverse=True)
    return _page(request, items, "items", 50, max_limit=100)
