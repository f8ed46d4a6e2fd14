"""Prices, estimates and spend as text and tables: ``$0.30``, ``2 image × $0.15 = $0.30``, spend per model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .tables import Table

__all__ = ["money", "estimate_text", "cost_text", "spend_table", "found_models_table"]

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


def spend_table(report: Mapping[str, Any]) -> Table:
    """``%fal spend``: one row per model (jobs, cost, still running), the total in the title, fal's figures
    (when the key may read them) as a last row."""
    currency = report.get("currency")
    rows = [[m["model"], m["jobs"], money(m["cost"], m["currency"] or currency),
             money(m["pending"], m["currency"] or currency) if m["pending"] else "",
             m["unpriced"] or ""] for m in report.get("models", [])]
    since = f" since {report['since'][:16].replace('T', ' ')}" if report.get("since") else ""
    scope = "all jobs" if report.get("scope") == "all" else "this notebook's jobs"
    title = f"spend of {scope}{since}: {money(report.get('total'), currency)} for {report.get('jobs', 0)} job(s)"
    usage = report.get("fal_usage") or {}
    if usage.get("available"):
        rows.append(["fal's usage (all tools)", "", money(usage.get("total"), currency), "", ""])
    elif usage:
        title += f" (fal's usage: {usage.get('reason')})"
    return Table(title, ["model", "jobs", "cost", "running (est.)", "unpriced"], rows)


def found_models_table(report: Mapping[str, Any]) -> Table:
    """``%fal models TEXT``: bundled matches first, then fal's catalogue; the title says when it was offline."""
    rows = [[m["id"], ", ".join(m.get("aliases") or []), m.get("category", ""), m.get("title", ""),
             "bundled" if m.get("source") == "bundled" else "fal"] for m in report.get("models", [])]
    title = f"{len(rows)} model(s)"
    if report.get("note"):
        title += f" — {report['note']}"
    return Table(title, ["id", "aliases", "category", "title", "from"], rows)
