"""gateway.basics.waiting: a cancelled background task is waited for, even one that lost its first cancellation."""
from __future__ import annotations

import asyncio

from gateway.basics.waiting import cancel_and_wait, wait_for_condition


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again_and_ends():
    swallowed = []

    async def loop_like_a_3_11_wait_for_victim():
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(True)   # what asyncio.wait_for can do on 3.11: the cancel is lost, the loop goes on
                asyncio.current_task().uncancel()

    task = asyncio.create_task(loop_like_a_3_11_wait_for_victim())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, ask_again_s=0.05), 2)
    assert task.cancelled() and swallowed == [True]


async def test_a_plain_task_ends_at_the_first_cancellation_and_none_is_nothing():
    task = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()
    await cancel_and_wait(None)


async def test_wait_for_condition_times_out_and_succeeds():
    condition = asyncio.Condition()
    state = {"n": 0}
    assert await wait_for_condition(condition, lambda: state["n"] > 0, 0.05) is False

    async def bump():
        await asyncio.sleep(0.01)
        async with condition:
            state["n"] = 1
            condition.notify_all()
    asyncio.create_task(bump())
    assert await wait_for_condition(condition, lambda: state["n"] > 0, 1) is True
