"""The export's records (docs/export.md): each type's fields, the id scheme, the time zone, what is masked, the
restriction audit only when asked for, the window, and the queries on the time indexes; on both backends."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from gateway.export.reading import export_records
from gateway.export.records import ExportOptions
from gateway.store.exporting import EXPORT_KINDS
from tests.export_rows import CALLER, T0, abandoned_call, answered_call, restriction_decided_and_lifted

MASKED = ExportOptions()
FULL = ExportOptions(full_numbers=True, include_restriction_audit=True)
CALL_FIELDS = {"record_type", "id", "source", "call_id", "caller_number", "numbers", "started_at", "queued_at",
               "answered_at", "ended_at", "outcome", "request_type", "emergency", "priority", "ivr_path", "agent",
               "progress_query_ticket", "final"}
TICKET_FIELDS = {"record_type", "id", "source", "ticket_no", "call_id", "call_record_id", "type", "category", "unit",
                 "address", "callback_number", "numbers", "emergency", "emergency_situation", "due", "summary",
                 "transcript", "status", "agent", "created_at", "updated_at", "final"}
AUDIT_FIELDS = {"record_type", "id", "source", "audit_id", "action", "restriction_id", "number", "numbers",
                "operator", "reason", "at", "days", "until", "final"}


async def _all(store, options, since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)) -> list[dict]:
    return [r async for r in export_records(store, since, until, options)]


@pytest.fixture
async def office(store):
    ticket = await answered_call(store, "1764000001.1", T0)
    unanswered = await abandoned_call(store, "1764000002.2", T0 + timedelta(minutes=1))
    await restriction_decided_and_lifted(store, T0 + timedelta(minutes=2))
    return {"ticket": ticket, "unanswered": unanswered}


async def test_a_call_record_has_the_documented_fields_in_local_time(store, office):
    call = next(r for r in await _all(store, FULL) if r["record_type"] == "call")
    assert set(call) == CALL_FIELDS
    assert call == {**call, "id": "zhanjiang:call:1764000001.1", "source": "zhanjiang", "call_id": "1764000001.1",
                    "caller_number": CALLER, "numbers": "full", "started_at": "2026-11-30T09:00:00+08:00",
                    "queued_at": "2026-11-30T09:00:00+08:00", "answered_at": "2026-11-30T09:00:09+08:00",
                    "ended_at": "2026-11-30T09:01:09+08:00", "outcome": "answered", "request_type": "complaint",
                    "emergency": None, "priority": 2, "ivr_path": ["3"], "agent": "agent1",
                    "progress_query_ticket": None, "final": True}
    json.dumps(call)    # plain JSON values only


async def test_a_ticket_record_has_the_documented_fields_and_names_its_call(store, office):
    tickets = [r for r in await _all(store, FULL) if r["record_type"] == "ticket"]
    assert [t["ticket_no"] for t in tickets] == [office["ticket"], office["unanswered"]]
    saved, unanswered = tickets
    assert set(saved) == TICKET_FIELDS
    assert saved == {**saved, "id": f"zhanjiang:ticket:{office['ticket']}", "call_id": "1764000001.1",
                     "call_record_id": "zhanjiang:call:1764000001.1", "type": "complaint", "category": "噪音",
                     "unit": "市生态环境局", "address": "赤坎区人民大道8号", "callback_number": "+8613900001111",
                     "due": "2026-12-08", "status": "saved", "created_at": "2026-11-30T09:00:00+08:00",
                     "updated_at": "2026-11-30T09:01:09+08:00", "final": True}
    assert unanswered["status"] == "draft" and unanswered["final"] is True   # nobody answered: nothing to wait for


async def test_a_restriction_audit_record_has_the_documented_fields(store, office):
    audit = [r for r in await _all(store, FULL) if r["record_type"] == "restriction_audit"]
    assert [a["action"] for a in audit] == ["add", "lift"]
    add = audit[0]
    assert set(add) == AUDIT_FIELDS
    assert add == {**add, "id": f"zhanjiang:restriction_audit:{add['audit_id']}", "number": "+8613700002222",
                   "operator": "lead1", "at": "2026-11-30T09:02:00+08:00", "days": 30,
                   "until": "2026-12-31T00:00:00+08:00", "final": True}


async def test_numbers_are_masked_by_default_in_their_fields_and_in_free_text(store, office):
    records = await _all(store, ExportOptions(include_restriction_audit=True))
    text = json.dumps(records, ensure_ascii=False)
    for digits in ("13800138000", "13900001111", "13700002222"):
        assert digits not in text
    call = records[0]
    ticket = next(r for r in records if r["record_type"] == "ticket")
    audit = next(r for r in records if r["record_type"] == "restriction_audit")
    assert (call["caller_number"], call["numbers"]) == ("138****8000", "masked")
    assert ticket["callback_number"] == "139****1111" and "138****8000" in ticket["transcript"]
    assert "139****1111" in ticket["summary"] and ticket["address"] == "赤坎区人民大道8号"   # short numbers stay
    assert audit["number"] == "137****2222" and "137****2222" in audit["reason"]


async def test_full_numbers_are_e164_and_free_text_is_left_as_it_was(store, office):
    ticket = next(r for r in await _all(store, FULL) if r["record_type"] == "ticket")
    assert ticket["numbers"] == "full" and ticket["callback_number"] == "+8613900001111"
    assert ticket["transcript"] == "晚上十点以后还在施工 我的电话是13800138000"


async def test_an_anonymous_caller_has_no_number(store):
    await answered_call(store, "anon-1", T0, number=None)
    call = (await _all(store, FULL))[0]
    assert call["caller_number"] is None


async def test_the_restriction_audit_is_exported_only_when_configured(store, office):
    assert {r["record_type"] for r in await _all(store, MASKED)} == {"call", "ticket"}
    assert {r["record_type"] for r in await _all(store, FULL)} == {"call", "ticket", "restriction_audit"}


async def test_the_window_includes_its_start_and_excludes_its_end_in_time_order(store):
    for n in range(5):
        await answered_call(store, f"c{n}", T0 + timedelta(minutes=n))
    window = await _all(store, MASKED, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4))
    assert [r["call_id"] for r in window if r["record_type"] == "call"] == ["c1", "c2", "c3"]
    assert [r["call_id"] for r in window if r["record_type"] == "ticket"] == ["c1", "c2", "c3"]
    paged = await _all(store, ExportOptions(page_size=2))
    assert [r["call_id"] for r in paged] == [f"c{n}" for n in range(5)] * 2     # calls, then tickets


async def test_record_ids_are_stable_from_one_export_to_the_next(store, office):
    first = [r["id"] for r in await _all(store, FULL)]
    assert first == [r["id"] for r in await _all(store, FULL)] and len(set(first)) == len(first)


async def test_a_call_not_yet_ended_is_exported_by_the_window_as_not_final(store):
    await answered_call(store, "live", T0, ended=False, saved=False)
    call, ticket = await _all(store, MASKED)
    assert (call["ended_at"], call["final"], ticket["final"]) == (None, False, False)


async def _bulk_calls(store, count: int) -> None:
    """``count`` calls a second apart, each with its ticket, written in one transaction (a busy day)."""
    async with store._write() as db:
        await db.executemany(
            "INSERT INTO calls (call_id, number, started_at, ivr_path, outcome, ended_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(f"b{n:06d}", CALLER, _ts(n), '["1"]', "answered", _ts(n + 60)) for n in range(count)])
        await db.executemany(
            "INSERT INTO ticket_drafts (ticket_id, public_id, call_id, status, created_at, updated_at)"
            " VALUES (?, ?, ?, 'saved', ?, ?)",
            [(f"20261130{n:06d}", f"{n:032x}", f"b{n:06d}", _ts(n), _ts(n + 60)) for n in range(count)])


def _ts(seconds: int) -> str:
    from gateway.store.rows import to_ts
    return to_ts(T0 + timedelta(seconds=seconds))


@pytest.mark.parametrize("kind", [k for k in EXPORT_KINDS if k != "restriction_audit"])
async def test_the_export_pages_read_through_the_time_indexes(store, kind):
    index = {"call": "calls_started", "ticket": "ticket_drafts_created"}[kind]
    await _bulk_calls(store, 3000)
    await store._db.execute("ANALYZE")
    captured = []
    reader = store._db

    class Explaining:
        async def execute_fetchall(self, sql, params=()):
            captured.append((sql, params))
            return await reader.execute_fetchall(sql, params)

    store._db = Explaining()
    try:
        await store.export_page(kind, since=_ts(100), until=_ts(200), after=(_ts(150), "x"), limit=10)
        await store.export_first_open(kind, since=_ts(100), until=_ts(200), settled=_ts(200))
    finally:
        store._db = reader
    for n, (sql, params) in enumerate(captured):
        explain = "EXPLAIN QUERY PLAN " if store.backend.name == "sqlite" else "EXPLAIN "
        plan = " ".join(str(row[-1]) for row in await store._db.execute_fetchall(explain + sql, params))
        driving = {"call": "calls", "ticket": "ticket_drafts"}[kind]
        assert index in plan and f"Seq Scan on {driving}" not in plan and "SCAN " not in plan, plan
        if n == 0:      # a page's index range starts at the last row read, not at the window's start
            assert params["since"] == _ts(150), params
            if store.backend.name == "postgres":
                assert f">= '{_ts(150)}'::text" in plan, plan


async def test_a_busy_day_exports_in_seconds(store):
    await _bulk_calls(store, 20_000)
    started = time.perf_counter()
    records = [r async for r in export_records(store, T0, T0 + timedelta(days=1), MASKED)]
    elapsed = time.perf_counter() - started
    assert len(records) == 40_000 and records[-1]["ticket_no"] == "20261130019999"
    assert elapsed < 20, f"{elapsed:.1f} s for a day of 20,000 calls and their tickets"
