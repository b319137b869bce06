"""The PostgreSQL store while its server is stopped and started again: statements fail fast (one waits, the rest
fail at once for a second), nothing acknowledged is lost, and the store works again by itself once the server is
back."""
from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.basics.write_health import STORE_ERRORS, failure_kind
from gateway.sandbox.postgres_cluster import PostgresCluster
from gateway.store.database import Store

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI)


@pytest.fixture
def server():
    cluster = PostgresCluster.create(Path(tempfile.mkdtemp(prefix="hotline-pg-outage-")))
    yield cluster
    cluster.remove()


async def test_a_stopped_server_fails_statements_fast_and_the_store_recovers_by_itself(server):
    store = await Store.open(server.url(), wait_timeout=2.0)
    try:
        await store.add_restriction("+8613800138000", reason="辱骂", operator="lead1", days=30, decided_at=T0)
        server.stop()
        timings, kinds = [], set()
        for n in range(6):
            started = time.monotonic()
            with pytest.raises(STORE_ERRORS) as caught:
                await store.add_restriction(f"+861390000{n:04d}", reason="x", operator="lead1", days=30,
                                            decided_at=T0)
            timings.append(time.monotonic() - started)
            kinds.add(failure_kind(caught.value))
        print(f"\nstatements while the server is down, seconds each: {[round(t, 3) for t in timings]}")
        assert kinds == {"database_unreachable"} and store.health.failing("store") == "database_unreachable"
        assert max(timings) < 2.5 and sorted(timings)[-2] < 0.1     # at most one waits; the others fail at once
        server.start()
        started, back = time.monotonic(), None
        while time.monotonic() - started < 20:
            try:
                back = await store.active_restriction("+8613800138000", T0)
                break
            except STORE_ERRORS:
                time.sleep(0.2)
        print(f"store usable again {time.monotonic() - started:.2f} s after the server started")
        assert back is not None and back.reason == "辱骂"
        assert [a["number"] for a in await store.restriction_audit()] == ["+8613800138000"]  # refused ones: none
        await store.add_restriction("+8613900000099", reason="x", operator="lead1", days=30, decided_at=T0)
        assert store.health.ok
    finally:
        await store.close()
