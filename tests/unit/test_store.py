import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.store.schema import sqlite_migrations as migrations
from gateway.basics.clock import SHANGHAI
from gateway.restriction import last_day
from gateway.basics.write_health import STORE_ERRORS
from gateway.store.database import Store

NUMBER = "+8613800138000"


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)



async def restrict(store, number=NUMBER, *, days=30, at=None, reason="insulted staff", operator="op1"):
    return await store.add_restriction(number, reason=reason, operator=operator, days=days,
                                       decided_at=at or sh(2026, 3, 1, 15))


# -- opening and migrations ----------------------------------------------------------------------------------


async def test_open_creates_parent_dirs_and_applies_all_migrations(tmp_path):
    path = tmp_path / "a" / "b" / "hotline.sqlite"
    s = await Store.open(path)
    try:
        assert path.exists()
        assert await s.schema_version() == migrations.MIGRATIONS[-1][0]
    finally:
        await s.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert {"restrictions", "restriction_audit", "restrictions_number_decided", "calls", "tickets"} <= names


async def test_a_missing_location_is_refused_not_made_a_file_named_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for location in (None, "", "  "):
        with pytest.raises(ValueError, match="no store location"):
            await Store.open(location)
    assert list(tmp_path.iterdir()) == []


async def test_reopen_keeps_data_and_does_not_rerun_migrations(tmp_path):
    path = tmp_path / "hotline.sqlite"
    s = await Store.open(path)
    await restrict(s)
    applied = await s._db.execute_fetchall("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    await s.close()

    s = await Store.open(path)
    try:
        again = await s._db.execute_fetchall("SELECT version, applied_at FROM schema_migrations ORDER BY version")
        assert [tuple(r) for r in again] == [tuple(r) for r in applied]
        assert (await s.active_restriction(NUMBER, sh(2026, 3, 2))).reason == "insulted staff"
        assert len(await s.restriction_audit()) == 1
    finally:
        await s.close()


async def test_reopen_applies_only_new_migrations(tmp_path, monkeypatch):
    path = tmp_path / "hotline.sqlite"
    await (await Store.open(path)).close()
    last = migrations.MIGRATIONS[-1][0]
    new = [*migrations.MIGRATIONS, (last + 1, "CREATE TABLE extra (x INTEGER);\nINSERT INTO extra VALUES (1);")]
    monkeypatch.setattr(migrations, "MIGRATIONS", new)
    s = await Store.open(path)
    try:
        assert await s.schema_version() == last + 1
        assert [tuple(r) for r in await s._db.execute_fetchall("SELECT x FROM extra")] == [(1,)]
    finally:
        await s.close()
    s = await Store.open(path)  # the INSERT would duplicate the row if the migration ran again
    try:
        assert len(await s._db.execute_fetchall("SELECT x FROM extra")) == 1
    finally:
        await s.close()


async def test_a_failing_migration_leaves_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "hotline.sqlite"
    await (await Store.open(path)).close()
    last = migrations.MIGRATIONS[-1][0]
    broken = [*migrations.MIGRATIONS, (last + 1, "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);")]
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    with pytest.raises(sqlite3.OperationalError):
        await Store.open(path)
    monkeypatch.undo()
    s = await Store.open(path)
    try:
        assert await s.schema_version() == last
        assert not await s._db.execute_fetchall("SELECT name FROM sqlite_master WHERE name = 'half'")
    finally:
        await s.close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "hotline.sqlite"
    await (await Store.open(path)).close()
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    with pytest.raises(RuntimeError, match="newer than this code"):
        await Store.open(path)


# -- restrictions ----------------------------------------------------------------------------------------------


async def test_restriction_is_active_through_the_last_local_day(store):
    r = await restrict(store, at=sh(2026, 3, 1, 15))
    assert r.until == sh(2026, 4, 1)
    assert last_day(r.until) == date(2026, 3, 31)
    assert await store.active_restriction(NUMBER, sh(2026, 3, 31, 23, 59, 59)) == r
    assert await store.active_restriction(NUMBER, sh(2026, 4, 1, 0, 0)) is None


async def test_datetimes_come_back_aware_in_shanghai_and_are_stored_as_utc(store):
    r = await restrict(store, at=datetime(2026, 2, 28, 17, 0, tzinfo=UTC))  # 01:00 on 1 March in Shanghai
    assert r.decided_at == sh(2026, 3, 1, 1, 0)
    assert r.decided_at.utcoffset() == timedelta(hours=8)
    assert r.until == sh(2026, 4, 1)
    stored = await store._db.execute_fetchall("SELECT decided_at, until FROM restrictions")
    assert tuple(stored[0]) == ("2026-02-28T17:00:00.000000+00:00", "2026-03-31T16:00:00.000000+00:00")


async def test_every_spelling_of_the_number_hits_the_same_restriction(store):
    await restrict(store, "138 0013 8000")
    now = sh(2026, 3, 10)
    for spelling in ["+8613800138000", "008613800138000", "8613800138000", "13800138000", "sip:13800138000@1.2.3.4",
                     "Caller <13800138000>"]:
        hit = await store.active_restriction(spelling, now)
        assert hit is not None and hit.number == NUMBER, spelling
    assert await store.active_restriction(None, now) is None
    assert await store.active_restriction("anonymous", now) is None


async def test_one_restriction_among_many_numbers(store):
    rows = [(f"+86139{i:08d}", "bulk", "import", 30, sh(2025, 1, 1, 10)) for i in range(2000)]
    await store.add_restrictions_bulk(rows)
    target = await restrict(store, "+8613700137000", at=sh(2026, 3, 1, 15))
    now = sh(2026, 3, 2)
    assert await store.active_restriction("+8613700137000", now) == target
    assert await store.active_restriction("+8613900000007", now) is None  # expired long ago
    assert await store.active_restriction("+8613600136000", now) is None
    assert [r.id for r in await store.list_restrictions(now)] == [target.id]
    assert len(await store.list_restrictions(now, include_inactive=True)) == 2001


async def test_bulk_rows_are_active_and_audited(store):
    await store.add_restrictions_bulk([
        ("+8613900000001", "a", "import", 30, sh(2026, 3, 1, 10)),
        ("13900000002", "b", "import", 10, sh(2026, 3, 1, 10)),
    ])
    assert (await store.active_restriction("+8613900000002", sh(2026, 3, 11, 23))).reason == "b"
    assert await store.active_restriction("+8613900000002", sh(2026, 3, 12)) is None
    audit = await store.restriction_audit()
    assert [(a["action"], a["number"], a["days"]) for a in audit] == [
        ("add", "+8613900000001", 30), ("add", "+8613900000002", 10)]


async def test_bulk_is_all_or_nothing(store):
    with pytest.raises(ValueError):
        await store.add_restrictions_bulk([("+8613900000001", "a", "x", 30, sh(2026, 3, 1)), ("bad", "b", "x", 30,
                                           sh(2026, 3, 1))])
    assert await store.list_restrictions(sh(2026, 3, 2), include_inactive=True) == []


async def test_a_new_decision_while_active_runs_from_the_new_decision(store):
    await restrict(store, at=sh(2026, 3, 1, 15), days=30)
    second = await restrict(store, at=sh(2026, 3, 20, 9), days=30, reason="threatened again")
    assert (await store.active_restriction(NUMBER, sh(2026, 4, 5))) == second
    assert await store.active_restriction(NUMBER, sh(2026, 4, 20)) is None
    assert [r.id for r in await store.list_restrictions(sh(2026, 3, 25))] == [second.id]


async def test_the_latest_decision_wins_even_when_shorter(store):
    await restrict(store, at=sh(2026, 3, 1, 15), days=90)
    short = await restrict(store, at=sh(2026, 3, 10, 9), days=5)
    assert await store.active_restriction(NUMBER, sh(2026, 3, 15, 12)) == short
    assert await store.active_restriction(NUMBER, sh(2026, 3, 16)) is None


async def test_lookup_at_a_past_time_ignores_later_decisions(store):
    first = await restrict(store, at=sh(2026, 3, 1, 15))
    await restrict(store, at=sh(2026, 3, 20, 9))
    assert await store.active_restriction(NUMBER, sh(2026, 3, 10)) == first


async def test_lift_ends_it_at_once_and_is_audited(store):
    r = await restrict(store, at=sh(2026, 3, 1, 15))
    lifted = await store.lift_restriction("13800138000", operator="supervisor", reason="apologised",
                                          at=sh(2026, 3, 5, 10))
    assert lifted.id == r.id
    assert (lifted.lifted_at, lifted.lifted_by, lifted.lift_reason) == (sh(2026, 3, 5, 10), "supervisor", "apologised")
    assert await store.active_restriction(NUMBER, sh(2026, 3, 5, 10)) is None
    assert (await store.active_restriction(NUMBER, sh(2026, 3, 5, 9, 59))).id == r.id  # history is kept
    assert await store.list_restrictions(sh(2026, 3, 6)) == []
    audit = await store.restriction_audit(NUMBER)
    assert [(a["action"], a["operator"], a["reason"], a["at"], a["restriction_id"]) for a in audit] == [
        ("add", "op1", "insulted staff", sh(2026, 3, 1, 15), r.id),
        ("lift", "supervisor", "apologised", sh(2026, 3, 5, 10), r.id),
    ]
    assert audit[0]["days"] == 30 and audit[0]["until"] == sh(2026, 4, 1)


async def test_lift_without_an_active_restriction_returns_none(store):
    assert await store.lift_restriction(NUMBER, operator="s", reason="r", at=sh(2026, 3, 1)) is None
    await restrict(store, at=sh(2026, 3, 1, 15))
    assert await store.lift_restriction(NUMBER, operator="s", reason="r", at=sh(2026, 4, 1)) is None
    await store.lift_restriction(NUMBER, operator="s", reason="r", at=sh(2026, 3, 2))
    assert await store.lift_restriction(NUMBER, operator="s", reason="again", at=sh(2026, 3, 3)) is None
    assert [a["action"] for a in await store.restriction_audit()] == ["add", "lift"]


async def test_audit_is_append_only(store):
    await restrict(store)
    with pytest.raises(STORE_ERRORS, match="append-only"):
        await store._db.execute("UPDATE restriction_audit SET reason = 'nothing happened'")
    with pytest.raises(STORE_ERRORS, match="append-only"):
        await store._db.execute("DELETE FROM restriction_audit")


async def test_audit_filters_by_number_in_any_spelling(store):
    await restrict(store, NUMBER)
    await restrict(store, "+867592345678")
    assert [a["number"] for a in await store.restriction_audit("0759-2345678")] == ["+867592345678"]
    assert len(await store.restriction_audit()) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "between 1 and 365"),
        ({"days": 366}, "between 1 and 365"),
        ({"decided_at": datetime(2026, 3, 1, 15)}, "timezone-aware"),
        ({"reason": "  "}, "reason"),
        ({"operator": ""}, "operator"),
        ({"number": "abc"}, "not a usable phone number"),
    ],
)
async def test_bad_restrictions_are_refused(store, kwargs, message):
    args = {"number": NUMBER, "reason": "r", "operator": "o", "days": 30, "decided_at": sh(2026, 3, 1), **kwargs}
    number = args.pop("number")
    with pytest.raises(ValueError, match=message):
        await store.add_restriction(number, **args)
    assert await store.restriction_audit() == []


