"""Screen-pops on AgentConnect: what the agent sees, which topic it goes to, and what is ignored."""

import json
from datetime import date, datetime, timedelta

import pytest
from panoramisk.message import Message

from ami_handlers.screenpop import ScreenPopper, build_screenpop, event_var
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
NUMBER = "+8613800138000"
CALL_ID = "1764222222.12"


def event(name="AgentConnect", **headers):
    return Message({"Event": name, **headers})


def agent_connect(call_id=CALL_ID, ticket_id="", member="PJSIP/agent1", **extra):
    caller_vars = [f"HOTLINE_CALL_ID={call_id}", "HOTLINE_REQUEST_TYPE=complaint", f"HOTLINE_TICKET_ID={ticket_id}"]
    return event(Queue="hotline", MemberName=member, Interface=member, ChanVariable=caller_vars,
                 DestChanVariable=caller_vars, CallerIDNum="13800138000", **extra)


class RecordingOutbox:
    def __init__(self):
        self.items = []

    async def put(self, topic, payload, *, message_id):
        self.items.append((topic, payload, message_id))
        return len(self.items)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    yield s
    await s.close()


@pytest.fixture
def outbox():
    return RecordingOutbox()


@pytest.fixture
def popper(store, outbox):
    return ScreenPopper(store, outbox, clock=lambda: NOW)


async def a_queued_complaint(store) -> str:
    await store.open_call(call_id=CALL_ID, number=NUMBER, channel="PJSIP/trunk-1", started_at=NOW - timedelta(minutes=2))
    await store.update_call(CALL_ID, ivr_path=["welcome", "3"], request_type="complaint", outcome="queued")
    ticket_id = await store.create_ticket_draft(call_id=CALL_ID, request_type="complaint",
                                                created_at=NOW - timedelta(minutes=1))
    await store.update_ticket_draft(ticket_id, category="noise", unit="城管局", due=date(2026, 12, 18),
                                    transcript="晚上十一点还在施工", summary="夜间施工噪音")
    return ticket_id


# -- the pure message ------------------------------------------------------------------------------------------


def test_build_screenpop_is_json_ready_and_carries_everything_the_agent_needs():
    call = {"call_id": "c1", "number": NUMBER, "ivr_path": ["welcome", "3"], "request_type": "complaint",
            "emergency": None, "priority": 0, "started_at": NOW}
    ticket = {"ticket_id": "2026112700001", "type": "complaint", "due": date(2026, 12, 18), "status": "draft",
              "agent": "agent1", "transcript": "t", "created_at": NOW}
    history = {"calls": [{"call_id": "c0", "started_at": NOW - timedelta(days=3), "request_type": "help",
                          "outcome": "answered"}], "tickets": [], "restrictions": []}
    pop = build_screenpop(message_id="m1", agent="agent1", call=call, ticket=ticket, history=history,
                          transcript="晚上施工", created_at=NOW, reason="menu")
    assert json.loads(json.dumps(pop)) == pop
    assert pop["id"] == "m1" and pop["agent"] == "agent1" and pop["call_id"] == "c1"
    assert pop["caller_number"] == NUMBER and pop["ivr_path"] == ["welcome", "3"]
    assert pop["ticket"]["id"] == "2026112700001" and pop["ticket"]["due"] == "2026-12-18"
    assert pop["ticket"]["unit"] is None
    assert pop["transcript"] == "晚上施工" and pop["reason"] == "menu"
    assert pop["history"]["calls"][0]["started_at"] == (NOW - timedelta(days=3)).isoformat()
    assert pop["created_at"] == NOW.isoformat()


def test_event_var_prefers_the_caller_leg_and_skips_empty_values():
    e = event(ChanVariable=["HOTLINE_TICKET_ID="], DestChanVariable=["HOTLINE_TICKET_ID=2026112700001"])
    assert event_var(e, "HOTLINE_TICKET_ID") == "2026112700001"
    assert event_var(event(ChanVariable="HOTLINE_CALL_ID=a", DestChanVariable="HOTLINE_CALL_ID=b"),
                     "HOTLINE_CALL_ID") == "a"
    assert event_var(event(), "HOTLINE_CALL_ID") is None


# -- ScreenPopper ----------------------------------------------------------------------------------------------


async def test_agent_connect_pops_the_draft_on_the_agents_topic(popper, store, outbox):
    ticket_id = await a_queued_complaint(store)
    await popper.handle(agent_connect(ticket_id=ticket_id))
    [(topic, pop, message_id)] = outbox.items
    assert topic == "hotline/agents/agent1/screenpop"
    assert pop["id"] == message_id and pop["agent"] == "agent1" and pop["call_id"] == CALL_ID
    assert pop["caller_number"] == NUMBER and pop["ivr_path"] == ["welcome", "3"]
    assert pop["ticket"]["id"] == ticket_id and pop["ticket"]["unit"] == "城管局"
    assert pop["transcript"] == "晚上十一点还在施工"
    assert (await store.get_ticket_draft(ticket_id))["agent"] == "agent1"
    assert popper.popped == 1 and popper.processed == 1


