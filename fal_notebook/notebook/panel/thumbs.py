"""The gallery's thumbnails kept on disk, so a panel opened again (a new kernel, another notebook) decodes nothing.

Decoding a 1024² PNG and shrinking it costs tens of milliseconds; reading a ~20 KB JPEG back costs a fraction of
one. An entry is keyed by the picture's absolute path, size and modification time and the thumbnail's side and
byte budget, so an overwritten file gets a fresh one. Several kernels may share the folder: an entry is written
to a temporary file in the same folder and renamed over (readers see a whole file or none), and a file removed by
another kernel's clean-up is simply made again. The folder is bounded: past ``max_bytes`` the least recently
used entries go until it is back to ``PRUNE_TO`` of the bound. An empty entry remembers "no thumbnail possible"
(not a picture Pillow reads) for that version of the file.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["ThumbCache", "cache_in", "thumbnail", "smaller", "CACHE_BYTES", "PRUNE_TO", "JPEG_URI"]

log = logging.getLogger("fal_notebook")

CACHE_BYTES = 64 * 2**20  # ~2,000 gallery tiles with their snapshot copies
PRUNE_TO = 0.8  # a clean-up leaves this share of the bound, so it does not run again at the next write
JPEG_URI = "data:image/jpeg;base64,"


class ThumbCache:
    """Thumbnails as JPEG bytes in ``folder`` (made on the first miss, by ``make``). Safe from several threads
    and several processes; every failure to read or write the folder only means making the thumbnail again."""

    def __init__(self, folder: Path, max_bytes: int = CACHE_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None  # bytes in the folder as this process last counted them

    @staticmethod
    def version(path: Path | str) -> str | None:
        """This version of the file (absolute path, size, modification time), or None when it is gone. One
        ``stat``: every system call is a moment a worker thread gives the GIL away and waits to get it back."""
        source = os.path.abspath(path)
        try:
            stat = os.stat(source)
        except OSError:
            return None
        return f"{source}\0{stat.st_size}\0{stat.st_mtime_ns}"

    @staticmethod
    def key(version: str | None, side: int, max_bytes: int) -> str | None:
        """The entry name of a file :meth:`version` at this size (None for a file that is gone)."""
        if version is None:
            return None
        text = f"{version}\0{side}\0{max_bytes}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]

    def get(self, key: str, make: Callable[[], bytes]) -> bytes:
        """The bytes stored under ``key``; on a miss ``make()``'s (b"": none possible), stored for next time."""
        entry = self.folder / key[:2] / f"{key}.jpg"
        try:
            data = entry.read_bytes()
        except OSError:
            pass
        else:
            try:
                os.utime(entry)  # recently used: the clean-up keeps it
            except OSError:
                pass
            return data
        data = make()
        self._put(entry, data)
        return data

    def uri(self, key: str | None, make: Callable[[], bytes]) -> str:
        """:meth:`get` as a JPEG data URI ("" when there is no thumbnail)."""
        if key is None:
            return ""
        data = self.get(key, make)
        return JPEG_URI + base64.b64encode(data).decode("ascii") if data else ""

    def _put(self, entry: Path, data: bytes) -> None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(dir=entry.parent, prefix=".part-", suffix=".jpg")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temp, entry)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # read-only home, full disk: the thumbnail is still shown, just not kept
            log.debug("thumbnail cache: could not write %s: %s", entry, exc)
            return
        with self._lock:
            if self._total is not None:
                self._total += len(data)
            over = self._total is None or self._total > self.max_bytes
        if over:
            self.prune()

    def prune(self) -> None:
        """Count the folder; past the bound, remove the least recently used entries down to ``PRUNE_TO`` of it."""
        entries = []
        for sub in _scandir(self.folder):
            if sub.is_dir(follow_symlinks=False):
                for item in _scandir(Path(sub.path)):
                    try:
                        stat = item.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    entries.append((stat.st_mtime_ns, stat.st_size, item.path))
        total = sum(size for _, size, _ in entries)
        if total > self.max_bytes:
            for _, size, path in sorted(entries):
                try:
                    os.unlink(path)
                except OSError:  # another kernel removed it first
                    pass
                total -= size
                if total <= self.max_bytes * PRUNE_TO:
                    break
        with self._lock:
            self._total = total


_caches: dict[Path, ThumbCache] = {}
_caches_lock = threading.Lock()


def cache_in(folder: Path) -> ThumbCache:
    """The process's one cache of ``folder`` (one count of its size, however many panels use it)."""
    with _caches_lock:
        cache = _caches.get(Path(folder))
        if cache is None:
            cache = _caches[Path(folder)] = ThumbCache(folder)
        return cache


def thumbnail(cache: ThumbCache, path: Path | str, version: str | None, side: int, max_bytes: int) -> str:
    """A JPEG data URI of a local image (or a video's first frame) at ``version`` (:meth:`ThumbCache.version`),
    from ``cache`` or made and kept there."""
    from ...views.card_data import thumbnail_uri

    return cache.uri(cache.key(version, side, max_bytes),
                     lambda: _bytes_of(thumbnail_uri(Path(path), side, max_bytes)))


def smaller(cache: ThumbCache, version: str | None, bigger: str, side: int, max_bytes: int) -> str:
    """A smaller copy of ``bigger`` (a thumbnail of that file ``version``, as a JPEG data URI), cached like it.
    Made from the small JPEG, decoded already scaled down: the picture itself is not read again."""
    from ... import media

    if not bigger.startswith(JPEG_URI):
        return ""

    def make() -> bytes:
        try:
            return media.thumbnail_jpeg(base64.b64decode(bigger[len(JPEG_URI):]), side, max_bytes)
        except Exception as exc:  # decoration: never let it break the panel
            log.debug("no smaller thumbnail: %s", exc)
            return b""

    return cache.uri(cache.key(version, side, max_bytes), make)


def _bytes_of(uri: str) -> bytes:
    return base64.b64decode(uri[len(JPEG_URI):]) if uri.startswith(JPEG_URI) else b""


def _scandir(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as found:
            return list(found)
    except OSError:
        return []
