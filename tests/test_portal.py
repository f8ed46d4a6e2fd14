"""The portal thread: handshake, submit/call, cancellation, refusal on its own thread, stop, fork safety."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import weakref

import pytest

from fal_notebook import _portal
from fal_notebook._portal import Portal, get_portal
from fal_notebook.errors import FalTimeoutError


@pytest.fixture
def portal():
    p = Portal(name="test-portal").start()
    yield p
    p.stop()


async def _thread_name() -> str:
    return threading.current_thread().name


async def _forever(started: threading.Event, cancelled: threading.Event) -> None:
    """Wait until cancelled, signalling both moments to the test thread."""
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.set()
        raise


def test_runs_coroutines_on_a_named_daemon_thread(portal: Portal) -> None:
    assert portal.call(_thread_name()) == "test-portal"
    assert portal.thread is not None and portal.thread.daemon
    assert portal.running and portal.loop.is_running()


def test_default_name_is_fal_notebook_loop() -> None:
    p = Portal().start()
    try:
        assert p.call(_thread_name()) == "fal-notebook-loop"
    finally:
        p.stop()


def test_call_propagates_the_coroutine_exception(portal: Portal) -> None:
    async def boom() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        portal.call(boom())


def test_cancelling_the_future_cancels_the_task(portal: Portal) -> None:
    started, cancelled = threading.Event(), threading.Event()
    future = portal.submit(_forever(started, cancelled))
    assert started.wait(5)
    future.cancel()
    assert cancelled.wait(5)


def test_call_timeout_raises_fal_timeout_and_cancels(portal: Portal) -> None:
    cancelled = threading.Event()
    with pytest.raises(FalTimeoutError) as info:
        portal.call(_forever(threading.Event(), cancelled), timeout=0.05)
    assert isinstance(info.value, TimeoutError) and info.value.timeout == 0.05
    assert cancelled.wait(5)


def test_call_from_the_loop_thread_is_refused(portal: Portal) -> None:
    async def nested() -> str:
        inner = _thread_name()
        try:
            portal.call(inner)
        except RuntimeError as exc:
            return str(exc)
        return "not refused"

    message = portal.call(nested())
    assert "own event-loop thread" in message


def test_stop_is_idempotent_and_cancels_pending_tasks() -> None:
    p = Portal(name="stop-test").start()
    started, cancelled = threading.Event(), threading.Event()
    p.submit(_forever(started, cancelled))
    assert started.wait(5)
    p.stop()
    p.stop()
    assert cancelled.is_set()
    assert not p.running and p.loop.is_closed()
    with pytest.raises(RuntimeError, match="not running"):
        p.submit(_thread_name())


def test_a_stopped_portal_can_start_again() -> None:
    p = Portal(name="restart").start()
    p.stop()
    p.start()
    try:
        assert p.call(_thread_name()) == "restart"
    finally:
        p.stop()


def test_finalizer_does_not_keep_the_portal_alive() -> None:
    p = Portal(name="collectable").start()
    thread = p.thread
    ref = weakref.ref(p)
    del p
    gc.collect()
    assert ref() is None  # collected: the finalizer held only the loop and the thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()


def test_get_portal_is_shared_restarted_and_new_after_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_portal()
    assert get_portal() is first
    first.stop()
    again = get_portal()
    assert again is first and again.running
    monkeypatch.setattr(_portal, "_portal_pid", os.getpid() + 1)  # as a forked child would see it
    child = get_portal()
    assert child is not first and child.running
    first.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_a_working_portal() -> None:
    get_portal()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            name = get_portal().call(_thread_name(), timeout=5)
            os.write(write, name.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    assert answer == "fal-notebook-loop"
