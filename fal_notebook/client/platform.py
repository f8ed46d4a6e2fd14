"""fal's platform API (``https://api.fal.ai/v1``): the model catalogue, prices, cost estimates, usage and the
account's past requests.

    async with AsyncPlatformClient() as fal:
        found = await fal.models(q="upscale", category="image-to-image")
        prices = await fal.prices(["fal-ai/flux/dev"])
        past = await fal.requests_by_endpoint("fal-ai/flux/dev", start=since, payloads=True)

Same session, retries, timeouts and key scoping as the queue client (``HttpSession``: the key goes only to the
configured API origins, of which ``Endpoints.platform`` is one). ``FAL_NOTEBOOK_ENDPOINT`` sends these calls
to ``{endpoint}/v1/…``. Every list is followed through its cursor pages, and every walk is bounded
(``max_pages``, ``max_items``, and a cursor seen twice ends it), so a server that never stops paging cannot
hold a caller.

Documented shapes relied on (fal docs, "Platform APIs" reference: docs.fal.ai/platform-apis/v1/models,
…/models/pricing, …/models/pricing/estimate, …/models/usage, …/models/requests/by-endpoint; fal.ai/docs/
api-reference/platform-apis/for-models):

* Auth: ``Authorization: Key <key>`` (optional for ``/models``, required for the rest; usage wants an
  admin-scoped key). Base ``https://api.fal.ai/v1``.
* Pagination (every list): query ``limit`` (>= 1), ``cursor`` (opaque, e.g. ``"Mg=="``); answer
  ``next_cursor`` (string or null) and ``has_more`` (boolean derived from ``next_cursor``).
* Several ids: ``?endpoint_id=a&endpoint_id=b`` (array syntax; comma-separated also documented), 1-50 per call.
* ``GET /models``: ``q``, ``category``, ``status`` (``active``/``deprecated``), ``endpoint_id``,
  ``expand=openapi-3.0`` → ``{"models": [{"endpoint_id", "metadata": {"display_name", "category",
  "description", "status", "tags", "updated_at", "thumbnail_url", "model_url", …}, "openapi": {…}}], …}``.
* ``GET /models/pricing?endpoint_id=…`` → ``{"prices": [{"endpoint_id", "unit_price", "unit", "currency"}], …}``.
* ``POST /models/pricing/estimate`` ``{"estimate_type": "historical_api_price", "endpoints": {id:
  {"call_quantity": n}}}`` or ``{"estimate_type": "unit_price", "endpoints": {id: {"unit_quantity": q}}}``
  → ``{"estimate_type", "total_cost", "currency"}``.
* ``GET /models/usage``: ``endpoint_id``, ``start``/``end`` (ISO 8601), ``timeframe``, ``timezone``,
  ``expand`` (``time_series``, ``summary``, ``auth_method``) → ``{"time_series": [{"bucket", "results":
  [{"endpoint_id", "unit", "quantity", "unit_price", "cost", "currency", "auth_method"?}]}], "summary":
  [same rows], …}``.
* ``GET /models/requests/by-endpoint``: ``endpoint_id`` (required), ``start``/``end``, ``status``
  (``success``/``error``/``user_error``), ``request_id``, ``expand=payloads``, ``sort_by`` (``ended_at``/
  ``duration``), ``limit`` 1-100 → ``{"items": [{"request_id", "endpoint_id", "started_at", "sent_at",
  "ended_at", "status_code", "duration", "json_input", "json_output"}], …}``.
* Errors: ``{"error": {"type", "message", "docs_url", "request_id"}}`` with the HTTP status (read in
  ``http.py``; a queue-style ``{"detail": …}`` is understood too).

Where the docs are silent the readers (``platform_wire.py``) are liberal: missing fields default, numbers may be
text, an item without an id is skipped, ``has_more`` without ``next_cursor`` (or the reverse) ends the walk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from .._portal import Portal
from ..config import Settings
from ..errors import RequestError, UnknownModelError
from .faces import AsyncSessionClient, BlockingClient
from .http import response_json
from .platform_wire import Estimate, ModelInfo, Price, RequestItem, UsageLine
from .retry import RetryPolicy
from .session import DEFAULT_TIMEOUT, HttpSession

__all__ = ["AsyncPlatformClient", "PlatformClient", "MAX_IDS", "MAX_PAGES", "iso_time"]

MAX_IDS = 50  # endpoint ids per call (documented 1-50)
MAX_PAGES = 20  # cursor pages followed per call unless the caller says otherwise
MAX_ITEMS = 2_000
REQUESTS_PAGE = 100  # by-endpoint's documented maximum ``limit``
ESTIMATE_TYPES = ("unit_price", "historical_api_price")


def iso_time(value: datetime | str | None) -> str | None:
    """A time as the platform API takes it: ISO 8601 in UTC (``2025-01-01T00:00:00Z``); text is passed on."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(ids: Iterable[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(i.strip().strip("/") for i in ids if i and i.strip().strip("/")))
    return [unique[i:i + MAX_IDS] for i in range(0, len(unique), MAX_IDS)]


