"""The calls the hotline places itself: calling hours, dial strings, return calls scheduled on a done ticket and
tried again within the hours, call-backs ringing the agent first; the AMI is a recorder of actions here (the real
one: tests/integration/test_aftercall_calls_real.py)."""
from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from gateway.aftercall.calling_hours import after_try, next_calling_time
from gateway.aftercall.outbound import CallBackError, OutboundCalls, callback_outcome, outbound_dial
from gateway.basics.clock import SHANGHAI
from gateway.config_aftercall import AfterCallSection
from ivr.survey import SurveyKind

EIGHT, NINE_PM = time(8), time(21)


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_calling_hours():
    assert next_calling_time(sh(2026, 12, 1, 10), start=EIGHT, end=NINE_PM, tz=SHANGHAI) == sh(2026, 12, 1, 10)
    assert next_calling_time(sh(2026, 12, 1, 7, 59), start=EIGHT, end=NINE_PM, tz=SHANGHAI) == sh(2026, 12, 1, 8)
    assert next_calling_time(sh(2026, 12, 1, 21), start=EIGHT, end=NINE_PM, tz=SHANGHAI) == sh(2026, 12, 2, 8)
    # UTC in, the hotline's hours apply: 14:00 UTC is 22:00 in Zhanjiang
    assert next_calling_time(datetime(2026, 12, 1, 14, tzinfo=UTC), start=EIGHT, end=NINE_PM,
                             tz=SHANGHAI) == sh(2026, 12, 2, 8)
    assert next_calling_time(sh(2026, 12, 1, 23, 59), start=time(0), end=time.max, tz=SHANGHAI) == \
        sh(2026, 12, 1, 23, 59)


def test_a_failed_try_is_repeated_within_the_hours_until_the_last():
    kw = dict(max_attempts=3, retry_min=120, start=EIGHT, end=NINE_PM, tz=SHANGHAI)
    assert after_try("answered", attempts=1, at=sh(2026, 12, 1, 10), **kw) == ("answered", None)
    assert after_try("no_answer", attempts=1, at=sh(2026, 12, 1, 10), **kw) == ("pending", sh(2026, 12, 1, 12))
    assert after_try("busy", attempts=2, at=sh(2026, 12, 1, 20), **kw) == ("pending", sh(2026, 12, 2, 8))
    assert after_try("no_answer", attempts=3, at=sh(2026, 12, 1, 10), **kw) == ("gave_up", None)


@pytest.mark.parametrize("e164, dial", [
    ("+8613800138000", "PJSIP/13800138000@hotline-outbound"),
    ("+867592345678", "PJSIP/07592345678@hotline-outbound"),
    ("+85221234567", "PJSIP/0085221234567@hotline-outbound"),
    ("+86123", None), ("not a number", None), ("+86 138 0013 8000;evil", None),
])
def test_dial_strings_come_from_valid_numbers_only(e164, dial):
    assert outbound_dial(e164) == dial


