"""``%fal info MODEL``: what a model takes, for a person — every description in full and wrapped, limits as
sentences, the price when fal's price list answered. Plain values in, text and HTML out."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from typing import Any

from .html import esc as _e

__all__ = ["ModelInfo", "limit_lines", "price_line"]

WIDTH = 100  # characters per line of the text form
_CELL = "padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #e5e7eb"


def _range(low: Any, high: Any, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low}–{high}{unit}"
    if high is not None:
        return f"at most {high}{unit}"
    return f"at least {low}{unit}" if low is not None else ""


def _media_limit(kind: str, rule: Mapping[str, Any]) -> str:
    parts = []
    if rule.get("formats"):
        parts.append(" or ".join(str(f) for f in rule["formats"]))
    duration = _range(rule.get("min_duration"), rule.get("max_duration"), " s")
    if duration:
        parts.append(f"{duration} long")
    sides = _range(rule.get("min_side"), rule.get("max_side"), " px")
    if sides:
        parts.append(f"sides {sides}")
    if rule.get("max_mb") is not None:
        parts.append(f"at most {rule['max_mb']} MB")
    return f"{rule.get('field', kind)} ({kind}): " + ", ".join(parts)


def limit_lines(limits: Mapping[str, Any] | None) -> list[str]:
    """The catalogue's limits as lines a person reads; keys it does not know are still shown, readably."""
    lines = []
    for key, value in (limits or {}).items():
        if key in ("prompt_field", "ref_fields"):
            continue
        if isinstance(value, Mapping) and key in ("video", "image", "audio"):
            lines.append(_media_limit(key, value))
        elif key == "max_refs":
            fields = " and ".join(str(f) for f in limits.get("ref_fields") or ()) or "references"
            lines.append(f"at most {value} references in all across {fields}")
        elif key == "prompt_refs" and isinstance(value, Mapping):
            field = limits.get("prompt_field", "prompt")
            refs = ", ".join(f"@{tag}1, @{tag}2… for {target}" for tag, target in value.items())
            lines.append(f"{field} may refer to its inputs: {refs}")
        else:
            shown = value if isinstance(value, str | int | float) else json.dumps(value, default=str)
            lines.append(f"{key.replace('_', ' ')}: {shown}")
    return lines


def price_line(price: Mapping[str, Any] | None, model: str) -> str:
    """``$0.04 per image (fal's price list)``, or where to look when the price list could not be read."""
    if not price:
        return f"price: not available here; fal lists it at https://fal.ai/models/{model}"
    currency = str(price.get("currency") or "USD")
    amount = f"${float(price['unit_price']):g}" if currency == "USD" else f"{float(price['unit_price']):g} {currency}"
    return f"price: {amount} per {price.get('unit')} (fal's price list; %fal jobs shows what each job took)"


class ModelInfo:
    """One model described: a heading, its description, price, limits, then one entry per field."""

    def __init__(self, info: Mapping[str, Any], price: Mapping[str, Any] | None = None) -> None:
        self.info = info
        self.price = price

    def _heading(self) -> str:
        info = self.info
        aliases = f" ({', '.join(info['aliases'])})" if info.get("aliases") else ""
        facts = [info.get("title"), info.get("category"), f"output: {info['output']}" if info.get("output") else ""]
        return f"{info['id']}{aliases} · " + " · ".join(str(f) for f in facts if f)

    @staticmethod
    def _field_facts(field: Mapping[str, Any]) -> str:
        kind = str(field["type"]) + (f" ({field['media']['kind']})" if field.get("media") else "")
        facts = [kind]
        if field.get("required"):
            facts.append("required")
        if field.get("default") is not None:
            facts.append(f"default {json.dumps(field['default'])}")
        choices = ", ".join(str(v) for v in field.get("enum") or ())
        if choices and choices != str(field["type"]):  # the type is often the list of choices already
            facts.append("one of " + choices)
        elif not choices and field.get("range"):
            facts.append(str(field["range"]))
        return "; ".join(facts)

    def _text(self) -> str:
        info = self.info
        lines = textwrap.wrap(self._heading(), WIDTH, subsequent_indent="    ")
        if info.get("description"):
            lines += textwrap.wrap(str(info["description"]), WIDTH)
        lines.append(price_line(self.price, info["id"]))
        limits = limit_lines(info.get("limits"))
        if limits:
            lines.append("limits:")
            lines += [sub for line in limits for sub in textwrap.wrap(line, WIDTH, initial_indent="  - ",
                                                                       subsequent_indent="    ")]
        lines.append(f"fields (%fal {info['id']} --help shows them as options):")
        for field in info.get("fields", ()):
            name = "--" + str(field["name"]).replace("_", "-")
            lines += textwrap.wrap(f"{name}  {self._field_facts(field)}", WIDTH, initial_indent="  ",
                                   subsequent_indent="      ")
            if field.get("description"):
                lines += textwrap.wrap(str(field["description"]), WIDTH, initial_indent="      ",
                                       subsequent_indent="      ")
        return "\n".join(lines)

    def _html(self) -> str:
        info = self.info
        parts = [f"<div><b>{_e(self._heading())}</b></div>"]
        if info.get("description"):
            parts.append(f'<div style="max-width:80em">{_e(info["description"])}</div>')
        parts.append(f"<div>{_e(price_line(self.price, info['id']))}</div>")
        limits = limit_lines(info.get("limits"))
        if limits:
            parts.append("<div>limits:</div><ul style=\"margin:0\">"
                         + "".join(f"<li>{_e(line)}</li>" for line in limits) + "</ul>")
        rows = "".join(
            f'<tr><td style="{_CELL}"><code>--{_e(str(f["name"]).replace("_", "-"))}</code></td>'
            f'<td style="{_CELL}">{_e(self._field_facts(f))}</td>'
            f'<td style="{_CELL};max-width:40em;white-space:normal">{_e(f.get("description") or "")}</td></tr>'
            for f in info.get("fields", ()))
        parts.append(f'<table style="border-collapse:collapse;font-size:12px"><thead><tr><th style="{_CELL}">'
                     f'option</th><th style="{_CELL}">type</th><th style="{_CELL}">description</th></tr></thead>'
                     f"<tbody>{rows}</tbody></table>")
        return "".join(parts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self._text(), "text/html": self._html()}

    def __repr__(self) -> str:
        return self._text()
