"""An office's store with a row in every table, written through the store's own methods (for the copy tests)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from ivr.survey import SurveyKind

T0 = datetime(2026, 11, 30, 9, tzinfo=SHANGHAI)
CALLER = "+8613800138000"


async def fill_office(store: Store, calls: int = 3) -> dict[str, int]:
    """``calls`` answered calls with their whole after-life, plus one restricted caller; what was written."""
    await store.add_restriction("+8613900001111", reason="辱骂话务员", operator="lead1", days=30, decided_at=T0)
    await store.enter_call(call_id="blocked-1", number="+8613900001111", channel="PJSIP/t-1", at=T0)
    await store.lift_restriction("+8613900001111", operator="lead1", reason="申诉成立", at=T0 + timedelta(days=1))
    pending = await store.add_pending_restriction(number="+8613700002222", reason="威胁", requested_by="agent1",
                                                  call_id=None, at=T0)
    await store.reject_pending_restriction(pending, operator="lead1", reason="证据不足", at=T0 + timedelta(hours=1))
    for n in range(calls):
        call, at = f"1764{n:06d}.{n}", T0 + timedelta(minutes=5 * n)
        await store.enter_call(call_id=call, number=CALLER, channel=f"PJSIP/trunk-{n}", at=at)
        ticket = await store.queue_call(call, ivr_path=["3"], request_type="complaint", emergency=None, priority=2,
                                        ticket_query=None, ticket_type="complaint", due=date(2026, 12, 8), at=at)
        await store.update_call(call, outcome="answered", answered_at=at + timedelta(seconds=9), agent="agent1")
        await store.update_ticket_draft(ticket, at=at, category="噪音", unit="市生态环境局", address="赤坎区人民大道",
                                        summary="夜间施工噪音", transcript="晚上十点以后还在施工")
        await store.record_screenpop(message_id=f"pop-{n}", agent="agent1", call_id=call, ticket_id=ticket,
                                     reason=None, at=at)
        await store.outbox_add("hotline/agents/agent1/screenpop", {"ticket": ticket, "n": n},
                               message_id=f"pop-{n}", at=at)
        await store.assign_ticket(ticket, agent="agent2", source="supervisor", assigned_by="lead1", at=at)
        await store.audit_ticket_access(viewer="lead1", role="supervisor", action="read", ticket_id=ticket,
                                        basis="supervisor", at=at)
        await store.add_ticket(ticket, status="received", at=at, call_id=call)
        await store.report_ticket_status(ticket, "transferred", unit="市生态环境局", at=at, source="api")
        await store.report_ticket_status(ticket, "done", at=at + timedelta(days=2), source="api")
        handoff = await store.add_handoff(call_id=call, centre="110", trigger="speech", mode="blind",
                                          requested_at=at, situation="打架")
        await store.update_handoff(handoff, answered_at=at + timedelta(seconds=4), result="answered")
        await store.add_push(push_id=f"push-{n}", centre="110", adapter="http", at=at, handoff_id=handoff,
                             call_id=call)
        survey = await store.open_survey(SurveyKind.INTAKE, call_id=call, ticket_id=ticket, number=CALLER,
                                         at=at + timedelta(minutes=3))
        task = await store.record_rating(survey, 4, at=at + timedelta(minutes=3), callback_due=date(2026, 12, 3))
        await store.record_callback_attempt(task, agent="agent1", outcome="reached", at=at + timedelta(hours=2))
        await store.finish_callback(task, agent="agent1", at=at + timedelta(hours=2), note="已解释", redo=True)
        await store.file_call_recording(call_id=call, path=f"/var/rec/{call}.ogg", format="ogg", duration_s=61.5,
                                        size=123_456, sha256="ab" * 32, state="converted", note=None,
                                        recorded_at=at + timedelta(minutes=2))
        await store.audit_recording_access(call_id=call, viewer="agent3", role="agent", action="play", allowed=False,
                                           at=at + timedelta(hours=3))
    announcement = await store.add_announcement(text="赤坎区停水通知", prompt="announce_0123456789abcdef",
                                                starts_at=T0, until=T0 + timedelta(days=1), created_by="lead1", at=T0)
    await store.mark_call_announcement("1764000000.0", announcement.id)
    await store.remove_announcement(announcement.id, by="lead1", at=T0 + timedelta(hours=6))
    async with store._write() as db:  # the rows of version 11 that no store method writes yet
        await db.execute("INSERT INTO export_cursors (name, position, updated_at) VALUES (?, ?, ?)",
                         ("province", "2026-12-01T00:00:00.000000+00:00", "2026-12-01T00:00:00.000000+00:00"))
    return {"calls": calls + 1}
