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
        await asyncio.wait_for(reached(), timeout)
    except asyncio.TimeoutError:
        return False
    return True


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background task (None: nothing to do) and wait until it has finished its clean-up."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
