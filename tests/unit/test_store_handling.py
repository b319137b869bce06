"""The store's side of the units' handling of tickets: where a ticket stands, the log, refusals write nothing."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.workorder.lifecycle import TransitionRefused, UnknownStatus
from ivr.triage.deadline import calendar_from

CAL = calendar_from(holidays=[date(2026, 12, 2)])


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)



async def a_complaint(store) -> str:
    ticket = await store.create_ticket_draft(call_id="c1", request_type="complaint", created_at=sh(2026, 11, 30, 9))
    return ticket


async def test_a_draft_is_received_until_the_work_order_system_reports_on_it(store):
    ticket = await a_complaint(store)
    handling = await store.ticket_handling(ticket)
    assert handling.status == "received" and handling.request_type == "complaint" and handling.unit is None
    assert await store.ticket_handling("20261130999") is None


async def test_reports_move_the_ticket_and_each_is_logged(store):
    ticket = await a_complaint(store)
    sent = await store.report_ticket_status(ticket, "transferred", unit="市住建局", at=sh(2026, 11, 30, 10),
                                            source="api", calendar=CAL)
    assert sent.due == date(2026, 12, 22) and sent.unit_received == date(2026, 11, 30)
    extended = await store.report_ticket_status(ticket, "extended", at=sh(2026, 12, 15, 10), source="cli",
                                                reason="涉及多个部门", calendar=CAL)
    assert extended.extensions == 1 and extended.due > sent.due
    assert await store.ticket_handling(ticket) == extended
    assert (await store.ticket_status(ticket))["status"] == "extended"     # what the progress query reads
    log = await store.ticket_status_log(ticket)
    assert [(e["status"], e["source"], e["reason"]) for e in log] == [
        ("transferred", "api", None), ("extended", "cli", "涉及多个部门")]
    assert log[1]["due"] == extended.due


async def test_a_refused_report_writes_nothing(store):
    ticket = await a_complaint(store)
    with pytest.raises(TransitionRefused):
        await store.report_ticket_status(ticket, "done", at=sh(2026, 11, 30, 10), source="api", calendar=CAL)
    with pytest.raises(UnknownStatus):
        await store.report_ticket_status(ticket, "lost", at=sh(2026, 11, 30, 10), source="api", calendar=CAL)
    with pytest.raises(LookupError):
        await store.report_ticket_status("20261130999", "received", at=sh(2026, 11, 30, 10), source="api")
    assert await store.ticket_status_log(ticket) == []
    assert (await store.ticket_handling(ticket)).status == "received"


async def test_the_status_log_is_append_only(store):
    ticket = await a_complaint(store)
    await store.report_ticket_status(ticket, "transferred", unit="A区", at=sh(2026, 11, 30, 10), source="api",
                                     calendar=CAL)
    with pytest.raises(Exception, match="append-only"):
        async with store._write() as db:
            await db.execute("UPDATE ticket_status_log SET status = 'done'")