async def test_naive_now_is_refused(store):
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.active_restriction(NUMBER, datetime(2026, 3, 1))


async def test_concurrent_writers_do_not_share_a_transaction(store):
    async def add(i):
        return await restrict(store, f"+86139{i:08d}", at=sh(2026, 3, 1, 15))

    results = await asyncio.gather(*(add(i) for i in range(30)),
                                   store.add_restriction("bad", reason="r", operator="o", days=30,
                                                         decided_at=sh(2026, 3, 1)),
                                   return_exceptions=True)
    assert sum(isinstance(r, ValueError) for r in results) == 1
    assert len(await store.list_restrictions(sh(2026, 3, 2))) == 30
    assert len(await store.restriction_audit()) == 30


async def test_the_check_uses_the_index(store):
    query = ("SELECT * FROM restrictions WHERE number = ? AND decided_at <= ? ORDER BY decided_at DESC, id DESC"
             " LIMIT 1")
    if store.backend.name == "sqlite":
        plan = await store._db.execute_fetchall("EXPLAIN QUERY PLAN " + query, (NUMBER, "x"))
        detail = " ".join(row[3] for row in plan)
        assert "restrictions_number_decided" in detail and "TEMP B-TREE" not in detail
        return
    # PostgreSQL plans by its statistics: a city's list of numbers, analysed.
    await store.add_restrictions_bulk((f"+86138{n:08d}", "r", "op", 30, sh(2026, 3, 1)) for n in range(3000))
    await store._db.execute("ANALYZE restrictions")
    plan = await store._db.execute_fetchall("EXPLAIN " + query, (NUMBER, "x"))
    detail = " ".join(row[0] for row in plan)
    assert "restrictions_number_decided" in detail and "Sort" not in detail and "Seq Scan" not in detail