def _params(**values: Any) -> list[tuple[str, str]]:
    """Query pairs; a list value repeats its key (the documented array syntax); ``None`` is left out."""
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            pairs.append((name, "true" if item is True else "false" if item is False else str(item)))
    return pairs


class AsyncPlatformClient(AsyncSessionClient):
    """fal's platform API on httpx. Pass ``session`` to share a queue client's connections and key rules.

        fal = AsyncPlatformClient(settings, timeout=5, retry=RetryPolicy(max_attempts=2))
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        session: HttpSession | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.session = session or HttpSession(settings, transport=transport, timeout=timeout, retry=retry)
        # on a shared session, this client's own timeout and retry policy apply per call
        self._retry = retry if session is not None else None
        self._timeout = timeout if session is not None and timeout is not DEFAULT_TIMEOUT else None

    def __repr__(self) -> str:
        return f"<AsyncPlatformClient {self.settings.endpoints.platform_url('')}>"

    # -- plumbing ----------------------------------------------------------------------------------------
    async def _get(self, path: str, params: list[tuple[str, str]], *, what: str, timeout: float | None = None,
                   keyless: bool = False) -> dict[str, Any]:
        url = self.settings.endpoints.platform_url(path)
        api = not keyless or self.settings.key is not None  # keyless: a call fal answers without a key too
        async with self.session.slot("platform"):
            response = await self.session.send("GET", url, what=what, api=api, idempotent=True, params=params,
                                               timeout=timeout or self._timeout, retry=self._retry)
        body = response_json(response)
        if not isinstance(body, dict):
            raise RequestError(f"{what}: the answer is not a JSON object", status_code=response.status_code)
        return body

    async def pages(
        self, path: str, params: list[tuple[str, str]], *, what: str, max_pages: int = MAX_PAGES,
        timeout: float | None = None, keyless: bool = False,
    ) -> AsyncIterator[dict[str, Any]]:
        """Each page's body, following ``next_cursor`` while ``has_more``; at most ``max_pages`` pages."""
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max(1, max_pages)):
            page = await self._get(path, params + ([("cursor", cursor)] if cursor else []), what=what,
                                   timeout=timeout, keyless=keyless)
            yield page
            next_cursor = page.get("next_cursor")
            if page.get("has_more") is False or not isinstance(next_cursor, str) or not next_cursor:
                return
            if next_cursor in seen:  # a server handing out the same cursor again would loop for ever
                return
            seen.add(next_cursor)
            cursor = next_cursor

    # -- models ------------------------------------------------------------------------------------------
    async def models(
        self,
        *,
        q: str | None = None,
        category: str | None = None,
        status: str | None = None,
        endpoint_ids: Iterable[str] = (),
        openapi: bool = False,
        limit: int | None = None,
        max_pages: int = MAX_PAGES,
        max_items: int = MAX_ITEMS,
    ) -> list[ModelInfo]:
        """``GET /models``: list, search (``q``, ``category``, ``status``) or find by id (1-50 per call; more
        are asked for in batches). ``openapi=True`` adds each model's OpenAPI document."""
        found: list[ModelInfo] = []
        batches = _chunks(endpoint_ids) or [[]]
        for batch in batches:
            params = _params(q=q or None, category=category or None, status=status or None,
                             endpoint_id=batch or None, expand="openapi-3.0" if openapi else None, limit=limit)
            async for page in self.pages("models", params, what="model search", max_pages=max_pages,
                                         keyless=True):
                items = page.get("models")
                if _keep(found, items if isinstance(items, list) else [], ModelInfo.from_json, max_items):
                    return found
        return found

    async def model(self, endpoint_id: str, *, openapi: bool = False) -> ModelInfo | None:
        """One model by its exact endpoint id, or ``None`` when fal does not list it."""
        wanted = endpoint_id.strip().strip("/")
        for info in await self.models(endpoint_ids=[wanted], openapi=openapi, max_pages=1):
            if info.endpoint_id == wanted:
                return info
        return None

    async def openapi(self, endpoint_id: str) -> dict[str, Any]:
        """The model's OpenAPI 3.0 document (``expand=openapi-3.0``); ``UnknownModelError`` when fal lists no
        such model or gives no document for it."""
        info = await self.model(endpoint_id, openapi=True)
        if info is None:
            raise UnknownModelError(f"fal's model list has no {endpoint_id!r}")
        if info.openapi is None:
            raise UnknownModelError(f"fal's model list gives no OpenAPI document for {endpoint_id!r}")
        return info.openapi

    # -- prices ------------------------------------------------------------------------------------------
    async def prices(self, endpoint_ids: Iterable[str], *, timeout: float | None = None) -> dict[str, Price]:
        """``GET /models/pricing``: endpoint id → :class:`Price`, for the ids fal prices (others are absent)."""
        found: dict[str, Price] = {}
        for batch in _chunks(endpoint_ids):
            async for page in self.pages("models/pricing", _params(endpoint_id=batch), what="price lookup",
                                         timeout=timeout):
                items = page.get("prices")
                for item in items if isinstance(items, list) else []:
                    price = Price.from_json(item)
                    if price is not None and price.endpoint_id in batch:
                        found.setdefault(price.endpoint_id, price)
        return found

    async def estimate(
        self, quantities: Mapping[str, float], *, estimate_type: str = "unit_price", timeout: float | None = None
    ) -> Estimate:
        """``POST /models/pricing/estimate``: ``unit_price`` takes billing units per endpoint
        (``unit_quantity``), ``historical_api_price`` takes calls (``call_quantity``)."""
        if estimate_type not in ESTIMATE_TYPES:
            raise ValueError(f"estimate_type must be one of {ESTIMATE_TYPES}, not {estimate_type!r}")
        if not quantities:
            raise ValueError("an estimate needs at least one endpoint")
        name = "unit_quantity" if estimate_type == "unit_price" else "call_quantity"
        body = {"estimate_type": estimate_type, "endpoints": {k: {name: v} for k, v in quantities.items()}}
        url = self.settings.endpoints.platform_url("models/pricing/estimate")
        async with self.session.slot("platform"):
            response = await self.session.send("POST", url, what="cost estimate", api=True, idempotent=True,
                                               json=body, timeout=timeout or self._timeout, retry=self._retry)
        result = Estimate.from_json(response_json(response), estimate_type)
        if result is None:
            raise RequestError("cost estimate: the answer has no total_cost", status_code=response.status_code)
        return result

    # -- usage and history -------------------------------------------------------------------------------
    async def usage(
        self,
        *,
        endpoint_ids: Iterable[str] = (),
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        summary: bool = True,
        timeframe: str | None = None,
        max_pages: int = MAX_PAGES,
        max_items: int = MAX_ITEMS,
    ) -> list[UsageLine]:
        """``GET /models/usage`` (needs a key allowed to read usage; ``AuthError`` otherwise): the summary
        rows (``summary=True``) or the time-series lines, for every endpoint or the ones named."""
        expand = "summary" if summary else "time_series"
        lines: list[UsageLine] = []
        for batch in _chunks(endpoint_ids) or [[]]:
            params = _params(endpoint_id=batch or None, start=iso_time(start), end=iso_time(end),
                             timeframe=timeframe, expand=expand)
            async for page in self.pages("models/usage", params, what="usage", max_pages=max_pages):
                rows: list[tuple[Any, str | None]] = []
                if summary and isinstance(page.get("summary"), list):
                    rows = [(row, None) for row in page["summary"]]
                elif isinstance(page.get("time_series"), list):
                    for bucket in page["time_series"]:
                        if isinstance(bucket, dict) and isinstance(bucket.get("results"), list):
                            label = bucket.get("bucket") if isinstance(bucket.get("bucket"), str) else None
                            rows += [(row, label) for row in bucket["results"]]
                if _keep(lines, rows, lambda pair: UsageLine.from_json(*pair), max_items):
                    return lines
        return lines

    async def requests_by_endpoint(
        self,
        endpoint_id: str,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        status: str | None = None,
        request_id: str | None = None,
        payloads: bool = False,
        sort_by: str | None = None,
        max_pages: int = MAX_PAGES,
        max_items: int = 500,
    ) -> list[RequestItem]:
        """``GET /models/requests/by-endpoint``: the account's own requests to one endpoint, newest first by
        default, in ``[start, end)`` (fal's default window is the last 24 hours). ``payloads=True`` adds each
        request's ``json_input`` / ``json_output``; ``request_id`` finds one request (e.g. a submit whose reply
        was lost)."""
        wanted = endpoint_id.strip().strip("/")
        params = _params(endpoint_id=wanted, start=iso_time(start), end=iso_time(end), status=status,
                         request_id=request_id, expand="payloads" if payloads else None, sort_by=sort_by,
                         limit=max(1, min(REQUESTS_PAGE, max_items)))
        items: list[RequestItem] = []
        async for page in self.pages("models/requests/by-endpoint", params, what=f"request history of {wanted}",
                                     max_pages=max_pages):
            rows = page.get("items")
            if _keep(items, rows if isinstance(rows, list) else [], lambda row: RequestItem.from_json(row, wanted),
                     max_items):
                return items
        return items


