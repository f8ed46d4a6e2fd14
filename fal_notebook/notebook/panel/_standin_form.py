"""A minimal stand-in with ``SchemaForm``'s API, used until the real form (``form.py``) is available."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ...catalog import get as get_spec
from ...errors import FalError

__all__ = ["SchemaForm"]


class SchemaForm:
    def __init__(self, model: str | None = None, *, models: Any = None,
                 on_submit: Callable[[str, dict, int], Any] | None = None) -> None:
        self.on_submit = on_submit
        self.count = 1
        self.problems: list[str] = []
        self._values: dict[str, Any] = {}
        self._model = get_spec(model or "fal-ai/nano-banana-pro").id
        self.prompt = W.Textarea(description="prompt")
        self.button = W.Button(description="Submit")
        self.button.on_click(lambda _: self.submit())
        self.estimate = W.Label("")
        self.widget = W.VBox([self.prompt, self.button, self.estimate])

    @property
    def model(self) -> str:
        return self._model

    @model.setter
    def model(self, value: str) -> None:
        self._model = get_spec(value).id
        self._values = {}

    def values(self) -> dict:
        values = dict(self._values)
        if self.prompt.value:
            values["prompt"] = self.prompt.value
        return values

    def set(self, name: str, value: Any) -> None:
        if name == "prompt":
            self.prompt.value = value
        else:
            self._values[name] = value

    def load(self, model: str, arguments: dict) -> None:
        self.model = model
        self.prompt.value = str(arguments.get("prompt", ""))
        self._values = {k: v for k, v in arguments.items() if k != "prompt"}

    def put_media(self, url: str, kind: str) -> str | None:
        spec = get_spec(self._model)
        for name, media in spec.media_fields.items():
            if media.kind == kind and "[" not in name and "." not in name:
                self._values[name] = [url] if media.array else url
                return name
        return None

    def submit(self) -> Any:
        from ...catalog.validate import validate

        try:
            validate(self._model, self.values(), probe_videos=False)
        except FalError as exc:
            self.problems = [str(exc)]
            return None
        self.problems = []
        return self.on_submit(self._model, self.values(), self.count) if self.on_submit else None

    def set_estimate(self, text: str) -> None:
        self.estimate.value = text
