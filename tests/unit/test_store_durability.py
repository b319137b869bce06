"""Restriction decisions and their audit are synced to disk at COMMIT; the per-call writes are not; a full store
is recorded in its health once, and recovers by itself."""
import logging
from datetime import datetime

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store

NUMBER = "+8613800138000"
AT = datetime(2026, 3, 1, 15, tzinfo=SHANGHAI)


@pytest.fixture
async def traced(tmp_path):
    """A store and the statements it runs from now on, with the connection's synchronous level at each."""
    store = await Store.open(tmp_path / "hotline.sqlite")
    statements: list[str] = []
    await store._db.set_trace_callback(statements.append)
    yield store, statements
    await store.close()


def _sync_at_commits(statements: list[str]) -> list[str]:
    """The synchronous level in force at each COMMIT, replaying the PRAGMAs in order."""
    level, levels = "NORMAL", []
    for sql in statements:
        text = " ".join(sql.split()).upper()
        if text.startswith("PRAGMA SYNCHRONOUS ="):
            level = text.split("=", 1)[1].strip()
        elif text == "COMMIT":
            levels.append(level)
    return levels


async def test_restriction_add_and_lift_commit_with_synchronous_full(traced):
    store, statements = traced
    await store.add_restriction(NUMBER, reason="insulted staff", operator="op1", days=30, decided_at=AT)
    await store.lift_restriction(NUMBER, operator="op2", reason="appeal granted", at=AT)
    await store.add_restrictions_bulk([("+8613900139000", "threats", "op1", 30, AT)])
    assert _sync_at_commits(statements) == ["FULL", "FULL", "FULL"]
    level = await store._db.execute_fetchall("PRAGMA synchronous")
    assert level[0][0] == 1, "the connection is back at NORMAL for the next (per-call) write"


async def test_pending_restriction_request_and_decisions_are_durable(traced):
    store, statements = traced
    first = await store.add_pending_restriction(number=NUMBER, reason="abuse", requested_by="agent1",
                                                call_id="c1", at=AT)
    second = await store.add_pending_restriction(number="+8613900139000", reason="abuse", requested_by="agent1",
                                                 call_id="c2", at=AT)
    await store.confirm_pending_restriction(first, operator="sup1", at=AT, days=30)
    await store.reject_pending_restriction(second, operator="sup1", reason="not abusive", at=AT)
    assert _sync_at_commits(statements) == ["FULL"] * 4


async def test_per_call_writes_stay_at_synchronous_normal(traced):
    store, statements = traced
    await store.enter_call(call_id="c1", number=NUMBER, channel="PJSIP/caller-1", at=AT)
    await store.queue_call("c1", ivr_path=["1"], request_type="consultation", emergency=None, priority=0,
                           ticket_query=None, ticket_type="consultation", due=None, at=AT)
    await store.outbox_add("hotline/agents/agent1/screenpop", {"a": 1}, message_id="m1", at=AT)
    assert _sync_at_commits(statements) == ["NORMAL"] * 3


async def test_a_failed_durable_write_leaves_the_connection_at_normal(traced):
    store, _ = traced
    with pytest.raises(ValueError):
        await store.add_restriction(NUMBER, reason="", operator="op1", days=30, decided_at=AT)
    await store.add_pending_restriction(number=NUMBER, reason="abuse", requested_by="agent1", call_id=None, at=AT)
    with pytest.raises(LookupError):
        await store.confirm_pending_restriction(999, operator="sup1", at=AT, days=30)
    assert (await store._db.execute_fetchall("PRAGMA synchronous"))[0][0] == 1
    assert not store._db.in_transaction


async def _fill(store: Store) -> None:
    """Cap the database at its current size: the next page it needs is refused with SQLITE_FULL."""
    pages = (await store._db.execute_fetchall("PRAGMA page_count"))[0][0]
    await store._db.execute(f"PRAGMA max_page_count = {pages}")


async def _uncap(store: Store) -> None:
    await store._db.execute("PRAGMA max_page_count = 1073741823")


async def test_a_full_store_is_logged_once_counted_and_recovers_without_reopening(tmp_path, caplog):
    store = await Store.open(tmp_path / "hotline.sqlite")
    try:
        await _fill(store)
        caplog.set_level(logging.WARNING, logger="gateway.basics.write_health")
        failures = 0
        for i in range(50):
            try:
                await store.outbox_add("t", {"pad": "x" * 5000}, message_id=f"m{i}", at=AT)
            except Exception as exc:  # noqa: BLE001
                assert "full" in str(exc)
                failures += 1
        assert failures > 40
        health = store.health.snapshot()
        assert not health["ok"] and health["failing"]["store"]["kind"] == "disk_full"
        assert health["failing"]["store"]["count"] == failures
        lines = [r.getMessage() for r in caplog.records]
        assert sum("event=state_write_failed" in line for line in lines) == 1, lines
        # reads go on while writes fail: the call-entry restriction check needs only a read
        assert await store.active_restriction(NUMBER, AT) is None

        await _uncap(store)
        await store.outbox_add("t", {"pad": "y"}, message_id="after", at=AT)
        assert store.health.ok
        recovered = [line for line in (r.getMessage() for r in caplog.records) if "state_write_recovered" in line]
        assert len(recovered) == 1 and f"failed_writes={failures}" in recovered[0]
        assert [row["message_id"] for row in await store.outbox_pending(200)][-1] == "after"
        assert not store._db.in_transaction
    finally:
        await store.close()


async def test_an_acknowledged_restriction_survives_a_full_store(tmp_path):
    store = await Store.open(tmp_path / "hotline.sqlite")
    try:
        await store.add_restriction(NUMBER, reason="insulted staff", operator="op1", days=30, decided_at=AT)
        await _fill(store)
        with pytest.raises(Exception, match="full"):
            await store.add_restrictions_bulk([(f"+86139001{i:05d}", "x" * 200, "op1", 30, AT)
                                               for i in range(2000)])
        assert (await store.active_restriction(NUMBER, AT)).reason == "insulted staff"
        assert len(await store.restriction_audit()) == 1, "the refused bulk import left no half-written rows"
        rows = await store._db.execute_fetchall("SELECT COUNT(*) FROM restrictions")
        assert rows[0][0] == 1
    finally:
        await store.close()
