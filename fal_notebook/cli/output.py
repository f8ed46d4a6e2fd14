"""What the CLI prints: JSON on stdout (data URIs cut), one line on stderr."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from enum import Enum
from typing import Any

__all__ = ["emit", "say", "scrub"]


def say(text: str) -> None:
    prefix = "" if text.startswith("fal-notebook") else "fal-notebook: "
    sys.stderr.write(f"{prefix}{text}\n")
    sys.stderr.flush()


def emit(data: Any, *, line: bool = False) -> None:
    """JSON on stdout: indent 2 (``line``: one compact line, for JSON Lines), non-ASCII kept, times in
    ISO 8601, paths and enums as text, and every data URI cut to its header and length (see :func:`scrub`)."""
    indent = None if line else 2
    text = json.dumps(scrub(data), indent=indent, ensure_ascii=False, default=_json_default)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return getattr(value, "value", None) if isinstance(value, Enum) else str(value)


_DATA_URI = re.compile(r"(data:[\w.+-]*/?[\w.+-]*(?:;[\w.+-]+(?:=[\w.+-]*)?)*),([A-Za-z0-9+/=%_-]{32,})")


def scrub(value: Any) -> Any:
    """``value`` with every data URI (whole strings or inside text, e.g. an error echoing the input) shown as
    ``data:<type>;base64,…(N characters)``: a terminal or a log never receives megabytes of base64."""
    if isinstance(value, str):
        return _DATA_URI.sub(lambda m: f"{m[1]},…({len(m[0])} characters)", value) if "data:" in value else value
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value
