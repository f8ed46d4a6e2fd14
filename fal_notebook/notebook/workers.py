"""Named background workers of the notebook layer: started on first use, shared by the process.

Why: work that must not run on the kernel's thread (a schema lookup for the form, the thumbnails of a live
group) but must not hold up the runtime loop either goes to its own small worker, never to a new thread per
request.
"""

from __future__ import annotations

import concurrent.futures
import threading

__all__ = ["worker"]

_workers: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
_lock = threading.Lock()


def worker(name: str, threads: int = 1) -> concurrent.futures.ThreadPoolExecutor:
    """The executor called ``name`` (``threads`` threads ``<name>_0``…), made on the first call."""
    with _lock:
        pool = _workers.get(name)
        if pool is None:
            pool = _workers[name] = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix=name)
        return pool
