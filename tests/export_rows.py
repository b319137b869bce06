"""Calls, tickets and restriction decisions written through the store's own methods, for the export tests."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store

T0 = datetime(2026, 11, 30, 9, tzinfo=SHANGHAI)
CALLER = "+8613800138000"


async def answered_call(store: Store, call_id: str, at: datetime, *, number: str | None = CALLER,
                        talk_s: float = 60, saved: bool = True, ended: bool = True) -> str:
    """A call that went through the menu (3, complaint), was answered by agent1 9 s later and (``ended``) ended
    after ``talk_s``; its ticket (``saved`` by the agent as the call ended). The ticket number."""
    await store.enter_call(call_id=call_id, number=number, channel=f"PJSIP/trunk-{call_id}", at=at)
    ticket = await store.queue_call(call_id, ivr_path=["3"], request_type="complaint", emergency=None, priority=2,
                                    ticket_query=None, ticket_type="complaint", due=date(2026, 12, 8), at=at)
    await store.update_call(call_id, outcome="answered", queued_at=at, answered_at=at + timedelta(seconds=9),
                            agent="agent1")
    end = at + timedelta(seconds=9 + talk_s)
    if ended:
        await store.update_call(call_id, ended_at=end)
    if saved:
        await store.update_ticket_draft(ticket, at=end, status="saved", category="噪音", unit="市生态环境局",
                                        address="赤坎区人民大道8号", callback_number="13900001111",
                                        summary="夜间施工噪音，回电13900001111",
                                        transcript="晚上十点以后还在施工 我的电话是13800138000")
    return ticket


async def abandoned_call(store: Store, call_id: str, at: datetime) -> str:
    """A caller who hung up in the queue after 20 s: the ticket draft nobody will save."""
    await store.enter_call(call_id=call_id, number=CALLER, channel=f"PJSIP/trunk-{call_id}", at=at)
    ticket = await store.queue_call(call_id, ivr_path=["1"], request_type="consultation", emergency=None,
                                    priority=3, ticket_query=None, ticket_type="consultation", due=None, at=at)
    await store.update_call(call_id, outcome="abandoned", queued_at=at, ended_at=at + timedelta(seconds=20))
    return ticket


async def restriction_decided_and_lifted(store: Store, at: datetime, number: str = "+8613700002222") -> None:
    await store.add_restriction(number, reason="辱骂话务员，来电13700002222", operator="lead1", days=30, decided_at=at)
    await store.lift_restriction(number, operator="lead1", reason="申诉成立", at=at + timedelta(hours=1))
