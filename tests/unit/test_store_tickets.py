"""Store additions of migration 3: ticket drafts, caller history, the MQTT outbox, pending restrictions."""

import asyncio
from datetime import date, datetime, timedelta

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store

NUMBER = "+8613800138000"
OTHER = "+8613900139000"


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)



# -- ticket drafts ---------------------------------------------------------------------------------------------


async def test_ticket_ids_are_local_date_plus_daily_sequence_digits_only(store):
    first = await store.create_ticket_draft(call_id="c1", request_type="complaint", created_at=sh(2026, 11, 27, 9))
    second = await store.create_ticket_draft(call_id="c2", request_type=None, created_at=sh(2026, 11, 27, 23, 59))
    # 00:30 Beijing time on the 28th is still the 27th in UTC: the local day counts, and its sequence restarts.
    third = await store.create_ticket_draft(call_id="c3", request_type="help", created_at=sh(2026, 11, 28, 0, 30))
    assert (first, second, third) == ("2026112700001", "2026112700002", "2026112800001")
    assert all(t.isdigit() for t in (first, second, third))


async def test_concurrent_drafts_get_distinct_ids(store):
    ids = await asyncio.gather(*(
        store.create_ticket_draft(call_id=f"c{i}", request_type="help", created_at=sh(2026, 11, 27, 10))
        for i in range(30)
    ))
    assert sorted(ids) == [f"20261127{n:05d}" for n in range(1, 31)]


async def test_draft_fields_round_trip(store):
    ticket_id = await store.create_ticket_draft(call_id="c1", request_type="complaint", created_at=sh(2026, 11, 27, 9))
    await store.update_ticket_draft(
        ticket_id, category="noise", unit="城管局", address="赤坎区中山一路1号", callback_number="13800138000",
        emergency=None, emergency_situation=None, due=date(2026, 12, 18), summary="夜间施工噪音",
        transcript="晚上十一点还在施工", status="saved", agent="agent1", at=sh(2026, 11, 27, 9, 5),
    )
    draft = await store.get_ticket_draft(ticket_id)
    assert draft["type"] == "complaint" and draft["call_id"] == "c1"
    assert draft["unit"] == "城管局" and draft["callback_number"] == NUMBER
    assert draft["due"] == date(2026, 12, 18) and draft["status"] == "saved" and draft["agent"] == "agent1"
    assert draft["created_at"] == sh(2026, 11, 27, 9) and draft["updated_at"] == sh(2026, 11, 27, 9, 5)
    assert (await store.ticket_draft_for_call("c1"))["ticket_id"] == ticket_id
    assert await store.ticket_draft_for_call("nope") is None
    assert await store.get_ticket_draft("2026112799999") is None


@pytest.mark.parametrize("fields", [
    {"colour": "red"}, {"status": "closed"}, {"due": "2026-12-01"}, {"due": sh(2026, 12, 1)}, {"summary": 5},
    {"callback_number": "not a number"},
])
async def test_bad_draft_fields_are_refused(store, fields):
    ticket_id = await store.create_ticket_draft(call_id="c1", request_type="help", created_at=sh(2026, 11, 27, 9))
    with pytest.raises(ValueError):
        await store.update_ticket_draft(ticket_id, **fields)
    assert (await store.get_ticket_draft(ticket_id))["status"] == "draft"


async def test_updating_an_unknown_draft_raises_lookup_error(store):
    with pytest.raises(LookupError):
        await store.update_ticket_draft("2026112700001", summary="x")


async def test_progress_query_finds_drafts_as_received_and_prefers_the_ticket_system(store):
    ticket_id = await store.create_ticket_draft(call_id="c1", request_type="help", created_at=sh(2026, 11, 27, 9))
    assert (await store.ticket_status(ticket_id))["status"] == "received"
    await store.update_ticket_draft(ticket_id, status="saved")
    assert (await store.ticket_status(ticket_id))["status"] == "received"
    await store.add_ticket(ticket_id, status="processing", at=sh(2026, 11, 28, 9))
    assert (await store.ticket_status(ticket_id))["status"] == "processing"
    assert await store.ticket_status("123") is None


# -- caller history --------------------------------------------------------------------------------------------


