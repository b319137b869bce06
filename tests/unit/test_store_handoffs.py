"""Migration 4: every linkage hand-off is logged with its timings, and every data push with its state."""

from datetime import datetime, timedelta

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.basics.write_health import STORE_ERRORS

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=SHANGHAI)



async def test_schema_is_at_version_4(store):
    assert await store.schema_version() >= 4


async def test_a_handoff_records_request_ring_answer_and_result(store):
    hid = await store.add_handoff(call_id="1764222222.12", ticket_id="2026112700001", situation="fire",
                                  centre="119", trigger="speech", mode="blind", requested_at=T0)
    await store.update_handoff(hid, ring_at=T0 + timedelta(seconds=1))
    await store.update_handoff(hid, answered_at=T0 + timedelta(seconds=6), result="answered")
    await store.update_handoff(hid, ended_at=T0 + timedelta(minutes=3), detail="PJSIP/centre-119-00000003")
    h = await store.get_handoff(hid)
    assert (h["call_id"], h["ticket_id"], h["situation"], h["centre"], h["trigger"], h["mode"], h["result"]) == (
        "1764222222.12", "2026112700001", "fire", "119", "speech", "blind", "answered")
    assert h["requested_at"] == T0 and h["answered_at"] - h["requested_at"] == timedelta(seconds=6)
    assert h["requested_at"].tzinfo is not None and h["detail"] == "PJSIP/centre-119-00000003"


async def test_a_call_tried_at_two_centres_lists_both_newest_first(store):
    first = await store.add_handoff(call_id="c1", centre="power", trigger="menu", mode="blind", requested_at=T0,
                                    situation="fallen_wire")
    await store.update_handoff(first, result="no_answer", ended_at=T0 + timedelta(seconds=30))
    second = await store.add_handoff(call_id="c1", centre="119", trigger="menu", mode="blind",
                                     requested_at=T0 + timedelta(seconds=30), situation="fallen_wire")
    await store.add_handoff(call_id="c2", centre="120", trigger="agent", mode="threeway", requested_at=T0)
    assert [h["id"] for h in await store.list_handoffs(call_id="c1")] == [second, first]
    assert len(await store.list_handoffs()) == 3 and len(await store.list_handoffs(limit=1)) == 1


@pytest.mark.parametrize("change", [{"trigger": "dtmf"}, {"mode": "conference"}, {"call_id": ""},
                                    {"requested_at": datetime(2026, 11, 27, 9, 30)}])
async def test_bad_handoff_values_are_refused(store, change):
    kwargs = dict(call_id="c1", centre="119", trigger="menu", mode="blind", requested_at=T0) | change
    with pytest.raises(ValueError):
        await store.add_handoff(**kwargs)


async def test_bad_updates_are_refused_and_unknown_handoffs_are_lookup_errors(store):
    hid = await store.add_handoff(call_id="c1", centre="119", trigger="menu", mode="blind", requested_at=T0)
    with pytest.raises(ValueError, match="result"):
        await store.update_handoff(hid, result="maybe")
    with pytest.raises(ValueError, match="unknown hand-off field"):
        await store.update_handoff(hid, centre="110")
    with pytest.raises(LookupError):
        await store.update_handoff(hid + 1, result="answered")
    assert (await store.get_handoff(hid))["result"] is None


async def test_push_state_goes_from_pending_to_sent_with_attempts(store):
    hid = await store.add_handoff(call_id="c1", centre="water", trigger="speech", mode="blind", requested_at=T0)
    pid = await store.add_push(push_id="p-1", handoff_id=hid, call_id="c1", centre="water", adapter="http", at=T0)
    assert await store.add_push(push_id="p-1", centre="water", adapter="http", at=T0) == pid
    (p,) = await store.list_pushes(handoff_id=hid)
    assert (p["state"], p["attempts"], p["last_error"], p["in_outbox"]) == ("pending", 0, None, False)
    await store.update_push(pid, attempts=1, last_error="HTTP 503", at=T0 + timedelta(seconds=1))
    await store.update_push(pid, state="sent", attempts=2, last_error=None, at=T0 + timedelta(seconds=2))
    (p,) = await store.list_pushes(call_id="c1")
    assert (p["state"], p["attempts"], p["last_error"]) == ("sent", 2, None)
    assert p["updated_at"] - p["created_at"] == timedelta(seconds=2)


async def test_an_mqtt_push_shows_whether_it_still_waits_in_the_outbox(store):
    pid = await store.add_push(push_id="p-2", centre="119", adapter="mqtt", at=T0)
    await store.outbox_add("hotline/linkage/119", {"push_id": "p-2"}, message_id="p-2", at=T0)
    await store.update_push(pid, state="queued")
    assert (await store.list_pushes())[0]["in_outbox"] is True
    (row,) = await store.outbox_pending()
    await store.outbox_remove(row["seq"])
    assert (await store.list_pushes())[0]["in_outbox"] is False


async def test_bad_push_values_are_refused(store):
    with pytest.raises(ValueError, match="adapter"):
        await store.add_push(push_id="p", centre="119", adapter="fax", at=T0)
    pid = await store.add_push(push_id="p", centre="119", adapter="none", at=T0)
    with pytest.raises(ValueError, match="state"):
        await store.update_push(pid, state="delivered")
    with pytest.raises(ValueError, match="attempts"):
        await store.update_push(pid, attempts=-1)
    with pytest.raises(LookupError):
        await store.update_push(pid + 1, state="sent")
    with pytest.raises(STORE_ERRORS, match="(?i)foreign key"):
        await store.add_push(push_id="q", centre="119", adapter="none", at=T0, handoff_id=999)


async def test_a_long_error_is_cut_to_a_log_line(store):
    pid = await store.add_push(push_id="p", centre="119", adapter="http", at=T0)
    await store.update_push(pid, state="failed", last_error="x" * 5000)
    assert len((await store.list_pushes())[0]["last_error"]) == 500
