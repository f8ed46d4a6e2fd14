"""``%%fal`` cell bodies (a YAML mapping, or the prompt itself) and ``{name}`` filling from the user's namespace.

IPython's ``$var`` expansion is never used (the magic is ``@no_var_expand``): ``$`` is common in prompts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["parse_cell_body", "interpolate"]

_KEY = re.compile(r"^[A-Za-z_][\w-]*$")


def _yaml_loader() -> type:
    """SafeLoader with YAML 1.2 scalars: ``16:9`` stays a string (1.1 reads it as 969) and ``no`` stays text."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {}
    resolvers = [
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:int", r"^[-+]?[0-9]+$", "-+0123456789"),
        ("tag:yaml.org,2002:float", r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
         "-+.0123456789"),
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ]
    for tag, pattern, first in resolvers:
        Loader.add_implicit_resolver(tag, re.compile(pattern), list(first))
    return Loader


def parse_cell_body(body: str) -> dict[str, Any]:
    """A ``%%fal`` body: a YAML mapping of fields, or else the whole (stripped) body is the prompt.

    Only mappings whose keys all look like field names count, so prose such as "A cat: on a mat" stays a
    prompt. Values are YAML 1.2 scalars (``aspect_ratio: 16:9`` is the string ``"16:9"``).
    """
    import yaml

    text = body.strip()
    if not text:
        return {}
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and data and all(isinstance(k, str) and _KEY.match(k) for k in data):
        return data
    return {"prompt": text}


_WHOLE = re.compile(r"^\{([A-Za-z_]\w*)\}$")


class _Placeholder:
    """What an unknown ``{name}`` formats to: itself, with its format spec, so the text is left untouched."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __format__(self, spec: str) -> str:
        return "{" + self.text + (":" + spec if spec else "") + "}"

    def __repr__(self) -> str:
        return "{" + self.text + "!r}"

    def __getattr__(self, attr: str) -> _Placeholder:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return _Placeholder(f"{self.text}.{attr}")

    def __getitem__(self, key: Any) -> _Placeholder:
        return _Placeholder(f"{self.text}[{key}]")


class _Lookup(dict):
    """The ``format_map`` mapping: the user's namespace, with unknown names kept as placeholders."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        super().__init__()
        self.namespace = namespace

    def __missing__(self, key: str) -> Any:
        return self.namespace[key] if key in self.namespace else _Placeholder(key)


def interpolate(value: Any, namespace: Mapping[str, Any]) -> Any:
    """Fill ``{name}`` from ``namespace`` in strings, lists and dicts (jupyter-ai's ``format_map`` style).

    Unknown names stay as written and ``{{``/``}}`` are literal braces. A value that is exactly ``{name}``
    becomes the bound object itself (a PIL image, a Path, a number), so it can feed an image field.
    Text that is not a valid format string (stray braces) is returned unchanged.
    """
    if isinstance(value, Mapping):
        return {k: interpolate(v, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, namespace) for v in value]
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = _WHOLE.match(value)
    if whole and whole.group(1) in namespace:
        return namespace[whole.group(1)]
    try:
        return value.format_map(_Lookup(namespace))
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return value
