"""The values fal's platform API hands out (models, prices, estimates, usage lines, past requests), read
liberally from its JSON.

Shapes as documented (docs.fal.ai/platform-apis/v1/…; see ``platform.py`` for the list). Where the docs are
silent or a server is sloppy, the readers here accept what can be understood: a missing ``metadata`` object is
read from the item itself, numbers may come as text, unknown fields are ignored, and an item that names no
endpoint is skipped rather than failing the whole answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelInfo", "Price", "Estimate", "UsageLine", "RequestItem", "as_number"]


def as_number(value: Any) -> float | None:
    """A finite float from a number or numeric text; ``None`` otherwise (booleans are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _endpoint(item: dict[str, Any]) -> str:
    return _text(item.get("endpoint_id") or item.get("id")).strip().strip("/")


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``GET /v1/models``: ``endpoint_id`` plus its ``metadata``; ``openapi`` with
    ``expand=openapi-3.0``."""

    endpoint_id: str
    display_name: str = ""
    category: str = ""
    description: str = ""
    status: str = ""
    tags: tuple[str, ...] = ()
    openapi: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Any) -> ModelInfo | None:
        if not isinstance(item, dict) or not _endpoint(item):
            return None
        meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else item
        tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
        doc = item.get("openapi")
        return cls(
            endpoint_id=_endpoint(item),
            display_name=_text(meta.get("display_name") or meta.get("title")),
            category=_text(meta.get("category")),
            description=_text(meta.get("description")),
            status=_text(meta.get("status")),
            tags=tuple(t for t in tags if isinstance(t, str)),
            openapi=doc if isinstance(doc, dict) and doc else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {"id": self.endpoint_id, "title": self.display_name or self.endpoint_id, "category": self.category,
                "description": self.description, "status": self.status, "tags": list(self.tags)}


@dataclass(frozen=True)
class Price:
    """One entry of ``GET /v1/models/pricing``: what one billing ``unit`` of ``endpoint_id`` costs."""

    endpoint_id: str
    unit_price: float
    unit: str
    currency: str = "USD"

    @classmethod
    def from_json(cls, item: Any) -> Price | None:
        if not isinstance(item, dict) or not _endpoint(item):
            return None
        price = as_number(item.get("unit_price"))
        if price is None or price < 0:
            return None
        return cls(_endpoint(item), price, _text(item.get("unit")) or "request",
                   _text(item.get("currency")) or "USD")

    def to_json(self) -> dict[str, Any]:
        return {"endpoint_id": self.endpoint_id, "unit_price": self.unit_price, "unit": self.unit,
                "currency": self.currency}


@dataclass(frozen=True)
class Estimate:
    """The answer of ``POST /v1/models/pricing/estimate``."""

    estimate_type: str
    total_cost: float
    currency: str = "USD"

    @classmethod
    def from_json(cls, body: Any, asked: str) -> Estimate | None:
        if not isinstance(body, dict):
            return None
        total = as_number(body.get("total_cost"))
        if total is None:
            return None
        return cls(_text(body.get("estimate_type")) or asked, total, _text(body.get("currency")) or "USD")


@dataclass(frozen=True)
class UsageLine:
    """One line of ``GET /v1/models/usage`` (a ``time_series`` bucket's result, or a ``summary`` row)."""

    endpoint_id: str
    quantity: float
    unit: str
    unit_price: float | None
    cost: float
    currency: str = "USD"
    bucket: str | None = None
    auth_method: str | None = None

    @classmethod
    def from_json(cls, item: Any, bucket: str | None = None) -> UsageLine | None:
        if not isinstance(item, dict) or not _endpoint(item):
            return None
        quantity = as_number(item.get("quantity")) or 0.0
        unit_price = as_number(item.get("unit_price"))
        cost = as_number(item.get("cost"))
        if cost is None:
            cost = quantity * unit_price if unit_price is not None else 0.0
        method = item.get("auth_method")
        return cls(_endpoint(item), quantity, _text(item.get("unit")), unit_price, cost,
                   _text(item.get("currency")) or "USD", bucket, method if isinstance(method, str) else None)


@dataclass(frozen=True)
class RequestItem:
    """One past request from ``GET /v1/models/requests/by-endpoint``; ``json_input`` / ``json_output`` only
    with ``expand=payloads``. Times are fal's ISO 8601 text, as sent."""

    request_id: str
    endpoint_id: str
    sent_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    status_code: int | None = None
    duration: float | None = None
    json_input: Any = field(default=None, repr=False, compare=False)
    json_output: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Any, endpoint_id: str = "") -> RequestItem | None:
        if not isinstance(item, dict) or not _text(item.get("request_id")):
            return None
        code = as_number(item.get("status_code"))
        return cls(
            request_id=item["request_id"],
            endpoint_id=_endpoint(item) or endpoint_id,
            sent_at=_text(item.get("sent_at")) or None,
            started_at=_text(item.get("started_at")) or None,
            ended_at=_text(item.get("ended_at")) or None,
            status_code=int(code) if code is not None else None,
            duration=as_number(item.get("duration")),
            json_input=item.get("json_input"),
            json_output=item.get("json_output"),
        )

    @property
    def succeeded(self) -> bool | None:
        """True for a 2xx, False for an error code, None while fal has no code for it."""
        return None if self.status_code is None else 200 <= self.status_code < 300
