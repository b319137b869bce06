"""The units' handling of tickets (gateway.workorder.lifecycle) in the store: where each ticket stands, and the
append-only log of what the work-order system reported."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from gateway.store.rows import DRAFT_PUBLIC_STATUS, check_text, from_ts, to_ts
from gateway.store.return_calls import schedule_return_call
from gateway.workorder.lifecycle import CLOSED, DONE, Handling, next_handling
from ivr.triage.deadline import DEFAULT_CALENDAR, WorkingDayCalendar, receipt_date

__all__ = ["HandlingMixin", "reopen_for_redo"]

_COLUMNS = "status, request_type, unit, unit_received, due, extensions"


class HandlingMixin:
    """Ticket handling methods of `Store`; needs its `_db` and `_write()`."""

    async def ticket_handling(self, ticket_no: str) -> Handling | None:
        """Where the ticket stands; a draft nobody has reported on yet is "received"; None if no such ticket."""
        return await _handling(self._db, ticket_no)

    async def report_ticket_status(self, ticket_no: str, status: str, *, at: datetime, source: str,
                                   unit: str | None = None, reason: str | None = None,
                                   calendar: WorkingDayCalendar = DEFAULT_CALENDAR) -> Handling:
        """Apply one report of the work-order system and log it, in one transaction.

        LookupError for a ticket the hotline never made; UnknownStatus / TransitionRefused (ValueErrors) from the
        life cycle for a report the rules do not allow, and then nothing is written."""
        source = check_text(source, "source")
        async with self._write(durable=True) as db:
            current = await _handling(db, ticket_no)
            if current is None:
                raise LookupError(f"no ticket {ticket_no!r}")
            reported = await _reported(db, ticket_no)
            after = next_handling(current if reported else None, status, on=receipt_date(at), unit=unit,
                                  request_type=current.request_type, calendar=calendar)
            await _write_handling(db, ticket_no, after, at=at, source=source, reason=reason)
            if after.status == DONE:
                # 一事一评: the caller is asked how the unit handled it, by an automated return call
                await schedule_return_call(db, ticket_no, at=at)
        return after

    async def ticket_status_log(self, ticket_no: str) -> list[dict[str, Any]]:
        """Every report on the ticket, oldest first."""
        rows = await self._db.execute_fetchall(
            "SELECT status, unit, due, at, source, reason FROM ticket_status_log WHERE ticket_no = ? ORDER BY id",
            (ticket_no,))
        return [{**dict(row), "at": from_ts(row["at"]), "due": _date(row["due"])} for row in rows]


async def reopen_for_redo(db: Any, ticket_no: str, *, at: datetime,
                          calendar: WorkingDayCalendar = DEFAULT_CALENDAR) -> Handling | None:
    """Inside a transaction: a done (or closed) ticket goes back to its unit to be handled again, with a new due
    date, logged with source "redo" (art. 15: once per ticket; the caller of this keeps count). None if the
    ticket is not done yet (it is still being handled: nothing to reopen)."""
    current = await _handling(db, ticket_no)
    if current is None or current.status not in {DONE, CLOSED}:
        return None
    after = next_handling(replace(current, status="received"), "transferred", on=receipt_date(at), unit=current.unit,
                          request_type=current.request_type, calendar=calendar)
    await _write_handling(db, ticket_no, after, at=at, source="redo", reason="dissatisfied caller: handled again")
    return after


async def _write_handling(db: Any, ticket_no: str, after: Handling, *, at: datetime, source: str,
                      reason: str | None) -> None:
    await db.execute(
        "INSERT INTO tickets (ticket_no, status, updated_at, request_type, unit, unit_received, due,"
        " extensions) VALUES (:no, :status, :at, :type, :unit, :received, :due, :extensions)"
        " ON CONFLICT (ticket_no) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,"
        " request_type = excluded.request_type, unit = excluded.unit,"
        " unit_received = excluded.unit_received, due = excluded.due, extensions = excluded.extensions",
        {"no": ticket_no, "status": after.status, "at": to_ts(at), "type": after.request_type,
         "unit": after.unit, "received": _day(after.unit_received), "due": _day(after.due),
         "extensions": after.extensions})
    await db.execute(
        "INSERT INTO ticket_status_log (ticket_no, status, unit, due, at, source, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ticket_no, after.status, after.unit, _day(after.due), to_ts(at), source, reason))


async def _reported(db: Any, ticket_no: str) -> bool:
    rows = await db.execute_fetchall("SELECT 1 FROM ticket_status_log WHERE ticket_no = ? LIMIT 1", (ticket_no,))
    return bool(rows)


async def _handling(db: Any, ticket_no: str) -> Handling | None:
    rows = await db.execute_fetchall(f"SELECT {_COLUMNS} FROM tickets WHERE ticket_no = ?", (ticket_no,))
    draft = await db.execute_fetchall("SELECT type FROM ticket_drafts WHERE ticket_id = ?", (ticket_no,))
    request_type = draft[0]["type"] if draft else None
    if rows:
        row = rows[0]
        return Handling(status=row["status"], request_type=row["request_type"] or request_type, unit=row["unit"],
                        unit_received=_date(row["unit_received"]), due=_date(row["due"]),
                        extensions=int(row["extensions"] or 0))
    if draft:
        return Handling(status=DRAFT_PUBLIC_STATUS, request_type=request_type)
    return None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
