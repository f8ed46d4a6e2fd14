"""Fields that take a file: a URL or path, an upload, or a gallery item put there by the panel.

A media value is what the catalogue accepts for a file field: an http(s) URL or a local path typed in the box,
a gallery item put there by the panel, or an uploaded file. An upload becomes a ``data:`` URI: JSON-ready,
kept out of the job store's database by the store (``inputs/``), and accepted by fal as a file input.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import ipywidgets as W

from ...media import data_uri_type, guess_content_type
from ...views.html import esc
from .fields import LABEL_WIDTH, UNSET, Field

__all__ = ["MediaInput", "MAX_UPLOAD_BYTES"]

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a bigger file goes by path or URL: the browser→kernel message carries it
THUMB_PX = 96


class MediaInput(Field):
    """A URL or path box, an **Upload** button and a thumbnail of what is there."""

    def __init__(self, name: str, schema: Mapping[str, Any], *, required: bool = False, path: str = "",
                 kind: str = "image") -> None:
        self.kind = kind
        self._upload: str | None = None  # the data URI of the last upload, while the box shows its name
        self._upload_label = ""
        self._too_big: str | None = None
        super().__init__(name, schema, required=required, path=path)

    def build(self) -> W.Widget:
        self._text = self._described(W.Text(value="", placeholder=f"{self.kind} URL or local file path",
                                            layout=W.Layout(flex="1 1 auto")))
        self._file = W.FileUpload(accept=f"{self.kind}/*" if self.kind in ("image", "video", "audio") else "",
                                  multiple=False, description="Upload", tooltip=f"Upload a {self.kind} file")
        self._preview = W.HTML("", layout=W.Layout(margin=f"0 0 0 {LABEL_WIDTH}"))
        self._text.observe(self._typed, names="value")
        self._file.observe(self._uploaded, names="value")
        return W.VBox([W.HBox([self._text, self._file], layout=W.Layout(width="100%")), self._preview],
                      layout=W.Layout(width="100%"))

    def _typed(self, change: Any) -> None:
        if self._upload is not None and change["new"] != self._upload_label:
            self._upload = None  # the user typed over the upload
        self._too_big = None
        self._refresh_preview()
        self._edited()

    def _uploaded(self, change: Any) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        data = item["content"].tobytes() if hasattr(item["content"], "tobytes") else bytes(item["content"])
        self._file.value = ()  # the bytes live on in the value; the synced widget state stays small
        self.take_bytes(data, str(item.get("name") or "upload"), str(item.get("type") or ""))

    def take_bytes(self, data: bytes, name: str, content_type: str = "") -> None:
        """Use a file's bytes as the value (what the **Upload** button does)."""
        label = f"uploaded: {name} ({len(data) / 1024:.0f} KB)"
        if len(data) > MAX_UPLOAD_BYTES:
            self._upload, self._too_big = None, f"{name} is larger than {MAX_UPLOAD_BYTES // 2**20} MB: " \
                                                "give its path or a URL instead"
        else:
            content_type = content_type or guess_content_type(name)
            self._upload, self._too_big = f"data:{content_type};base64,{base64.b64encode(data).decode()}", None
        self._upload_label = label
        self._text.value = label  # via _typed: keeps the upload because the text is its label
        self._thumb_bytes(data, content_type)
        self._edited()

    def _thumb_bytes(self, data: bytes, content_type: str) -> None:
        if not content_type.startswith("image/") or len(data) > MAX_UPLOAD_BYTES:
            return
        try:
            from ...media import thumbnail_jpeg

            jpeg = thumbnail_jpeg(data, max_side=THUMB_PX * 2)
        except Exception:  # not an image Pillow reads: validation says what is wrong with the value
            return
        src = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        self._preview.value = f'<img src="{src}" alt="{esc(self.name)}" style="max-height:{THUMB_PX}px">'

    def _refresh_preview(self) -> None:
        text = self._text.value.strip()
        if self._upload is not None:
            return
        if self.kind == "image" and text.lower().startswith(("http://", "https://")):
            self._preview.value = (f'<img src="{esc(text)}" alt="{esc(self.name)}" loading="lazy" '
                                   f'style="max-height:{THUMB_PX}px">')
        elif self.kind == "video" and text.lower().startswith(("http://", "https://")):
            self._preview.value = (f'<video src="{esc(text)}" preload="metadata" muted '
                                   f'style="max-height:{THUMB_PX}px"></video>')
        else:
            self._preview.value = ""

    def own_problems(self) -> list[str]:
        return [self._too_big] if self._too_big else []

    def get(self) -> Any:
        if self._upload is not None:
            return self._upload
        if self._too_big:
            return UNSET
        text = self._text.value.strip()
        return text if text else UNSET

    def put(self, value: Any) -> None:
        if isinstance(value, str) and value[:5].lower() == "data:":
            self._put_data_uri(value)
            return
        self._upload = None
        self._text.value = "" if value is None else str(value)

    def _put_data_uri(self, uri: str) -> None:
        """A data URI (Reuse settings of an uploaded file) is held like an upload: the box shows its type and
        size, never the megabytes of base64 (they would all go to the browser as widget state)."""
        content_type = data_uri_type(uri) or "unknown type"
        self._upload, self._too_big = uri, None
        self._upload_label = f"data URI: {content_type} ({len(uri) * 3 / 4 / 1024:.0f} KB)"
        self._preview.value = ""
        self._text.value = self._upload_label
        if content_type.startswith("image/") and ";base64," in uri[:200]:
            try:
                data = base64.b64decode(uri.split(",", 1)[1], validate=False)
            except ValueError:  # not base64: validation says what is wrong with it
                return
            self._thumb_bytes(data, content_type)
