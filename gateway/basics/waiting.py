"""Waiting, with a bound, for a condition that a worker signals (the counters tests and benchmarks wait on)."""
from __future__ import annotations

import asyncio
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
