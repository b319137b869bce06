"""Ticket drafts, ticket status, caller history (screen-pop) and pending restriction requests: a mixin of `Store`.

The methods rely on what `Store` provides: `self._db` (for reads) and `self._write()` (one transaction, for writes).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any


from gateway.store.backends.connection import StoreConnection
from gateway.basics.phone import normalise_strict
from gateway.basics.clock import SHANGHAI
from gateway.restriction import Restriction, check_aware, check_days, effective
from gateway.store.rows import (
    PENDING_COLUMNS,
    RESTRICTION_COLUMNS,
    TICKET_COLUMNS,
    DRAFT_PUBLIC_STATUS,
    from_ts,
    insert_restriction,
    lookup_key,
    pending_from_row,
    restriction_from_row,
    check_text,
    ticket_from_row,
    check_ticket_field,
    new_public_id,
    to_ts,
)

# Calls and tickets a screen-pop lists of a caller's history; the totals say how many more there were.
HISTORY_LIMIT = 20


class TicketsMixin:
    """Ticket, caller-history and pending-restriction methods of `Store`; needs its `_db` and `_write()`."""

    # -- tickets ----------------------------------------------------------------------------------------------

    async def ticket_status(self, ticket_no: str) -> dict | None:
        """What the IVR progress query announces: the status, unit and due date the work-order system reported,
        else 'received' for a draft nobody has reported on."""
        rows = await self._db.execute_fetchall(
            "SELECT ticket_no, status, updated_at, unit, due FROM tickets WHERE ticket_no = ?", (ticket_no,)
        )
        if rows:
            row = rows[0]
            return {**dict(row), "updated_at": from_ts(row["updated_at"]),
                    "due": date.fromisoformat(row["due"]) if row["due"] else None}
        rows = await self._db.execute_fetchall(
            "SELECT ticket_id, updated_at FROM ticket_drafts WHERE ticket_id = ?", (ticket_no,)
        )
        if not rows:
            return None
        return {"ticket_no": rows[0]["ticket_id"], "status": DRAFT_PUBLIC_STATUS,
                "updated_at": from_ts(rows[0]["updated_at"]), "unit": None, "due": None}

    async def create_ticket_draft(self, *, call_id: str, request_type: str | None, created_at: datetime) -> str:
        """A new draft; its id is the local date and that day's sequence number: "2026112700042"."""
        request_type = check_ticket_field("type", request_type)
        async with self._write() as db:
            return await insert_ticket_draft(db, call_id=call_id, request_type=request_type, created_at=created_at)

    async def update_ticket_draft(self, ticket_id: str, *, at: datetime | None = None, **fields: Any) -> None:
        """Set fields of a draft (see TICKET_FIELDS); unknown field or ticket -> ValueError / LookupError."""
        values = {name: check_ticket_field(name, value) for name, value in fields.items()}
        values["updated_at"] = to_ts(at or datetime.now(UTC))
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        async with self._write() as db:
            cursor = await db.execute(
                f"UPDATE ticket_drafts SET {assignments} WHERE ticket_id = :ticket_id", {**values, "ticket_id": ticket_id}
            )
            if cursor.rowcount == 0:
                raise LookupError(f"no ticket draft {ticket_id!r}")

    async def get_ticket_draft(self, ticket_id: str) -> dict | None:
        rows = await self._db.execute_fetchall(
            f"SELECT {TICKET_COLUMNS} FROM ticket_drafts WHERE ticket_id = ?", (ticket_id,)
        )
        return ticket_from_row(rows[0]) if rows else None

    async def saved_tickets_with_transcripts(self) -> list[dict]:
        """Tickets agents saved that have a transcript: what the agent kept are the labels to train on."""
        rows = await self._db.execute_fetchall(
            f"SELECT {TICKET_COLUMNS} FROM ticket_drafts WHERE status = 'saved' AND transcript IS NOT NULL"
            " AND transcript != '' ORDER BY created_at, ticket_id")
        return [ticket_from_row(row) for row in rows]

    async def ticket_draft_for_call(self, call_id: str) -> dict | None:
        """The call's latest draft."""
        rows = await self._db.execute_fetchall(
            f"SELECT {TICKET_COLUMNS} FROM ticket_drafts WHERE call_id = ? ORDER BY created_at DESC, ticket_id DESC"
            " LIMIT 1",
            (call_id,),
        )
        return ticket_from_row(rows[0]) if rows else None

    async def add_ticket(self, ticket_no: str, *, status: str, at: datetime, call_id: str | None = None) -> None:
        """Insert, or record a new status for an existing ticket."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO tickets (ticket_no, status, updated_at, call_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (ticket_no) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,"
                " call_id = COALESCE(excluded.call_id, tickets.call_id)",
                (check_text(ticket_no, "ticket_no"), check_text(status, "status"), to_ts(at), call_id),
            )

    # -- caller history (screen-pop) --------------------------------------------------------------------------

    async def caller_history(self, number_e164: str | None, *, now: datetime, days: int = 90,
                             limit: int = HISTORY_LIMIT) -> dict:
        """What an agent should know about a caller: the ``limit`` most recent calls and tickets of the last
        ``days`` with how many there were in all, and every restriction decision.

        Bounded because a number that calls all day (the callers the 30-day restriction is for) would otherwise
        put thousands of rows in every screen-pop, and build them on the event loop."""
        key = lookup_key(number_e164) if number_e164 else None
        if key is None:
            return {"calls": [], "tickets": [], "restrictions": [], "calls_total": 0, "tickets_total": 0}
        since, until = to_ts(now - timedelta(days=days)), to_ts(now)
        calls_where = "FROM calls WHERE number = :n AND started_at >= :since AND started_at <= :until"
        tickets_where = (
            "FROM ticket_drafts WHERE created_at >= :since AND created_at <= :until AND (callback_number = :n"
            "   OR call_id IN (SELECT call_id FROM calls WHERE number = :n AND started_at >= :since))")
        bind = {"n": key, "since": since, "until": until, "limit": limit}
        calls = await self._db.execute_fetchall(
            f"SELECT call_id, started_at, request_type, outcome {calls_where} ORDER BY started_at DESC LIMIT :limit",
            bind)
        tickets = await self._db.execute_fetchall(
            f"SELECT ticket_id AS id, type, category, status, created_at {tickets_where}"
            " ORDER BY created_at DESC, ticket_id DESC LIMIT :limit", bind)
        calls_total = len(calls) if len(calls) < limit else await self._count(calls_where, bind)
        tickets_total = len(tickets) if len(tickets) < limit else await self._count(tickets_where, bind)
        decisions = [restriction_from_row(row) for row in await self._db.execute_fetchall(
            f"SELECT {RESTRICTION_COLUMNS} FROM restrictions WHERE number = ? ORDER BY decided_at DESC, id DESC",
            (key,),
        )]
        in_force = effective(decisions, now)
        return {
            "calls": [{**dict(row), "started_at": from_ts(row["started_at"])} for row in calls],
            "tickets": [{**dict(row), "created_at": from_ts(row["created_at"])} for row in tickets],
            "calls_total": calls_total,
            "tickets_total": tickets_total,
            "restrictions": [
                {"id": r.id, "reason": r.reason, "operator": r.operator, "decided_at": r.decided_at,
                 "until": r.until, "lifted_at": r.lifted_at, "lifted_by": r.lifted_by, "lift_reason": r.lift_reason,
                 "active": in_force is not None and in_force.id == r.id}
                for r in decisions
            ],
        }

    async def _count(self, from_where: str, bind: dict[str, Any]) -> int:
        rows = await self._db.execute_fetchall(f"SELECT COUNT(*) {from_where}", bind)
        return int(rows[0][0])

    # -- pending restrictions (art. 9: an agent asks, a supervisor decides) -----------------------------------

    async def add_pending_restriction(
        self, *, number: str, reason: str, requested_by: str, call_id: str | None, at: datetime
    ) -> int:
        number = normalise_strict(number)
        async with self._write(durable=True) as db:
            inserted = await db.execute_fetchall(
                "INSERT INTO pending_restrictions (number, reason, requested_by, call_id, requested_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (number, check_text(reason, "reason"), check_text(requested_by, "requested_by"), call_id, to_ts(at)),
            )
        return int(inserted[0][0])

    async def list_pending_restrictions(self, *, include_decided: bool = False) -> list[dict]:
        """Oldest request first."""
        where = "" if include_decided else " WHERE status = 'pending'"
        rows = await self._db.execute_fetchall(
            f"SELECT {PENDING_COLUMNS} FROM pending_restrictions{where} ORDER BY requested_at, id"
        )
        return [pending_from_row(row) for row in rows]

    async def get_pending_restriction(self, pending_id: int) -> dict | None:
        rows = await self._db.execute_fetchall(
            f"SELECT {PENDING_COLUMNS} FROM pending_restrictions WHERE id = ?", (pending_id,)
        )
        return pending_from_row(rows[0]) if rows else None

    async def confirm_pending_restriction(
        self, pending_id: int, *, operator: str, at: datetime, days: int
    ) -> Restriction:
        """The supervisor's confirmation: the restriction and its audit entry, in one transaction with the
        request's decision. Unknown id -> LookupError; already decided -> ValueError."""
        operator = check_text(operator, "operator")
        check_days(days)
        async with self._write(durable=True) as db:
            request = await _undecided(db, pending_id)
            reason = f"{request['reason']} (requested by {request['requested_by']}"
            reason += f", call {request['call_id']})" if request["call_id"] else ")"
            restriction = await insert_restriction(db, request["number"], reason=reason, operator=operator,
                                                    days=days, decided_at=at)
            await db.execute(
                "UPDATE pending_restrictions SET status = 'confirmed', decided_by = ?, decided_at = ?,"
                " restriction_id = ? WHERE id = ?",
                (operator, to_ts(at), restriction.id, pending_id),
            )
        return restriction

    async def reject_pending_restriction(self, pending_id: int, *, operator: str, reason: str, at: datetime) -> None:
        operator, reason = check_text(operator, "operator"), check_text(reason, "reason")
        async with self._write(durable=True) as db:
            await _undecided(db, pending_id)
            await db.execute(
                "UPDATE pending_restrictions SET status = 'rejected', decided_by = ?, decided_at = ?,"
                " decision_reason = ? WHERE id = ?",
                (operator, to_ts(at), reason, pending_id),
            )