def test_dial_statuses_are_attempt_outcomes():
    assert [callback_outcome(s) for s in ("ANSWER", "NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "")] == [
        "reached", "no_answer", "busy", "failed", "failed", "failed"]


class RecordingAMI:
    def __init__(self, fail: bool = False):
        self.actions, self.fail, self.handlers = [], fail, {}

    async def action(self, action, timeout=5.0):
        if self.fail:
            raise ConnectionError("AMI down")
        self.actions.append(dict(action))
        return {"Response": "Success"}

    def on_event(self, name, handler):
        self.handlers[name] = handler


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


SETTINGS = AfterCallSection(outbound_contact="sip:127.0.0.1:5095", calling_from=EIGHT, calling_until=NINE_PM,
                            return_call_attempts=2, return_call_retry_min=60, ring_s=30)


async def a_done_ticket(store, at, *, callback_number=None) -> str:
    await store.enter_call(call_id="c1", number="+8613800138000", channel="PJSIP/caller-1", at=at)
    ticket = await store.queue_call("c1", ivr_path=["3"], request_type="complaint", emergency=None, priority=0,
                                    ticket_query=None, ticket_type="complaint", due=None, at=at)
    if callback_number:
        await store.update_ticket_draft(ticket, callback_number=callback_number)
    await store.report_ticket_status(ticket, "transferred", unit="市住建局", at=at, source="test")
    await store.report_ticket_status(ticket, "done", at=at, source="test")
    return ticket


async def test_a_done_ticket_gets_one_return_call_to_its_call_back_number(store):
    ticket = await a_done_ticket(store, sh(2026, 12, 1, 9), callback_number="0759-2345678")
    [row] = await store.return_calls(ticket_id=ticket)
    assert (row["number"], row["state"], row["attempts"]) == ("+867592345678", "pending", 0)
    await store.report_ticket_status(ticket, "closed", at=sh(2026, 12, 1, 10), source="test")
    assert len(await store.return_calls(ticket_id=ticket)) == 1


async def test_return_calls_are_placed_in_hours_and_tried_again_then_given_up(store):
    ticket = await a_done_ticket(store, sh(2026, 12, 1, 6))
    ami, clock = RecordingAMI(), Clock(sh(2026, 12, 1, 7))
    calls = OutboundCalls(ami, store, SETTINGS, hotline_number="12345", tz=SHANGHAI, clock=clock)
    assert await calls.place_due_return_calls() == 0 and ami.actions == []       # before 08:00
    clock.now = sh(2026, 12, 1, 9)
    assert await calls.place_due_return_calls() == 1
    [originate] = ami.actions
    [row] = await store.return_calls(ticket_id=ticket)
    assert originate["Channel"] == "PJSIP/13800138000@hotline-outbound"
    assert originate["Context"] == "hotline-return-call" and originate["CallerID"] == "12345 <12345>"
    assert originate["Variable"] == f"HOTLINE_RETURN_CALL={row['id']},HOTLINE_TICKET_ID={ticket}"
    assert row["state"] == "calling" and row["attempts"] == 1
    assert await calls.place_due_return_calls() == 0                             # no second call meanwhile
    await calls.on_event({"UserEvent": "HotlineReturnCall", "Id": str(row["id"]), "Stage": "failed", "Reason": "5"})
    [row] = await store.return_calls(ticket_id=ticket)
    assert (row["state"], row["last_outcome"], row["next_at"]) == ("pending", "busy", sh(2026, 12, 1, 10))
    clock.now = sh(2026, 12, 1, 10)
    assert await calls.place_due_return_calls() == 1
    await calls.on_event({"UserEvent": "HotlineReturnCall", "Id": str(row["id"]), "Stage": "failed", "Reason": "3"})
    [row] = await store.return_calls(ticket_id=ticket)
    assert (row["state"], row["attempts"], row["last_outcome"]) == ("gave_up", 2, "no_answer")
    await calls.close()


async def test_an_answered_return_call_ends_and_an_interrupted_one_waits_again(store):
    await a_done_ticket(store, sh(2026, 12, 1, 9))
    ami, clock = RecordingAMI(), Clock(sh(2026, 12, 1, 9))
    calls = OutboundCalls(ami, store, SETTINGS, hotline_number="12345", tz=SHANGHAI, clock=clock)
    await calls.place_due_return_calls()
    [row] = await store.return_calls()
    # the gateway stops mid-call: at the next start the try waits again
    await calls.close()
    assert await store.requeue_interrupted_return_calls(at=clock.now) == 1
    calls2 = OutboundCalls(ami, store, SETTINGS, hotline_number="12345", tz=SHANGHAI, clock=clock)
    assert await calls2.place_due_return_calls() == 1
    await calls2.on_event({"UserEvent": "HotlineReturnCall", "Id": str(row["id"]), "Stage": "answered"})
    [row] = await store.return_calls()
    assert (row["state"], row["attempts"]) == ("answered", 2)


async def test_an_ami_failure_is_a_failed_try(store):
    await a_done_ticket(store, sh(2026, 12, 1, 9))
    calls = OutboundCalls(RecordingAMI(fail=True), store, SETTINGS, hotline_number="12345", tz=SHANGHAI,
                          clock=Clock(sh(2026, 12, 1, 9)))
    assert await calls.place_due_return_calls() == 0
    [row] = await store.return_calls()
    assert (row["state"], row["attempts"], row["last_outcome"]) == ("pending", 1, "failed")


async def a_task(store, at) -> int:
    await store.enter_call(call_id="c9", number="+8613800138000", channel="x", at=at)
    rating = await store.open_survey(SurveyKind.INTAKE, call_id="c9", ticket_id=None, number="+8613800138000", at=at)
    return await store.record_rating(rating, 4, at=at, callback_due=date(2026, 12, 3))


async def test_a_call_back_rings_the_agent_first_and_its_end_is_an_attempt(store):
    task = await a_task(store, sh(2026, 12, 1, 9))
    ami = RecordingAMI()
    calls = OutboundCalls(ami, store, SETTINGS, hotline_number="12345", tz=SHANGHAI, clock=Clock(sh(2026, 12, 1, 9)))
    await calls.call_back(task, agent="agent2")
    [originate] = ami.actions
    assert originate["Channel"] == "PJSIP/agent2" and originate["Context"] == "hotline-callback"
    assert originate["Variable"] == f"HOTLINE_CALLBACK_TASK={task},HOTLINE_OUTBOUND_DIAL=PJSIP/13800138000@hotline-outbound"
    with pytest.raises(CallBackError):
        await calls.call_back(task, agent="agent2")                  # already ringing
    await calls.on_event({"UserEvent": "HotlineCallback", "Task": str(task), "Stage": "agent_answered"})
    await calls.on_event({"UserEvent": "HotlineCallback", "Task": str(task), "Stage": "agent_gone"})
    assert await store.callback_attempts(task) == []      # the agent left before the caller was rung
    await calls.call_back(task, agent="agent2")
    await calls.on_event({"UserEvent": "HotlineCallback", "Task": str(task), "Stage": "NOANSWER"})
    assert [(a["agent"], a["outcome"]) for a in await store.callback_attempts(task)] == [("agent2", "no_answer")]
    await calls.call_back(task, agent="agent2")                      # a retry
    await calls.on_event({"UserEvent": "HotlineCallback", "Task": str(task), "Stage": "ANSWER"})
    assert [a["outcome"] for a in await store.callback_attempts(task)] == ["no_answer", "reached"]
    await calls.on_event({"UserEvent": "HotlineCallback", "Task": "junk", "Stage": "ANSWER"})   # ignored
    await store.finish_callback(task, agent="agent2", at=sh(2026, 12, 1, 10))
    with pytest.raises(CallBackError):
        await calls.call_back(task, agent="agent2")                  # done: nothing to call


async def test_a_redo_sends_a_done_ticket_back_to_its_unit(store):
    ticket = await a_done_ticket(store, sh(2026, 12, 1, 9))
    [first] = await store.return_calls(ticket_id=ticket)
    assert await store.start_return_call(first["id"], at=sh(2026, 12, 1, 10))
    await store.end_return_call(first["id"], state="answered", outcome="answered", at=sh(2026, 12, 1, 10))
    rating = await store.open_survey(SurveyKind.HANDLING, call_id="rc1", ticket_id=ticket, number="+8613800138000",
                                     at=sh(2026, 12, 1, 10))
    task = await store.record_rating(rating, 5, at=sh(2026, 12, 1, 10), callback_due=date(2026, 12, 3))
    await store.finish_callback(task, agent="agent1", at=sh(2026, 12, 2, 9), redo=True)
    handling = await store.ticket_handling(ticket)
    assert handling.status == "transferred" and handling.unit == "市住建局" and handling.due > date(2026, 12, 2)
    log = await store.ticket_status_log(ticket)
    assert log[-1]["source"] == "redo"
    # done again after the redo: a new return call, whose rating is the one that counts
    await store.report_ticket_status(ticket, "done", at=sh(2026, 12, 3, 9), source="test")
    assert len(await store.return_calls(ticket_id=ticket)) == 2