async def test_the_pop_names_the_ticket_by_its_public_id_and_is_recorded_for_a_console_that_reconnects(
        popper, store, outbox):
    ticket_id = await a_queued_complaint(store)
    await popper.handle(agent_connect(ticket_id=ticket_id))
    [(_, pop, message_id)] = outbox.items
    draft = await store.get_ticket_draft(ticket_id)
    assert pop["ticket"]["public_id"] == draft["public_id"] and pop["ticket"]["id"] == ticket_id
    assert await store.ticket_assignees(ticket_id) == {"agent1"}
    recorded = await store.latest_screenpop("agent1")
    assert (recorded["message_id"], recorded["call_id"], recorded["ticket_id"]) == (message_id, CALL_ID, ticket_id)


async def test_the_pop_carries_the_pre_fill_scores_and_marks_the_low_ones(store, outbox):
    ticket_id = await a_queued_complaint(store)
    scores = {"type": {"score": 0.92, "runner_up": "help", "runner_up_score": 0.05},
              "category": {"score": 0.45, "runner_up": "城市管理", "runner_up_score": 0.3},
              "unit": {"score": 0.45}, "address": {"score": 0.2}}
    await store.update_ticket_draft(ticket_id, type="complaint", scores=scores)
    assert (await store.get_ticket_draft(ticket_id))["scores"] == scores     # stored and read back as JSON
    popper = ScreenPopper(store, outbox, clock=lambda: NOW, low_confidence=0.5)
    await popper.handle(agent_connect(ticket_id=ticket_id))
    [(_, pop, _)] = outbox.items
    assert pop["ticket"]["scores"] == scores
    # address scored low but was not filled: nothing to check there
    assert pop["ticket"]["check"] == ["category", "unit"]
    json.dumps(pop, ensure_ascii=False)


async def test_malformed_scores_are_refused_by_the_store(store):
    ticket_id = await a_queued_complaint(store)
    with pytest.raises(ValueError, match="scores"):
        await store.update_ticket_draft(ticket_id, scores={"type": 0.9})


async def test_draft_is_found_by_call_when_the_channel_has_no_ticket_id(popper, store, outbox):
    ticket_id = await a_queued_complaint(store)
    await popper.handle(agent_connect(ticket_id="", member="PJSIP/agent2"))
    [(topic, pop, _)] = outbox.items
    assert topic == "hotline/agents/agent2/screenpop" and pop["ticket"]["id"] == ticket_id


async def test_history_shows_earlier_calls_and_restrictions_but_not_this_call(popper, store, outbox):
    await store.open_call(call_id="earlier", number=NUMBER, channel="x", started_at=NOW - timedelta(days=5))
    old_ticket = await store.create_ticket_draft(call_id="earlier", request_type="help",
                                                 created_at=NOW - timedelta(days=5))
    r = await store.add_restriction(NUMBER, reason="insults", operator="sup", days=1,
                                    decided_at=NOW - timedelta(days=40))
    ticket_id = await a_queued_complaint(store)
    await popper.handle(agent_connect(ticket_id=ticket_id))
    history = outbox.items[0][1]["history"]
    assert [c["call_id"] for c in history["calls"]] == ["earlier"]
    assert [t["id"] for t in history["tickets"]] == [old_ticket]
    assert [(x["id"], x["reason"], x["active"]) for x in history["restrictions"]] == [(r.id, "insults", False)]


async def test_call_record_not_yet_written_still_pops_with_the_event_number(popper, store, outbox):
    await popper.handle(agent_connect(call_id="unknown.1"))
    [(_, pop, _)] = outbox.items
    assert pop["call_id"] == "unknown.1" and pop["caller_number"] == NUMBER and pop["ticket"] is None


@pytest.mark.parametrize("e", [
    event(Queue="hotline", MemberName="PJSIP/agent1"),  # no call id: not one of ours
    agent_connect(member=""),  # nobody to pop to
    event("QueueCallerJoin", ChanVariable=f"HOTLINE_CALL_ID={CALL_ID}"),
])
async def test_events_without_call_id_or_agent_are_ignored(popper, outbox, e):
    await popper.handle(e)
    assert outbox.items == [] and popper.processed == 1


async def test_failures_are_logged_never_raised(store, outbox, caplog):
    class BrokenOutbox:
        async def put(self, *args, **kwargs):
            raise RuntimeError("disk full")

    popper = ScreenPopper(store, BrokenOutbox(), clock=lambda: NOW)
    await popper.handle(agent_connect())
    await popper.handle(agent_connect(member="PJSIP/evil/#"))
    assert popper.processed == 2 and popper.popped == 0
    assert caplog.text.count("event=screenpop_failed") == 2
    assert NUMBER not in caplog.text


async def test_attach_registers_for_agent_connect(popper):
    registered = []

    class FakeAMI:
        def on_event(self, name, callback):
            registered.append((name, callback))

    popper.attach(FakeAMI())
    assert registered == [("AgentConnect", popper.handle)]


# -- through the real broker -----------------------------------------------------------------------------------