async def _undecided(db: StoreConnection, pending_id: int) -> dict:
    rows = await db.execute_fetchall(f"SELECT {PENDING_COLUMNS} FROM pending_restrictions WHERE id = ?", (pending_id,))
    if not rows:
        raise LookupError(f"no pending restriction request {pending_id}")
    request = pending_from_row(rows[0])
    if request["status"] != "pending":
        raise ValueError(f"restriction request {pending_id} was already {request['status']} "
                         f"by {request['decided_by']}")
    return request


async def insert_ticket_draft(db: StoreConnection, *, call_id: str, request_type: str | None,
                              created_at: datetime, emergency: str | None = None, due: Any = None) -> str:
    """A new draft inside the caller's transaction; its id is the local date and that day's sequence number
    ("2026112700042"), its public id (the console's name for it) 128 random bits. Fields must have been checked
    (``check_ticket_field``)."""
    day = check_aware(created_at, "created_at").astimezone(SHANGHAI).date().strftime("%Y%m%d")
    rows = await db.execute_fetchall(
        "INSERT INTO ticket_sequences (day, last) VALUES (?, 1)"
        " ON CONFLICT (day) DO UPDATE SET last = ticket_sequences.last + 1 RETURNING last",
        (day,),
    )
    ticket_id = f"{day}{rows[0][0]:05d}"
    await db.execute(
        "INSERT INTO ticket_drafts (ticket_id, public_id, call_id, type, emergency, due, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (ticket_id, new_public_id(), check_text(call_id, "call_id"), request_type, emergency, due,
         to_ts(created_at), to_ts(created_at)),
    )
    return ticket_id
