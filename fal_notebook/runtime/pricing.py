"""The price before you pay: fal's price for a model (cached a day), the estimate of a job or group, the budget.

Prices come from the platform API (``GET /v1/models/pricing``) through a short, single-attempt call: pricing is
advice, so an unreachable or refusing pricing API never blocks a submit. It costs at most one short wait per
model, then the answer (or the failure, for a minute) is remembered; a stale cached price is used rather than
none. With no price known a job is sent without an estimate and ``max_cost`` says it could not be checked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..catalog import pricing as rules
from ..config import Settings, read_max_cost
from ..errors import CostLimitError, FalError

if TYPE_CHECKING:
    from .._portal import Portal
    from ..catalog import ModelSpec
    from ..client.session import HttpSession

__all__ = ["PriceBook", "check_budget", "PRICE_TIMEOUT"]

log = logging.getLogger("fal_notebook")
PRICE_TIMEOUT = 5.0  # one price lookup before a submit, at most
RETRY_AFTER_FAILURE = 60.0  # seconds before a model whose price could not be had is asked for again


class PriceBook:
    """Prices per endpoint id for one process: disk cache (a day), then fal, then a stale cache entry."""

    def __init__(self, settings: Settings, portal: Portal, session: Callable[[], HttpSession] | None = None
                 ) -> None:
        self.settings = settings
        self.portal = portal
        self._session = session  # the queue client's (same connections and key rules); None: its own
        self._lock = threading.Lock()
        self._failed: dict[str, float] = {}  # endpoint id → monotonic time of the last failed lookup
        self._client: Any = None

    @property
    def cache_dir(self) -> Any:
        return self.settings.home

    def _platform(self) -> Any:
        if self._client is None:
            from ..client.platform import AsyncPlatformClient
            from ..client.retry import RetryPolicy

            session = self._session() if self._session is not None else None
            self._client = AsyncPlatformClient(self.settings, session=session, timeout=PRICE_TIMEOUT,
                                               retry=RetryPolicy(max_attempts=1))
        return self._client

    def prices(self, endpoint_ids: Iterable[str], *, fetch: bool = True) -> dict[str, dict[str, Any]]:
        """``{endpoint_id: {"unit_price", "unit", "currency"}}`` for the ids with a known price."""
        wanted = list(dict.fromkeys(endpoint_ids))
        found = {k: v for k, v in rules.load_prices(self.cache_dir).items() if k in wanted}
        now = time.monotonic()
        with self._lock:
            missing = [i for i in wanted if i not in found and now - self._failed.get(i, -1e9) > RETRY_AFTER_FAILURE]
        if missing and fetch and self.settings.key is not None and not self.portal.in_loop_thread:
            found.update(self._fetch(missing))
        if len(found) < len(wanted):  # offline: an old price beats none
            stale = rules.load_prices(self.cache_dir, max_age=None)
            found.update({i: stale[i] for i in wanted if i not in found and i in stale})
        return found

    def prefetch(self, endpoint_ids: Iterable[str]) -> None:
        """Fetch missing prices in the background (a form opening a model), never blocking the caller."""
        wanted = [i for i in endpoint_ids if i not in rules.load_prices(self.cache_dir)]
        if wanted and self.settings.key is not None:
            threading.Thread(target=self.prices, args=(wanted,), name="fal-prices", daemon=True).start()

    def _fetch(self, endpoint_ids: list[str]) -> dict[str, dict[str, Any]]:
        try:
            fetched = self.portal.start().call(self._platform().prices(endpoint_ids), timeout=PRICE_TIMEOUT * 2)
        except (FalError, TimeoutError) as exc:
            log.info("fal's prices for %s could not be had (%s); sending without an estimate",
                     ", ".join(endpoint_ids), exc)
            fetched = {}
        entries = {k: p.to_json() for k, p in fetched.items()}
        try:
            rules.save_prices(self.cache_dir, entries)
        except OSError as exc:
            log.debug("the price cache could not be written: %s", exc)
        with self._lock:
            for endpoint_id in endpoint_ids:
                if endpoint_id in entries:
                    self._failed.pop(endpoint_id, None)
                else:
                    self._failed[endpoint_id] = time.monotonic()
        return entries

    def estimate(self, endpoint_id: str, requests: list[Mapping[str, Any]], spec: ModelSpec | None = None,
                 *, fetch: bool = True) -> dict[str, Any] | None:
        """``{"model", "unit_price", "unit", "quantity", "total", "currency"}`` for these requests, or ``None``
        when no price is known. ``spec`` supplies the defaults (``num_images``, ``duration``) a request leaves
        out."""
        price = self.prices([endpoint_id], fetch=fetch).get(endpoint_id)
        if price is None:
            return None
        defaults = spec.defaults if spec is not None else {}
        limits = spec.limits if spec is not None else {}
        return rules.estimate_for(endpoint_id, price, list(requests), defaults, limits)

    def estimate_each(self, endpoint_id: str, requests: list[Mapping[str, Any]], spec: ModelSpec | None = None
                      ) -> list[dict[str, Any] | None]:
        """:meth:`estimate` of each request on its own, the price looked up once (a group of 200 reads the
        price cache once, not 200 times)."""
        price = self.prices([endpoint_id]).get(endpoint_id)
        if price is None:
            return [None] * len(requests)
        defaults = spec.defaults if spec is not None else {}
        limits = spec.limits if spec is not None else {}
        return [rules.estimate_for(endpoint_id, price, [request], defaults, limits) for request in requests]

    async def aclose(self) -> None:
        if self._client is not None and self._session is None:  # a shared session is closed by its owner
            await self._client.aclose()


def check_budget(estimate: Mapping[str, Any] | None, *, count: int = 1, confirm: bool = False,
                 max_cost: float | None = None, env: Mapping[str, str] | None = None) -> None:
    """Refuse (``CostLimitError``, nothing sent) when the estimate exceeds ``max_cost`` (default: the setting
    ``FAL_NOTEBOOK_MAX_COST``) unless ``confirm``. No estimate: a warning, never a refusal."""
    limit = read_max_cost(env) if max_cost is None else max_cost
    if limit is None or confirm:
        return
    if not estimate:
        log.warning("no price is known for this model, so max_cost=%g could not be checked; sending anyway", limit)
        return
    total = float(estimate["total"])
    if total <= limit:
        return
    what = f"{count} requests" if count > 1 else "1 request"
    raise CostLimitError(
        f"estimated {total:.4g} {estimate['currency']} for {what} to {estimate['model']} "
        f"({estimate['quantity']:g} {estimate['unit']} × {estimate['unit_price']:g}) is more than "
        f"max_cost={limit:g}; nothing was sent. Confirm it (confirm=True, %fal … --yes, fal-notebook submit "
        "--yes) or raise the budget (%fal config max_cost=…, FAL_NOTEBOOK_MAX_COST).",
        estimate=dict(estimate), max_cost=limit)