# -- calls -----------------------------------------------------------------------------------------------------


async def test_blocked_attempts_are_recorded(store):
    await restrict(store)
    await restrict(store, "+867592345678")
    assert await store.enter_call(call_id="c1", number=NUMBER, channel="PJSIP/t", at=sh(2026, 3, 2, 9))
    assert await store.enter_call(call_id="c2", number="+867592345678", channel="PJSIP/t", at=sh(2026, 3, 2, 8))
    assert [(a["call_id"], a["at"]) for a in await store.blocked_attempts(NUMBER)] == [("c1", sh(2026, 3, 2, 9))]
    assert [a["call_id"] for a in await store.blocked_attempts()] == ["c2", "c1"]


async def test_open_call_is_idempotent(store):
    await store.open_call(call_id="c1", number=NUMBER, channel="PJSIP/trunk-1", started_at=sh(2026, 3, 2, 9))
    await store.open_call(call_id="c1", number="+867592345678", channel="PJSIP/other", started_at=sh(2026, 3, 2, 10))
    call = await store.get_call("c1")
    assert (call["number"], call["channel"], call["started_at"]) == (NUMBER, "PJSIP/trunk-1", sh(2026, 3, 2, 9))
    assert len(await store.list_calls()) == 1


async def test_update_call_sets_fields_and_round_trips_types(store):
    await store.open_call(call_id="c1", number=NUMBER, channel="PJSIP/t", started_at=sh(2026, 3, 2, 9))
    await store.update_call("c1", ivr_path=["root", "complaint", "speech"], request_type="complaint",
                            emergency=None, outcome="answered", queued_at=sh(2026, 3, 2, 9, 1),
                            answered_at=sh(2026, 3, 2, 9, 2), ended_at=sh(2026, 3, 2, 9, 9), agent="agent07",
                            priority=2, ticket_query="ZJ20260302001")
    call = await store.get_call("c1")
    assert call == {
        "call_id": "c1", "number": NUMBER, "channel": "PJSIP/t", "started_at": sh(2026, 3, 2, 9),
        "ivr_path": ["root", "complaint", "speech"], "request_type": "complaint", "emergency": None,
        "outcome": "answered", "queued_at": sh(2026, 3, 2, 9, 1), "answered_at": sh(2026, 3, 2, 9, 2),
        "ended_at": sh(2026, 3, 2, 9, 9), "agent": "agent07", "priority": 2, "ticket_query": "ZJ20260302001",
    }


