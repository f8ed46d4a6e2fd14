"""The job list and the gallery: ONE anywidget whose synced state is lists of light records.

Why one widget and records, not a widget per job: a gallery of hundreds of stored jobs must open fast and keep
the comm traffic small. Pictures never sit in the state: the view asks for the thumbnails of the tiles it
shows (``{"type": "thumbs", "ids": [...]}``) and the kernel answers each with a small JPEG data URI
(``{"type": "thumbs", "items": {id: uri}}``). Clicks arrive as custom messages too
(``{"type": "cancel" | "reuse" | "use" | "use_in" | "compare" | "uncompare", "id": ...}``); the panel handles
them. The board itself holds state only: ``board.js`` draws it.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

__all__ = ["Board", "MESSAGES"]

_HERE = Path(__file__).parent
MESSAGES = frozenset({"thumbs", "cancel", "reuse", "use", "use_in", "compare", "uncompare", "clear_compare"})


class Board(anywidget.AnyWidget):
    """State of the job list and gallery; every list holds records from :func:`records.job_record`."""

    _esm = _HERE / "board.js"
    _css = _HERE / "board.css"

    jobs = traitlets.List(traitlets.Dict()).tag(sync=True)  # this notebook's jobs, newest first (live)
    items = traitlets.List(traitlets.Dict()).tag(sync=True)  # finished results with files, newest first
    show_all = traitlets.Bool(False).tag(sync=True)  # the gallery shows every job in the store
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)  # ids, set by clicks in the view
    detail = traitlets.Dict().tag(sync=True)  # of the last selected job (records.detail_of)
    comparison = traitlets.Dict().tag(sync=True)  # records.comparison_of, or {}
    notice = traitlets.Unicode("").tag(sync=True)  # one line: what the last action did, or why it did not
    offer = traitlets.Dict().tag(sync=True)  # {"id", "model", "kind"}: "no fitting field here, use MODEL?"
