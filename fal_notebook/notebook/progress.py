"""Terminal IPython's ``--wait``: one progress line rewritten in place, then the final card once.

Why not cards: a terminal cannot redraw an earlier output, so a card per state change would scroll a pile of
stale cards. The line is redrawn from the main thread only (the waiting thread), every :data:`TICK` seconds or
sooner when the job ends, so nothing is ever written from the runtime thread. When stdout is not a terminal
(piped, captured) no progress is drawn at all: a log file full of carriage returns helps nobody.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, TextIO

from ..errors import FalTimeoutError
from ..views.card_data import card_data
from ..views.html import progress_text

__all__ = ["wait_with_progress", "TICK"]

TICK = 0.25  # seconds between redraws of the progress line (elapsed time moves even when nothing else does)
_CLEAR = "\r\x1b[2K"  # carriage return + erase the whole line


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def wait_with_progress(jobs: list[Any], stream: TextIO | None = None) -> None:
    """Block until every job ends, drawing one line per job in turn (the one being waited for) in place.

    A ``KeyboardInterrupt`` propagates with the line cleared, so whatever the caller prints starts clean.
    """
    stream = stream or sys.stdout
    draw = _is_tty(stream)
    try:
        for job in jobs:
            while not job.done:
                if draw:
                    width = shutil.get_terminal_size((100, 20)).columns - 1
                    stream.write(_CLEAR + progress_text(card_data(job), width))
                    stream.flush()
                try:
                    job.wait(TICK)
                except FalTimeoutError:
                    continue
    finally:
        if draw:
            stream.write(_CLEAR)
            stream.flush()
