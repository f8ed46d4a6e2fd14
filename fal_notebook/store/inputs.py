"""Keep data URIs (and raw bytes) out of the job store: their bytes go to ``inputs/<sha256>`` files.

A stored input holds ``{"$data_uri": <sha256>, "path": <local copy>, "header": "data:image/png;base64"}`` in
place of the URI, so the database stays small and the exact URI can be rebuilt for a re-submit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
from pathlib import Path
from typing import Any

from ..errors import UploadError

__all__ = ["externalize", "internalize", "keep_bytes", "keep_uploads", "DATA_URI_KEY"]

DATA_URI_KEY = "$data_uri"


def keep_bytes(data: bytes, folder: Path, suffix: str = "") -> Path:
    """Write ``data`` once to ``folder/<sha256><suffix>`` (0600, folder 0700) and return the path."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / (hashlib.sha256(data).hexdigest() + suffix)
    if path.exists():
        return path
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return path


def _is_data_uri(value: str) -> bool:
    return value[:5].lower() == "data:" and "," in value


def _externalize_uri(uri: str, folder: Path) -> dict[str, str]:
    header, payload = uri.split(",", 1)
    data = payload.encode("utf-8")
    if header.lower().endswith(";base64"):
        try:
            data = base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            header = header[: -len(";base64")] + ";raw-base64"
    path = keep_bytes(data, folder)
    return {DATA_URI_KEY: path.name, "path": str(path), "header": header}


def externalize(value: Any, folder: Path) -> Any:
    """A JSON-ready copy of ``value``: data URIs and bytes moved to files, paths as strings."""
    if isinstance(value, str):
        return _externalize_uri(value, folder) if _is_data_uri(value) else value
    if isinstance(value, dict):
        if DATA_URI_KEY in value:
            return dict(value)
        return {str(key): externalize(item, folder) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [externalize(item, folder) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return str(keep_bytes(bytes(value), folder))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _internalize_ref(ref: dict[str, str]) -> str:
    path = Path(ref["path"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UploadError(f"the stored input {path} is gone, so the job cannot be re-submitted") from exc
    header = ref.get("header", "data:application/octet-stream;base64")
    if header.endswith(";raw-base64"):
        return f"{header[: -len(';raw-base64')]};base64,{data.decode('utf-8')}"
    if header.lower().endswith(";base64"):
        return f"{header},{base64.b64encode(data).decode('ascii')}"
    return f"{header},{data.decode('utf-8')}"


def internalize(value: Any) -> Any:
    """``value`` with every stored data-URI reference turned back into the URI."""
    if isinstance(value, dict):
        if DATA_URI_KEY in value and "path" in value:
            return _internalize_ref(value)
        return {key: internalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [internalize(item) for item in value]
    return value


Uploads = list[tuple[str, Any]]


def keep_uploads(arguments: dict, uploads: Uploads, folder: Path) -> tuple[dict, list[tuple[str, str]]]:
    """Local paths made absolute, bytes and PIL images saved under ``folder``, each put in place in
    ``arguments``: a re-submit after a crash finds every upload on disk."""
    from ..catalog.validate import replace_at
    from ..media import sniff_suffix

    durable = []
    for json_path, value in uploads:
        if isinstance(value, (str, os.PathLike)):
            kept = str(Path(value).expanduser().resolve())
        elif isinstance(value, (bytes, bytearray, memoryview)):
            kept = str(keep_bytes(bytes(value), folder, sniff_suffix(bytes(value))))
        else:  # a PIL image
            buffer = io.BytesIO()
            value.save(buffer, format="PNG")
            kept = str(keep_bytes(buffer.getvalue(), folder, ".png"))
        arguments = replace_at(arguments, json_path, kept)
        durable.append((json_path, kept))
    return arguments, durable