async def test_caller_history_lists_recent_calls_tickets_and_every_restriction(store):
    now = sh(2026, 11, 27, 12)
    await store.open_call(call_id="old", number=NUMBER, channel="PJSIP/t-1", started_at=now - timedelta(days=91))
    await store.open_call(call_id="c1", number=NUMBER, channel="PJSIP/t-2", started_at=now - timedelta(days=10))
    await store.update_call("c1", request_type="complaint", outcome="answered")
    await store.open_call(call_id="c2", number=NUMBER, channel="PJSIP/t-3", started_at=now - timedelta(hours=1))
    await store.open_call(call_id="x", number=OTHER, channel="PJSIP/t-4", started_at=now - timedelta(days=1))
    t1 = await store.create_ticket_draft(call_id="c1", request_type="complaint", created_at=now - timedelta(days=10))
    await store.create_ticket_draft(call_id="x", request_type="help", created_at=now - timedelta(days=1))
    # A ticket from another phone that names this number for the call-back belongs to the caller too.
    t3 = await store.create_ticket_draft(call_id="x2", request_type="report", created_at=now - timedelta(days=2))
    await store.update_ticket_draft(t3, callback_number=NUMBER)
    old = await store.add_restriction(NUMBER, reason="insults", operator="sup", days=5, decided_at=now - timedelta(days=60))
    lifted = await store.add_restriction(NUMBER, reason="threats", operator="sup", days=30,
                                         decided_at=now - timedelta(days=20))
    await store.lift_restriction(NUMBER, operator="sup2", reason="apologised", at=now - timedelta(days=15))

    history = await store.caller_history(NUMBER, now=now)
    assert [c["call_id"] for c in history["calls"]] == ["c2", "c1"]
    assert history["calls"][1] == {"call_id": "c1", "started_at": now - timedelta(days=10),
                                   "request_type": "complaint", "outcome": "answered"}
    assert [t["id"] for t in history["tickets"]] == [t3, t1]
    assert set(history["tickets"][0]) == {"id", "type", "category", "status", "created_at"}
    assert [r["id"] for r in history["restrictions"]] == [lifted.id, old.id]
    assert history["restrictions"][0]["lift_reason"] == "apologised"
    assert not any(r["active"] for r in history["restrictions"])
    assert history["calls_total"] == 2 and history["tickets_total"] == 2
    assert await store.caller_history(None, now=now) == {"calls": [], "tickets": [], "restrictions": [],
                                                         "calls_total": 0, "tickets_total": 0}


async def test_the_history_of_a_number_that_calls_all_day_lists_the_latest_and_counts_the_rest(store):
    now = sh(2026, 11, 27, 12)
    for i in range(30):
        await store.open_call(call_id=f"c{i}", number=NUMBER, channel=f"PJSIP/t-{i}",
                              started_at=now - timedelta(minutes=30 - i))
        await store.create_ticket_draft(call_id=f"c{i}", request_type="help", created_at=now - timedelta(minutes=30 - i))
    history = await store.caller_history(NUMBER, now=now, limit=5)
    assert [c["call_id"] for c in history["calls"]] == ["c29", "c28", "c27", "c26", "c25"]
    assert len(history["tickets"]) == 5
    assert history["calls_total"] == 30 and history["tickets_total"] == 30


# -- outbox ----------------------------------------------------------------------------------------------------


async def test_outbox_keeps_seq_order_and_removes_only_what_is_asked(store):
    seqs = [await store.outbox_add("hotline/agents/agent1/screenpop", {"id": f"m{i}", "n": i}, message_id=f"m{i}",
                                   at=sh(2026, 11, 27, 9)) for i in range(5)]
    assert seqs == sorted(seqs)
    await store.outbox_remove(seqs[1])
    pending = await store.outbox_pending()
    assert [row["message_id"] for row in pending] == ["m0", "m2", "m3", "m4"]
    assert pending[0]["payload"] == {"id": "m0", "n": 0} and pending[0]["attempts"] == 0
    assert [row["seq"] for row in await store.outbox_pending(limit=2)] == [seqs[0], seqs[2]]


async def test_outbox_add_is_idempotent_on_message_id(store):
    first = await store.outbox_add("t", {"id": "m"}, message_id="m", at=sh(2026, 11, 27, 9))
    again = await store.outbox_add("t", {"id": "m"}, message_id="m", at=sh(2026, 11, 27, 9))
    assert first == again and len(await store.outbox_pending()) == 1


