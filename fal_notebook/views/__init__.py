"""What a job looks like: card data, HTML and text for jobs, groups and tables. Plain values in, strings out.

No IPython, no httpx, no store: the notebook and the CLI hand jobs in and display what comes back.
"""

from .card_data import (
    THUMB_BYTES,
    THUMB_SIDE,
    card_data,
    group_variants,
    prompt_of,
    state_name,
    thumbnail_uri,
)
from .compare import CompareData, CompareRow, compare_data, compare_html, compare_text, settings_of
from .group import GroupData, Tile, group_data, group_html, group_text, tile_data
from .html import CardData, Media, card_html, card_text, esc
from .tables import Message, Table, job_table, model_info, models_table

__all__ = [
    "card_data", "group_variants", "prompt_of", "state_name", "thumbnail_uri", "THUMB_SIDE", "THUMB_BYTES",
    "CardData", "Media", "card_html", "card_text", "esc", "Message", "Table", "job_table", "model_info",
    "models_table", "CompareData", "CompareRow", "compare_data", "compare_html", "compare_text", "settings_of",
    "GroupData", "Tile", "group_data", "group_html", "group_text", "tile_data",
]
