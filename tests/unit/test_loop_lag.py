"""The loop-lag monitor: its bookkeeping (pure) and that it sees a blocking call on the loop."""
from __future__ import annotations

import asyncio
import logging
import gc
import time

import pytest

from gateway.basics.loop_lag import LagRecord, LoopLagMonitor, freeze_startup_objects


def test_record_keeps_the_largest_lag_and_counts_only_lags_over_the_stall_threshold():
    record = LagRecord(window_s=60, stall_s=0.1)
    for at, lag in [(1.0, 0.002), (2.0, 0.1), (3.0, 0.25), (4.0, 0.101), (5.0, -0.001)]:
        record.add(at, lag)
    assert record.max_s == 0.25
    assert record.stalls == 2          # exactly the threshold is not a stall
    assert record.samples == 5
    assert record.snapshot(5.0) == {"loop_lag_max_ms": 250.0, "loop_lag_recent_ms": 250.0, "loop_stalls": 2,
                                    "loop_lag_samples": 5}


def test_recent_lag_forgets_what_is_older_than_the_window_but_the_maximum_stays():
    record = LagRecord(window_s=10, stall_s=0.1)
    record.add(0.0, 0.5)
    record.add(5.0, 0.01)
    assert record.recent_max_s(9.0) == 0.5
    assert record.recent_max_s(10.5) == 0.01
    assert record.recent_max_s(100.0) == 0.0
    assert record.max_s == 0.5 and record.stalls == 1


async def test_monitor_sees_a_blocking_call_on_the_loop_as_a_stall():
    monitor = LoopLagMonitor(interval_s=0.01)
    await monitor.start()
    try:
        await asyncio.sleep(0.2)
        assert monitor.status()["loop_lag_samples"] > 5
        before = monitor.status()["loop_stalls"]
        time.sleep(0.25)   # noqa: ASYNC251 - a synchronous call on the loop: exactly what the monitor is for
        await asyncio.sleep(0.05)
        status = monitor.status()
        assert status["loop_stalls"] >= before + 1
        assert 200 <= status["loop_lag_max_ms"] < 1000 and status["loop_lag_recent_ms"] == status["loop_lag_max_ms"]
    finally:
        await monitor.close()


def _hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


async def test_the_watchdog_logs_where_the_loop_was_held(caplog):
    monitor = LoopLagMonitor(interval_s=0.01)
    await monitor.start()
    try:
        await asyncio.sleep(0.05)
        with caplog.at_level(logging.WARNING, logger="gateway.basics.loop_lag"):
            _hold_the_loop(0.3)
            await asyncio.sleep(0.05)
        stalls = [r.getMessage() for r in caplog.records if "event=loop_stall" in r.getMessage()]
        assert len(stalls) == 1, stalls     # one report per stall, however long it lasts
        assert "test_loop_lag:_hold_the_loop:" in stalls[0].split("where=")[1].split(" < ")[0], stalls[0]
    finally:
        await monitor.close()
    assert monitor._watchdog is None


async def test_an_idle_loop_logs_no_stall(caplog):
    monitor = LoopLagMonitor(interval_s=0.01)
    with caplog.at_level(logging.WARNING, logger="gateway.basics.loop_lag"):
        await monitor.start()
        await asyncio.sleep(0.3)
        await monitor.close()
    assert not [r for r in caplog.records if "loop_stall" in r.getMessage()]


def test_monitor_refuses_a_nonsense_interval():
    with pytest.raises(ValueError):
        LoopLagMonitor(interval_s=0)


def test_startup_objects_frozen_leave_a_full_collection_almost_nothing_to_walk():
    try:
        frozen = freeze_startup_objects()
        assert frozen > 1000 and gc.get_freeze_count() == frozen
        assert len(gc.get_objects(generation=2)) < frozen / 10
    finally:
        gc.unfreeze()
