"""Prices and estimates as text: ``$0.30``, ``2 image × $0.15 = $0.30``, ``est. $0.30`` / ``cost $0.30``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["money", "estimate_text", "cost_text"]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount: float | None, currency: str | None = "USD") -> str:
    """``$0.30``; small amounts keep their significant digits (``$0.0025``); other currencies by code."""
    if amount is None:
        return ""
    text = f"{amount:.2f}" if amount == 0 or abs(amount) >= 0.1 else f"{amount:.4g}"
    code = (currency or "USD").upper()
    symbol = _SYMBOLS.get(code)
    return f"{symbol}{text}" if symbol else f"{text} {code}"


def _quantity(value: Any) -> str:
    number = float(value)
    return f"{number:g}" if number == int(number) else f"{number:.3g}"


def estimate_text(estimate: Mapping[str, Any] | None) -> str:
    """``2 image × $0.15 = $0.30`` ("" without an estimate)."""
    if not estimate:
        return ""
    currency = estimate.get("currency")
    return (f"{_quantity(estimate['quantity'])} {estimate['unit']} × {money(estimate['unit_price'], currency)} = "
            f"{money(estimate['total'], currency)}")


def cost_text(estimate: Mapping[str, Any] | None, cost: float | None, done: bool) -> str:
    """What a card says about money: ``est. $0.30`` before the end, ``cost $0.30`` after (``not billed`` for a
    failure or a cancel); "" when no price is known."""
    if not estimate:
        return ""
    currency = estimate.get("currency")
    if not done or cost is None:
        return f"est. {money(estimate.get('total'), currency)}"
    return f"cost {money(cost, currency)}" + (" (not billed)" if cost == 0 else "")