async def test_update_before_open_creates_the_row_and_open_fills_it_in(store):
    await store.update_call("c9", outcome="queued", agent="agent01")
    early = await store.get_call("c9")
    assert early["outcome"] == "queued" and early["number"] is None and early["ivr_path"] == []
    await store.open_call(call_id="c9", number=None, channel="PJSIP/t", started_at=sh(2026, 3, 2, 9))
    call = await store.get_call("c9")
    assert (call["outcome"], call["agent"], call["channel"], call["started_at"]) == (
        "queued", "agent01", "PJSIP/t", sh(2026, 3, 2, 9))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"colour": "red"}, "unknown call field"),
        ({"outcome": "exploded"}, "outcome must be one of"),
        ({"ivr_path": "root"}, "ivr_path"),
        ({"priority": "high"}, "priority"),
        ({"ended_at": datetime(2026, 3, 2)}, "timezone-aware"),
        ({"agent": 7}, "agent"),
    ],
)
async def test_update_call_refuses_bad_fields(store, fields, message):
    with pytest.raises(ValueError, match=message):
        await store.update_call("c1", **fields)
    assert await store.get_call("c1") is None


async def test_list_calls_is_newest_first_and_limited(store):
    for i in range(5):
        await store.open_call(call_id=f"c{i}", number=NUMBER, channel="PJSIP/t", started_at=sh(2026, 3, 2, 9, i))
    assert [c["call_id"] for c in await store.list_calls(limit=3)] == ["c4", "c3", "c2"]
    assert await store.get_call("missing") is None


# -- tickets ---------------------------------------------------------------------------------------------------


async def test_ticket_status(store):
    assert await store.ticket_status("ZJ1") is None
    await store.add_ticket("ZJ1", status="accepted", at=sh(2026, 3, 2, 9), call_id="c1")
    assert await store.ticket_status("ZJ1") == {"ticket_no": "ZJ1", "status": "accepted",
                                                 "updated_at": sh(2026, 3, 2, 9), "unit": None, "due": None}
    await store.add_ticket("ZJ1", status="in progress", at=sh(2026, 3, 3, 9))
    assert (await store.ticket_status("ZJ1"))["status"] == "in progress"


