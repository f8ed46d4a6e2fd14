"""The client's request scheduler: a hard bound, fair shares between lanes, nothing lost to cancellation."""

from __future__ import annotations

import asyncio

import pytest

from fal_notebook.client.scheduler import Scheduler


def test_the_bound_holds_and_a_submit_is_served_before_a_backlog_of_polls():
    async def main() -> list[str]:
        scheduler, order, peak = Scheduler(limit=2), [], [0]
        gate = asyncio.Event()

        async def request(lane: str, n: int) -> None:
            async with scheduler.slot(lane):
                peak[0] = max(peak[0], scheduler.busy)
                order.append(f"{lane}{n}")
                await gate.wait()

        polls = [asyncio.create_task(request("status", n)) for n in range(50)]
        await asyncio.sleep(0)  # 2 polls hold the slots, 48 wait
        submit = asyncio.create_task(request("submit", 0))
        await asyncio.sleep(0)
        assert scheduler.busy == 2 and scheduler.waiting() == 49
        gate.set()
        await asyncio.gather(*polls, submit)
        assert peak[0] == 2 and scheduler.busy == 0
        return order

    order = asyncio.run(main())
    assert order.index("submit0") <= 3  # served at the first turn, not after the 48 waiting polls


def test_lanes_take_turns():
    async def main() -> list[str]:
        scheduler, order = Scheduler(limit=1), []
        hold = asyncio.Event()

        async def request(lane: str) -> None:
            async with scheduler.slot(lane):
                order.append(lane)
                await hold.wait()

        first = asyncio.create_task(request("status"))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(request(lane)) for lane in ["status"] * 3 + ["result"] * 3 + ["download"]]
        await asyncio.sleep(0)
        hold.set()
        await asyncio.gather(first, *rest)
        return order

    assert asyncio.run(main()) == ["status", "status", "result", "download", "status", "result", "status",
                                   "result"]


def test_a_waiter_cancelled_before_or_after_its_turn_frees_its_place():
    async def main() -> None:
        scheduler = Scheduler(limit=1)
        release = asyncio.Event()

        async def hold() -> None:
            async with scheduler.slot("status"):
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiting = asyncio.create_task(hold())
        await asyncio.sleep(0)
        waiting.cancel()  # cancelled while waiting
        await asyncio.gather(waiting, return_exceptions=True)
        granted = asyncio.create_task(hold())
        await asyncio.sleep(0)
        release.set()
        while scheduler.waiting():  # the holder leaves and hands its slot to the waiter...
            await asyncio.sleep(0)
        assert not granted.done() and scheduler.busy == 1
        granted.cancel()  # ...which is cancelled before it ran: the slot must be passed on, not kept
        await asyncio.gather(holder, granted, return_exceptions=True)
        assert scheduler.busy == 0
        async with asyncio.timeout(5):
            async with scheduler.slot("submit"):
                assert scheduler.busy == 1

    asyncio.run(main())


def test_a_scheduler_needs_a_slot():
    with pytest.raises(ValueError):
        Scheduler(limit=0)


def test_each_holder_has_its_own_slot_number_and_the_last_freed_is_handed_out_first():
    async def main() -> None:
        scheduler = Scheduler(limit=3)
        release = asyncio.Event()
        numbers: list[int] = []

        async def hold() -> None:
            async with scheduler.slot("status") as number:
                numbers.append(number)
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(5)]  # 3 hold, 2 wait for a freed number
        await asyncio.sleep(0)
        assert sorted(numbers) == [0, 1, 2]
        release.set()
        await asyncio.gather(*holders)
        assert len(numbers) == 5 and set(numbers) == {0, 1, 2}  # the waiters got freed numbers
        async with scheduler.slot("submit") as first:
            pass
        async with scheduler.slot("submit") as again:
            assert again == first  # warm: its connections were just used

    asyncio.run(main())
