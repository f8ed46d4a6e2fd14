"""The account's tables: ``%fal spend`` (cost per model, fal's own figures) and ``%fal models TEXT`` (bundled
models first, then fal's catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .money import money
from .tables import Table

__all__ = ["spend_table", "found_models_table"]


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
