"""One daemon thread owning an asyncio loop, shared by the sync client, the job runtime and the magics.

Why a thread and not the kernel's loop: a task on the kernel's loop freezes during every blocking cell and does
not exist in terminal IPython, while a thread with its own loop works everywhere (docs in DESIGN.md). The shape
follows anyio's blocking portal: a start handshake through a ``Future``, one primitive ``submit(coro) ->
concurrent.futures.Future`` (cancelling that future cancels the task), and a blocking ``call`` that refuses to run
on the loop's own thread, where it could only deadlock.

    portal = get_portal()
    value = portal.call(some_coroutine(), timeout=10)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from .errors import FalTimeoutError

__all__ = ["Portal", "get_portal"]

T = TypeVar("T")
THREAD_NAME = "fal-notebook-loop"
_JOIN_TIMEOUT = 5.0
log = logging.getLogger("fal_notebook")


def _run_loop(started: concurrent.futures.Future) -> None:
    """Thread body: create the loop, hand it over, run until stopped, then cancel what is left and close."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    started.set_result(loop)
    try:
        loop.run_forever()
    finally:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _shutdown(loop: asyncio.AbstractEventLoop, thread: threading.Thread, pid: int) -> None:
    """Stop the loop and join its thread. Holds no reference to the Portal, so the portal can be collected."""
    if os.getpid() != pid:  # a forked child owns neither the loop nor the thread
        return
    if not loop.is_closed():
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # closed between the check and the call
            pass
    if thread is not threading.current_thread():
        thread.join(_JOIN_TIMEOUT)


class Portal:
    """A named daemon thread running an asyncio loop, with a blocking entry point for synchronous code.

        portal = Portal().start()
        result = portal.call(coro(), timeout=5)   # FalTimeoutError after 5 s; the task is cancelled

    ``submit`` and ``call`` raise ``RuntimeError`` when the portal is not running; ``call`` also refuses when
    made from the loop's own thread. ``stop()`` may be called any number of times; it also runs at exit.
    """

    def __init__(self, name: str = THREAD_NAME) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._finalizer: weakref.finalize | None = None

    def __repr__(self) -> str:
        return f"<Portal {self.name!r} {'running' if self.running else 'stopped'}>"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The portal's loop. Raises ``RuntimeError`` before ``start()``."""
        if self._loop is None:
            raise RuntimeError("the portal has not been started; call Portal.start() first")
        return self._loop

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def running(self) -> bool:
        loop, thread = self._loop, self._thread
        return bool(loop and thread and thread.is_alive() and not loop.is_closed() and loop.is_running())

    @property
    def in_loop_thread(self) -> bool:
        """True when the caller runs on the portal's own thread (where blocking calls would deadlock)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def start(self) -> Portal:
        """Start the thread and wait for its loop (the handshake). Starting a running portal does nothing."""
        with self._lock:
            if self.running:
                return self
            started: concurrent.futures.Future = concurrent.futures.Future()
            thread = threading.Thread(target=_run_loop, args=(started,), name=self.name, daemon=True)
            thread.start()
            loop = started.result()
            self._loop, self._thread = loop, thread
            self._finalizer = weakref.finalize(self, _shutdown, loop, thread, os.getpid())
            ready = concurrent.futures.Future()
            loop.call_soon_threadsafe(ready.set_result, None)
            ready.result()  # the loop is now inside run_forever: `running` is true from here on
        log.debug("portal %s started", self.name)
        return self

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop. Cancelling the returned future cancels the task."""
        if not self.running:
            coro.close()
            raise RuntimeError(f"the portal {self.name!r} is not running; call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and block for its result.

        Raises what the coroutine raises; ``FalTimeoutError`` after ``timeout`` seconds (the task is cancelled);
        ``RuntimeError`` when called from the portal's own thread. A ``KeyboardInterrupt`` cancels the task and
        propagates.
        """
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError(
                "Portal.call() was called from the portal's own event-loop thread, where it would deadlock; "
                "await the coroutine instead"
            )
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise FalTimeoutError(f"the call did not finish within {timeout} s", timeout=timeout) from None
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop (pending tasks are cancelled) and join the thread. Safe to call twice."""
        with self._lock:
            finalizer = self._finalizer
        if finalizer is not None:
            finalizer()


_portal: Portal | None = None
_portal_pid: int | None = None
_portal_lock = threading.Lock()


def get_portal() -> Portal:
    """The process-wide portal, started on first use, restarted if stopped, and new in a forked child."""
    global _portal, _portal_pid
    with _portal_lock:
        if _portal is None or _portal_pid != os.getpid():
            _portal, _portal_pid = Portal(), os.getpid()
        if not _portal.running:
            _portal.start()
        return _portal


def _after_fork_in_child() -> None:
    """A lock held by another thread at fork time would never be released in the child: make a new one."""
    global _portal_lock
    _portal_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
