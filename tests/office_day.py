"""One known day of calls, written through the store's own methods as the call flow and the AMI queue events write
them (for the office report's tests): every figure of the report is known in advance (``EXPECTED``)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from ivr.survey import SurveyKind

DAY = date(2026, 12, 1)
T9 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
RESTRICTED = "+8613900001111"
NUISANCE = "+8613700005555"

# What the report must show for DAY (see fill_day).
EXPECTED = {"offered": 10, "answered": 4, "abandoned_ivr": 2, "abandoned_queue": 1, "refused": 1,
            "system_faults": 1, "untracked": 1, "connection_rate": 57.14, "timely_rate": 66.67, "wait_avg": 15.7,
            "wait_p90": 30.0, "answered_wait_unknown": 1, "abandon_wait_avg": 40.0}


async def _call(store: Store, n: int, at: datetime, number: str = "+8613800138000") -> str:
    call_id = f"1764{n:06d}.{n}"
    await store.enter_call(call_id=call_id, number=number, channel=f"PJSIP/trunk-{n}", at=at)
    return call_id


async def _queued(store: Store, call_id: str, at: datetime, request_type: str = "complaint") -> str:
    return await store.queue_call(call_id, ivr_path=["3"], request_type=request_type, emergency=None, priority=0,
                                  ticket_query=None, ticket_type=request_type, due=date(2026, 12, 8), at=at)


async def fill_day(store: Store) -> None:
    """Ten calls on DAY (four answered with waits 2, 15 and 30 s and one unknown; two menu and one queue abandon;
    one refused; one system fault; one never reported), surveys, hand-offs, call-backs, pre-filled tickets; and
    calls on the day before and after that the report must not count."""
    await store.add_restriction(RESTRICTED, reason="辱骂话务员", operator="lead1", days=30, decided_at=T9 - timedelta(days=2))
    answered = []
    for n, wait in ((1, 2.0), (2, 15.0), (3, 30.0)):
        at = T9 + timedelta(minutes=n)
        call_id = await _call(store, n, at)
        ticket = await _queued(store, call_id, at + timedelta(seconds=5), "complaint" if n < 3 else "help")
        await store.update_call(call_id, outcome="queued", queued_at=at + timedelta(seconds=10))
        await store.update_call(call_id, outcome="answered", answered_at=at + timedelta(seconds=10 + wait),
                                agent="agent1")
        await store.update_call(call_id, ended_at=at + timedelta(minutes=3))
        answered.append((call_id, ticket))
    # answered, but its queue join was never recorded (the gateway restarted meanwhile)
    unknown = await _call(store, 4, T9 + timedelta(hours=5))
    await store.update_call(unknown, outcome="answered", answered_at=T9 + timedelta(hours=5, seconds=20))
    # hung up in the menu: one silent (no key), one after pressing 1
    silent = await _call(store, 5, T9 + timedelta(hours=1), NUISANCE)
    await store.update_call(silent, outcome="abandoned", ended_at=T9 + timedelta(hours=1, seconds=6))
    # an incident announcement the caller of call 6 heard before hanging up: a call it answered (art. 18)
    notice = await store.add_announcement(text="赤坎区今日停水至十八时", prompt="announce-test",
                                          starts_at=T9, until=T9 + timedelta(hours=12), created_by="lead1",
                                          at=T9)
    pressed = await _call(store, 6, T9 + timedelta(hours=1, minutes=1))
    await store.mark_call_announcement(pressed, notice.id)
    # the day before, the nuisance number hung up after an announcement: not a silent call (the review window
    # holds it, the day's figures do not)
    informed = await _call(store, 13, T9 - timedelta(days=1), NUISANCE)
    await store.mark_call_announcement(informed, notice.id)
    await store.update_call(informed, outcome="abandoned", ended_at=T9 - timedelta(days=1) + timedelta(seconds=30))
    await store.update_call(pressed, outcome="abandoned", ivr_path=["1"],
                            ended_at=T9 + timedelta(hours=1, minutes=1, seconds=8))
    # gave up after 40 s in the queue
    waited = await _call(store, 7, T9 + timedelta(hours=2))
    await _queued(store, waited, T9 + timedelta(hours=2, seconds=5), "consultation")
    await store.update_call(waited, outcome="queued", queued_at=T9 + timedelta(hours=2, seconds=10))
    await store.update_call(waited, outcome="abandoned", ended_at=T9 + timedelta(hours=2, seconds=50))
    # refused under art. 9
    await _call(store, 8, T9 + timedelta(hours=3), RESTRICTED)
    # a gateway fault, no queue event after it
    fault = await _call(store, 9, T9 + timedelta(hours=4))
    await store.update_call(fault, outcome="failed")
    # handed to the queue, never heard of again
    lost = await _call(store, 10, T9 + timedelta(hours=6))
    await _queued(store, lost, T9 + timedelta(hours=6, seconds=5), "report")
    # the days around: not counted
    await _call(store, 11, datetime(2026, 11, 30, 23, 59, 59, tzinfo=SHANGHAI))
    await _call(store, 12, datetime(2026, 12, 2, 0, 0, tzinfo=SHANGHAI))
    await _fill_after_call(store, answered)


async def _fill_after_call(store: Store, answered: list[tuple[str, str]]) -> None:
    (c1, t1), (c2, t2), (c3, t3) = answered
    # pre-fill: t1 kept as filled, t2 the agent changed the category, t3 never pre-filled
    await store.update_ticket_draft(t1, category="噪音", unit="市生态环境局",
                                    prefilled={"type": "complaint", "category": "噪音", "unit": "市生态环境局"})
    await store.update_ticket_draft(t2, category="交通", prefilled={"type": "complaint", "category": "噪音"})
    for ticket in (t1, t2, t3):
        await store.update_ticket_draft(ticket, status="saved", agent="agent1")
    # surveys: intake rated 1, 4 and not rated
    for (call_id, ticket), rating in zip(answered, (1, 4, None)):
        survey = await store.open_survey(SurveyKind.INTAKE, call_id=call_id, ticket_id=ticket,
                                         number="+8613800138000", at=T9 + timedelta(minutes=10))
        if rating is not None:
            await store.record_rating(survey, rating, at=T9 + timedelta(minutes=10), callback_due=DAY)
    # hand-offs: 110 answered after 4 s, 119 unanswered and fallen back to the agents
    h1 = await store.add_handoff(call_id=c1, centre="110", trigger="menu", mode="blind", requested_at=T9)
    await store.update_handoff(h1, answered_at=T9 + timedelta(seconds=4), result="answered")
    h2 = await store.add_handoff(call_id=c2, centre="119", trigger="speech", mode="blind", requested_at=T9)
    await store.update_handoff(h2, result="fallback_queue")
    # the call-back the rating 4 made is due on DAY and done the same evening
    task = next(t for t in await store.callback_tasks() if t["call_id"] == c2)
    await store.finish_callback(task["id"], agent="agent1", at=datetime(2026, 12, 1, 20, 0, tzinfo=SHANGHAI))