async def test_outbox_attempts_are_counted_with_the_last_error(store):
    seq = await store.outbox_add("t", {"id": "m"}, message_id="m", at=sh(2026, 11, 27, 9))
    await store.outbox_mark_attempt(seq, "connection refused")
    await store.outbox_mark_attempt(seq, "timeout")
    row = (await store.outbox_pending())[0]
    assert row["attempts"] == 2 and row["last_error"] == "timeout"


async def test_removed_seqs_are_never_reused(tmp_path):
    path = tmp_path / "h.sqlite"
    async with await Store.open(path) as s:
        seq = await s.outbox_add("t", {}, message_id="a", at=sh(2026, 11, 27, 9))
        await s.outbox_remove(seq)
    async with await Store.open(path) as s:
        assert await s.outbox_add("t", {}, message_id="b", at=sh(2026, 11, 27, 9)) > seq


# -- pending restrictions --------------------------------------------------------------------------------------


async def test_confirmed_request_becomes_an_audited_restriction(store):
    pending_id = await store.add_pending_restriction(number="13800138000", reason="辱骂话务员", requested_by="agent1",
                                                     call_id="c1", at=sh(2026, 11, 27, 9))
    listed = await store.list_pending_restrictions()
    assert [(p["id"], p["number"], p["status"]) for p in listed] == [(pending_id, NUMBER, "pending")]

    restriction = await store.confirm_pending_restriction(pending_id, operator="sup1", at=sh(2026, 11, 27, 10), days=30)
    assert restriction.number == NUMBER and restriction.operator == "sup1"
    assert "辱骂话务员" in restriction.reason and "agent1" in restriction.reason and "c1" in restriction.reason
    assert await store.active_restriction(NUMBER, sh(2026, 11, 28)) == restriction
    audit = await store.restriction_audit(NUMBER)
    assert [(a["action"], a["restriction_id"], a["operator"]) for a in audit] == [("add", restriction.id, "sup1")]

    assert await store.list_pending_restrictions() == []
    decided = (await store.list_pending_restrictions(include_decided=True))[0]
    assert decided["status"] == "confirmed" and decided["restriction_id"] == restriction.id
    assert decided["decided_by"] == "sup1" and decided["decided_at"] == sh(2026, 11, 27, 10)


async def test_rejected_request_restricts_nobody_and_cannot_be_decided_again(store):
    pending_id = await store.add_pending_restriction(number=NUMBER, reason="shouted", requested_by="agent2",
                                                     call_id=None, at=sh(2026, 11, 27, 9))
    await store.reject_pending_restriction(pending_id, operator="sup1", reason="caller was in distress",
                                           at=sh(2026, 11, 27, 10))
    assert await store.active_restriction(NUMBER, sh(2026, 11, 27, 11)) is None
    assert await store.restriction_audit(NUMBER) == []
    with pytest.raises(ValueError, match="rejected"):
        await store.confirm_pending_restriction(pending_id, operator="sup2", at=sh(2026, 11, 27, 11), days=30)
    with pytest.raises(ValueError):
        await store.reject_pending_restriction(pending_id, operator="sup2", reason="x", at=sh(2026, 11, 27, 11))
    row = (await store.list_pending_restrictions(include_decided=True))[0]
    assert row["decision_reason"] == "caller was in distress" and row["decided_by"] == "sup1"


async def test_deciding_an_unknown_request_raises_lookup_error(store):
    with pytest.raises(LookupError):
        await store.confirm_pending_restriction(99, operator="sup", at=sh(2026, 11, 27, 9), days=30)
    with pytest.raises(LookupError):
        await store.reject_pending_restriction(99, operator="sup", reason="x", at=sh(2026, 11, 27, 9))


async def test_bad_days_leave_the_request_pending(store):
    pending_id = await store.add_pending_restriction(number=NUMBER, reason="r", requested_by="agent1", call_id="c",
                                                     at=sh(2026, 11, 27, 9))
    with pytest.raises(ValueError):
        await store.confirm_pending_restriction(pending_id, operator="sup", at=sh(2026, 11, 27, 9), days=0)
    assert (await store.get_pending_restriction(pending_id))["status"] == "pending"
