"""Waiting, with a bound, for a condition that a worker signals (the counters tests and benchmarks wait on), and for
a cancelled background task to finish."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


async def wait_for_condition(condition: asyncio.Condition, predicate: Callable[[], bool], timeout: float) -> bool:
    """True once ``predicate()`` holds (checked whenever ``condition`` is notified), False after ``timeout`` s."""
    async def reached() -> None:
        async with condition:
            await condition.wait_for(predicate)
    try:
        async with asyncio.timeout(timeout):    # not wait_for: it can swallow a cancellation on 3.11
            await reached()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(task: asyncio.Task | None, *, ask_again_s: float = 1.0) -> None:
    """Cancel a background task (None: nothing to do) and wait until it has finished its clean-up.

    The cancellation is asked again every ``ask_again_s`` while the task runs on: on Python 3.11,
    ``asyncio.wait_for`` swallows a cancellation that arrives as the awaited thing completes (CPython gh-86296,
    fixed in 3.12), and a task looping around such a wait would then never end, nor would the shutdown
    awaiting it (seen: the MQTT publisher woken by its last drain as it was cancelled)."""
    if task is None:
        return
    task.cancel()
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=ask_again_s)
        if not done:
            task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
