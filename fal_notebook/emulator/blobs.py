"""Bytes the emulator holds (uploads and generated media), kept on disk, never whole in memory.

Uploads are streamed chunk by chunk from the request body into a file; multipart parts are separate files joined
on completion; downloads stream back from disk.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Blob", "BlobStore"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(name: str | None, default: str = "upload.bin") -> str:
    cleaned = _UNSAFE.sub("_", (name or "").rsplit("/", 1)[-1]).strip("._")
    return cleaned[:100] or default


@dataclass(frozen=True)
class Blob:
    key: str  # "<random>/<file name>": the URL path below /files/ or /media/
    content_type: str
    size: int
    path: Path


class BlobStore:
    """Files under one temporary directory, removed by :meth:`close`."""

    def __init__(self, root: Path | None = None) -> None:
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="fal-emulator-")
        self.root = Path(root or self._tmp.name)  # type: ignore[union-attr]
        self._lock = threading.Lock()
        self._blobs: dict[str, Blob] = {}
        self._types: dict[str, str] = {}  # key reserved but not yet written → content type

    def new_key(self, file_name: str | None, content_type: str | None) -> str:
        key = f"{secrets.token_hex(8)}/{_safe_name(file_name)}"
        with self._lock:
            self._types[key] = content_type or "application/octet-stream"
        return key

    def _path(self, key: str) -> Path:
        return self.root / key.replace("/", "__")

    def _register(self, key: str, path: Path) -> Blob:
        with self._lock:
            content_type = self._types.pop(key, "application/octet-stream")
            blob = Blob(key, content_type, path.stat().st_size, path)
            self._blobs[key] = blob
        return blob

    def put_bytes(self, key: str, data: bytes) -> Blob:
        path = self._path(key)
        path.write_bytes(data)
        return self._register(key, path)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> Blob:
        path = self._path(key)
        await _write_stream(path, chunks)
        return self._register(key, path)

    async def put_part(self, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes]) -> str:
        """Store one multipart part; returns its quoted ETag (MD5, as S3-style CDNs do)."""
        path = self.root / f"part-{upload_id}-{number:05d}"
        digest = await _write_stream(path, chunks)
        return f'"{digest}"'

    def complete_multipart(self, key: str, upload_id: str, numbers: list[int]) -> Blob:
        """Join the parts in order into the final file, streaming (parts may be 10 MiB each)."""
        target = self._path(key)
        with target.open("wb") as out:
            for number in sorted(numbers):
                part = self.root / f"part-{upload_id}-{number:05d}"
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1024 * 1024)
                part.unlink()
        return self._register(key, target)

    def has_part(self, upload_id: str, number: int) -> bool:
        return (self.root / f"part-{upload_id}-{number:05d}").exists()

    def get(self, key: str) -> Blob | None:
        with self._lock:
            return self._blobs.get(key)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


async def _write_stream(path: Path, chunks: AsyncIterator[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("wb") as out:
        async for chunk in chunks:
            if chunk:
                digest.update(chunk)
                out.write(chunk)
    return digest.hexdigest()