# -- several processes on one file (gateway + admin CLI) ---------------------------------------------------------


async def test_two_stores_opening_a_new_file_at_once_apply_each_migration_once(tmp_path):
    path = tmp_path / "hotline.sqlite"
    stores = await asyncio.gather(*(Store.open(path) for _ in range(4)))
    try:
        rows = await stores[0]._db.execute_fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == [v for v, _ in migrations.MIGRATIONS]
    finally:
        for s in stores:
            await s.close()


async def test_a_restriction_added_by_the_cli_is_seen_by_the_running_gateway(tmp_path):
    path = tmp_path / "hotline.sqlite"
    gateway, cli = await Store.open(path), await Store.open(path)
    try:
        assert await gateway.active_restriction(NUMBER, sh(2026, 3, 2)) is None
        await restrict(cli)
        assert (await gateway.active_restriction(NUMBER, sh(2026, 3, 2))).operator == "op1"
        await cli.lift_restriction(NUMBER, operator="s", reason="r", at=sh(2026, 3, 3))
        assert await gateway.active_restriction(NUMBER, sh(2026, 3, 3)) is None
    finally:
        await gateway.close()
        await cli.close()


# -- call entry and queueing: one transaction each ------------------------------------------------------------------


async def test_entry_of_a_restricted_caller_opens_the_call_records_the_attempt_and_closes_it_blocked(store):
    r = await restrict(store)
    at = sh(2026, 3, 2, 9)
    found = await store.enter_call(call_id="c1", number=NUMBER, channel="PJSIP/trunk-1", at=at)
    assert found is not None and found.id == r.id
    call = await store.get_call("c1")
    assert (call["number"], call["channel"], call["started_at"]) == (NUMBER, "PJSIP/trunk-1", at)
    assert (call["outcome"], call["ended_at"]) == ("blocked", at)
    assert [(a["call_id"], a["restriction_id"], a["at"]) for a in await store.blocked_attempts(NUMBER)] == [
        ("c1", r.id, at)]


async def test_entry_of_a_free_or_anonymous_caller_opens_the_call_only(store):
    await restrict(store, "+867592345678")
    assert await store.enter_call(call_id="c1", number=NUMBER, channel="PJSIP/t", at=sh(2026, 3, 2, 9)) is None
    assert await store.enter_call(call_id="c2", number=None, channel="PJSIP/t", at=sh(2026, 3, 2, 9)) is None
    assert [c["outcome"] for c in await store.list_calls()] == [None, None]
    assert await store.blocked_attempts() == []


async def test_entry_after_the_restriction_ends_lets_the_caller_in(store):
    await restrict(store, days=1)
    assert await store.enter_call(call_id="c1", number=NUMBER, channel="PJSIP/t", at=sh(2026, 3, 4, 0, 0)) is None


async def test_queueing_files_the_outcome_and_the_draft_together(store):
    await store.enter_call(call_id="c1", number=NUMBER, channel="PJSIP/t", at=sh(2026, 3, 2, 9))
    ticket_id = await store.queue_call("c1", ivr_path=["3"], request_type="complaint", emergency=None, priority=0,
                                       ticket_query=None, ticket_type="complaint", due=date(2026, 3, 23),
                                       at=sh(2026, 3, 2, 9, 1))
    call = await store.get_call("c1")
    assert (call["outcome"], call["ivr_path"], call["request_type"], call["priority"]) == ("ivr", ["3"], "complaint", 0)
    draft = await store.get_ticket_draft(ticket_id)
    assert (draft["call_id"], draft["type"], draft["due"], draft["status"]) == ("c1", "complaint", date(2026, 3, 23),
                                                                                 "draft")
    assert ticket_id.startswith("20260302")


async def test_queueing_with_a_bad_field_changes_nothing(store):
    await store.enter_call(call_id="c1", number=NUMBER, channel="PJSIP/t", at=sh(2026, 3, 2, 9))
    with pytest.raises(ValueError):
        await store.queue_call("c1", ivr_path=["3"], request_type="complaint", emergency=None, priority=0,
                               ticket_query=None, ticket_type="complaint", due="2026-03-23", at=sh(2026, 3, 2, 9, 1))
    assert (await store.get_call("c1"))["outcome"] is None
    assert await store.ticket_draft_for_call("c1") is None
