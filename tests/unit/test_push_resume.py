"""Pushes left pending by a stopped gateway: judged at the next start, resumed from the rows the call left (no copy
of the case is kept) with the same push id, or failed with the reason."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from linkage.emergency_list import load_emergency_list, parse_emergency_list
from linkage.push_resume import RESUME_WITHIN, judge_pending, resume_pending_pushes

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
NUMBER = "+8613800138000"
SITUATION = {"id": "fire", "name": "火灾", "centres": ["119"], "menu_key": "2", "keywords": ["着火"]}
HTTP_119 = {"dial": "PJSIP/centre-119", "answer_timeout_s": 20, "push": "http",
            "http_url": "https://dispatch.119.example/cases"}


def emergencies(**centre):
    return parse_emergency_list({"situation": [SITUATION], "centres": {"119": {**HTTP_119, **centre}}},
                                source="em.toml")


class Spawns:
    def __init__(self) -> None:
        self.cases: list[tuple[str, dict]] = []

    def spawn(self, centre, **case):
        self.cases.append((centre.name, case))


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    yield s
    await s.close()


async def pending_push(store, *, push_id="p1", adapter="http", attempts=2, at=T0, call_id="c1", trigger="menu"):
    await store.open_call(call_id=call_id, number=NUMBER, channel="PJSIP/trunk-1", started_at=at)
    ticket = await store.create_ticket_draft(call_id=call_id, request_type="help", created_at=at)
    await store.update_ticket_draft(ticket, address="赤坎区中山一路8号", transcript="我 家 着火 了", at=at)
    handoff_id = await store.add_handoff(call_id=call_id, centre="119", trigger=trigger, mode="blind",
                                         requested_at=at, situation="fire", ticket_id=ticket)
    row = await store.add_push(push_id=push_id, centre="119", adapter=adapter, at=at, handoff_id=handoff_id,
                               call_id=call_id)
    await store.update_push(row, attempts=attempts, last_error="HTTP 503: busy", at=at + timedelta(seconds=2))
    return row, handoff_id


def push_row(**over):
    return {"push_id": "p1", "centre": "119", "adapter": "http", "attempts": 2, "created_at": T0, **over}


def test_a_recent_push_to_a_centre_still_on_the_list_is_resumed():
    verdict = judge_pending(push_row(), {"id": 1}, emergencies(), now=T0 + timedelta(seconds=30))
    assert verdict.centre.name == "119" and verdict.reason is None


@pytest.mark.parametrize("push,handoff,lst,reason", [
    (push_row(created_at=T0 - RESUME_WITHIN - timedelta(minutes=1)), {"id": 1}, emergencies(),
     "1 h 1 min old (resumed within 1 h 0 min)"),
    (push_row(), None, emergencies(), "no hand-off row"),
    (push_row(centre="gas"), {"id": 1}, emergencies(), "centre gas is no longer in the emergency list"),
    (push_row(), {"id": 1}, emergencies(push="mqtt"), "now takes push = 'mqtt', not 'http'"),
])
def test_a_push_that_cannot_be_resumed_says_why(push, handoff, lst, reason):
    verdict = judge_pending(push, handoff, lst, now=T0)
    assert verdict.centre is None and reason in verdict.reason
    assert verdict.reason.startswith("not resumed after the restart: ")


async def test_a_pending_push_is_resumed_with_its_key_its_attempts_and_the_case_from_the_rows(store):
    _, handoff_id = await pending_push(store)
    spawns = Spawns()
    now = T0 + timedelta(minutes=2)
    assert await resume_pending_pushes(store, spawns, emergencies(), clock=lambda: now) == (1, 0)
    [(centre, case)] = spawns.cases
    assert centre == "119"
    assert (case["push_id"], case["attempts_made"], case["handoff_id"], case["at"]) == ("p1", 2, handoff_id, T0)
    assert (case["caller_number"], case["situation"], case["situation_name"], case["agent"]) == (
        NUMBER, "fire", "火灾", None)
    assert (case["address"], case["transcript"]) == ("赤坎区中山一路8号", "我 家 着火 了")
    (push,) = await store.list_pushes()
    assert push["state"] == "pending" and push["resumed_at"] == now


async def test_an_agent_transfer_push_is_resumed_with_the_agent_who_made_it(store):
    await pending_push(store, trigger="agent")
    await store.update_call("c1", agent="agent2")
    spawns = Spawns()
    await resume_pending_pushes(store, spawns, emergencies(), clock=lambda: T0 + timedelta(minutes=1))
    assert spawns.cases[0][1]["agent"] == "agent2"


async def test_a_push_too_old_or_to_a_changed_centre_is_failed_with_the_reason(store):
    await pending_push(store, push_id="old", at=T0 - timedelta(hours=3), call_id="c-old")
    await pending_push(store, push_id="moved", call_id="c-moved", adapter="mqtt")
    spawns = Spawns()
    assert await resume_pending_pushes(store, spawns, emergencies(), clock=lambda: T0) == (0, 2)
    assert spawns.cases == []
    failed = {p["push_id"]: p for p in await store.list_pushes()}
    assert failed["old"]["state"] == "failed" and "3 h 0 min old" in failed["old"]["last_error"]
    assert failed["moved"]["state"] == "failed" and "now takes push = 'http'" in failed["moved"]["last_error"]
    assert failed["old"]["attempts"] == 2, "the attempts made stay on record"


async def test_pushes_that_ended_are_left_alone(store):
    row, _ = await pending_push(store)
    await store.update_push(row, state="sent", at=T0)
    spawns = Spawns()
    assert await resume_pending_pushes(store, spawns, emergencies(), clock=lambda: T0) == (0, 0)
    assert (await store.list_pushes())[0]["state"] == "sent"


async def test_an_unreadable_store_does_not_stop_the_start(store, caplog):
    await store.close()
    assert await resume_pending_pushes(store, Spawns(), load_emergency_list(require_centres=True),
                                       clock=lambda: T0) == (0, 0)
    assert "event=linkage_push_resume_failed" in caplog.text
