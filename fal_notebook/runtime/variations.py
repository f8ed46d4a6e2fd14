"""What makes a job reproducible and where it came from: the seed it used, its settings, its parents.

Plain functions over records and argument dicts, used by the manager (at submit and re-run) and by ``Job``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from ..catalog.seeds import SEED, pick_seed, takes_seed
from ..store.inputs import DATA_URI_KEY
from ..store.records import JobRecord

__all__ = ["schema_fingerprint", "with_seed", "job_values", "strings_in", "file_refs", "seed_of", "settings_of", "diff",
           "plain_inputs", "python_call"]

_MISSING = object()


def schema_fingerprint(spec: Any) -> str:
    """A short hash of the model's input schema: a re-run warns when it changed since the job was made."""
    text = json.dumps(getattr(spec, "input_schema", {}) or {}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_seed(spec: Any, arguments: dict) -> dict:
    """``arguments`` with a seed the client picked when the model takes one and none was given: a job whose
    seed is known can be reproduced, whether or not fal returns the seed it used."""
    if spec is None or SEED in arguments or not takes_seed(spec):
        return arguments
    return {**arguments, SEED: pick_seed(spec)}


def _is_job(value: Any) -> bool:
    return type(value).__name__ == "Job" and hasattr(value, "files") and hasattr(value, "result")


def _job_value(job: Any) -> Any:
    files = job.files
    if files:
        return str(files[0])
    raise ValueError(f"job {job.id} has no output file to use as an input (it is {job.state.value})")


def job_values(value: Any) -> Any:
    """A ``Job`` given as an input value stands for its first output file (``image_url=job``)."""
    if _is_job(value):
        return _job_value(value)
    if isinstance(value, dict):
        return {key: job_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [job_values(item) for item in value]
    return value


def strings_in(value: Any) -> Iterator[str]:
    """Every string in an argument structure (where output paths and result URLs may hide)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def file_refs(arguments: Any) -> list[str]:
    """The strings of an input that may name a stored job's output: http(s) URLs and absolute paths (prompts
    and enums never do, so the store is not searched for them)."""
    return [s for s in strings_in(arguments) if s.startswith(("http://", "https://")) or os.path.isabs(s)]


def seed_of(record: JobRecord) -> int | None:
    """The seed the job really used: fal's answer when it returns one, else the seed that was sent."""
    for source in (record.result or {}, record.arguments or {}):
        seed = source.get(SEED) if isinstance(source, Mapping) else None
        if isinstance(seed, int) and not isinstance(seed, bool):
            return seed
    return None


def settings_of(record: JobRecord) -> dict[str, Any]:
    """``model``, every input field (a kept inline file by its local path), and the seed it used."""
    settings = {"model": record.endpoint, **plain_inputs(record.arguments or {})}
    seed = seed_of(record)
    if seed is not None:
        settings[SEED] = seed
    return settings


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def diff(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (mine, theirs)}`` for every field whose values differ (``None`` where one side has none)."""
    names = list(dict.fromkeys([*mine, *theirs]))
    out = {}
    for name in names:
        a, b = mine.get(name, _MISSING), theirs.get(name, _MISSING)
        if a is _MISSING or b is _MISSING or _key(a) != _key(b):
            out[name] = (None if a is _MISSING else a, None if b is _MISSING else b)
    return out


def plain_inputs(value: Any) -> Any:
    """Stored arguments with each kept inline file (``{"$data_uri": …, "path": …}``) as its local path, which
    a submit uploads again: short enough to print, exact enough to re-create the job."""
    if isinstance(value, dict):
        if DATA_URI_KEY in value and "path" in value:
            return str(value["path"])
        return {key: plain_inputs(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_inputs(item) for item in value]
    return value


def python_call(model: str, arguments: Mapping[str, Any]) -> str:
    """``fal_notebook.submit("model", {...})``: the Python that makes the same request."""
    lines = ",\n".join(f"    {json.dumps(k)}: {_literal(v)}" for k, v in arguments.items())
    body = "{\n" + lines + ",\n}" if lines else "{}"
    return f"fal_notebook.submit({json.dumps(model)}, {body})"


def _literal(value: Any) -> str:
    """A Python literal for a JSON-like value (``True``/``None``, not ``true``/``null``)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