def _keep(into: list, rows: Iterable[Any], parse: Callable[[Any], Any], max_items: int) -> bool:
    """Append each row ``parse`` makes sense of (``None``: skipped) to ``into``; True once it holds
    ``max_items`` (the caller stops paging)."""
    for row in rows:
        item = parse(row)
        if item is not None:
            into.append(item)
        if len(into) >= max_items:
            return True
    return False


class PlatformClient(BlockingClient):
    """The same calls, blocking, run on the shared portal thread (scripts, the CLI)."""

    def __init__(self, settings: Settings | None = None, *, portal: Portal | None = None, **options: Any) -> None:
        super().__init__(AsyncPlatformClient(settings, **options), portal)

    def models(self, **options: Any) -> list[ModelInfo]:
        return self._call(self.async_client.models(**options))

    def model(self, endpoint_id: str, *, openapi: bool = False) -> ModelInfo | None:
        return self._call(self.async_client.model(endpoint_id, openapi=openapi))

    def openapi(self, endpoint_id: str) -> dict[str, Any]:
        return self._call(self.async_client.openapi(endpoint_id))

    def prices(self, endpoint_ids: Iterable[str], **options: Any) -> dict[str, Price]:
        return self._call(self.async_client.prices(endpoint_ids, **options))

    def estimate(self, quantities: Mapping[str, float], **options: Any) -> Estimate:
        return self._call(self.async_client.estimate(quantities, **options))

    def usage(self, **options: Any) -> list[UsageLine]:
        return self._call(self.async_client.usage(**options))

    def requests_by_endpoint(self, endpoint_id: str, **options: Any) -> list[RequestItem]:
        return self._call(self.async_client.requests_by_endpoint(endpoint_id, **options))

