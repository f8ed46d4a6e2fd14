"""``%%fal`` cell bodies (a YAML mapping, or the prompt itself) and ``{name}`` filling from the user's namespace.

IPython's ``$var`` expansion is never used (the magic is ``@no_var_expand``): ``$`` is common in prompts.
"""

from __future__ import annotations

import difflib
import numbers
import re
import string
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError

__all__ = ["parse_cell_body", "interpolate"]

_KEY = re.compile(r"^[A-Za-z_][\w-]*$")


class _AliasRefused(Exception):
    """A YAML alias in a cell body (raised by the loader, turned into a ``UsageError``)."""


def _yaml_loader() -> type:
    """SafeLoader with YAML 1.2 scalars: ``16:9`` stays a string (1.1 reads it as 969) and ``no`` stays text."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            # An alias shares a node: a few lines of "billion laughs" expand to gigabytes once the request is
            # serialised, and "&a [*a]" makes a loop. Request bodies never need them.
            if self.check_event(yaml.AliasEvent):
                raise _AliasRefused("YAML aliases (*name) are not supported in a %%fal body; write the value out")
            return super().compose_node(parent, index)

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


_MAPPING_START = re.compile(r"^[A-Za-z_][\w-]*\s*:(\s|$)")


def parse_cell_body(body: str) -> dict[str, Any]:
    """A ``%%fal`` body: a YAML mapping of fields, or else the whole (stripped) body is the prompt.

    Only mappings whose keys all look like field names count, so prose such as "A cat: on a mat" stays a
    prompt. Values are YAML 1.2 scalars (``aspect_ratio: 16:9`` is the string ``"16:9"``). A body whose first
    line reads like a field (``prompt: …``) but is not valid YAML is an error with YAML's line and column: sent
    as the prompt it would be a paid request with ``image_size: [oops`` in its text.
    """
    import yaml

    text = body.strip()
    if not text:
        return {}
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except _AliasRefused as exc:
        if _MAPPING_START.match(text):  # meant as fields: say why, rather than send the YAML as a prompt
            raise UsageError(str(exc)) from None
        data = None
    except yaml.YAMLError as exc:
        if _MAPPING_START.match(text):
            raise UsageError(_yaml_problem(exc)) from None
        data = None
    except (RecursionError, ValueError):  # absurdly nested: prose
        data = None
    if isinstance(data, dict) and data and all(isinstance(k, str) and _KEY.match(k) for k in data):
        return data
    return {"prompt": text}


def _yaml_problem(exc: Any) -> str:
    """YAML's own complaint, with the line and column (1-based) where it found it; nothing was sent."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return (f"the cell body looks like YAML fields but does not parse{where}: {what}; nothing was sent. "
            "Fix the YAML, or write the whole body as the prompt: `prompt: |` then the text indented")


_WHOLE = re.compile(r"^\{([A-Za-z_]\w*)\}$")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_TEXT_TYPES = (str, numbers.Real)


def _fields(text: str) -> list[str] | None:
    """The root names of a text's ``{…}`` fields, or ``None`` when the text is not a format string of names
    (stray braces, JSON, ``{0}``): such text is sent as written."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return None
    roots = []
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        root = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if not _IDENT.match(root):
            return None
        roots.append(root)
    return roots


def _user_names(namespace: Mapping[str, Any]) -> list[str]:
    """The notebook's own variables: no IPython history (``_i3``, ``Out``), no modules or callables."""
    import types

    hidden = {"In", "Out", "exit", "quit", "get_ipython", "open"}
    return sorted(name for name, value in namespace.items()
                  if not name.startswith("_") and name not in hidden
                  and not isinstance(value, (types.ModuleType, types.FunctionType, type)))


def _undefined(missing: list[str], namespace: Mapping[str, Any]) -> UsageError:
    names = _user_names(namespace)
    first = missing[0]
    close = difflib.get_close_matches(first, names, n=1)
    hint = f" (did you mean {{{close[0]}}}?)" if close else ""
    shown = ", ".join(names[:12]) + (f" … ({len(names)} in all)" if len(names) > 12 else "")
    have = f"defined: {shown}" if names else "the notebook defines no variables yet"
    listed = ", ".join("{" + m + "}" for m in missing)
    return UsageError(f"{listed} {'is' if len(missing) == 1 else 'are'} not defined{hint}; {have}. Nothing was "
                      "sent. Define it in a cell first, or write {{ }} for literal braces")


def _not_text(name: str, value: Any) -> UsageError:
    kind = f"{type(value).__module__.split('.')[0]}.{type(value).__name__}".removeprefix("builtins.")
    return UsageError(f"{{{name}}} is not text ({kind}), so it cannot go inside text; nothing was sent. Give "
                      f"it on its own to a media field, e.g. --image-url {{{name}}} or `image_urls: [\"{{{name}}}\"]`")


def interpolate(value: Any, namespace: Mapping[str, Any] | None) -> Any:
    """Fill ``{name}`` from ``namespace`` in strings, lists and dicts (jupyter-ai's ``format_map`` style).

    ``{{``/``}}`` are literal braces. A value that is exactly ``{name}`` becomes the bound object itself (a PIL
    image, a Path, a number), so it can feed an image field; inside longer text only text and numbers may be
    filled in. An unknown name is an error naming it (sent literally it would cost a request). Text that is not
    a format string of names (stray braces, JSON) is returned unchanged. ``namespace=None`` fills nothing.
    """
    if namespace is None:
        return value
    if isinstance(value, Mapping):
        return {k: interpolate(v, namespace) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, namespace) for v in value]
    if not isinstance(value, str) or "{" not in value and "}" not in value:
        return value
    roots = _fields(value)
    if roots is None:
        return value
    missing = list(dict.fromkeys(r for r in roots if r not in namespace))
    if missing:
        raise _undefined(missing, namespace)
    whole = _WHOLE.match(value)
    if whole:
        return namespace[whole.group(1)]
    for root in roots:
        if not isinstance(namespace[root], _TEXT_TYPES) and not _attribute_only(value, root):
            raise _not_text(root, namespace[root])
    try:
        filled = value.format_map(namespace)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as exc:
        raise UsageError(f"cannot fill {value!r}: {exc}") from None
    return filled


def _attribute_only(text: str, root: str) -> bool:
    """Whether every use of ``root`` in ``text`` reads an attribute or item (``{job.id}``), which may be text."""
    fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    return all(f != root for f in fields if re.split(r"[.\[]", f, maxsplit=1)[0] == root)
