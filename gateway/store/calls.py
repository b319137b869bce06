"""Call records in the store: the call entry and queueing of the FastAGI call flow, and the updates AMI queue
events make. Each step of a call is one transaction."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from gateway.restriction import Restriction
from gateway.store.rows import (
    CALL_COLUMNS,
    call_from_row,
    check_call_field,
    check_text,
    check_ticket_field,
    from_ts,
    lookup_key,
    restriction_in_force,
    to_ts,
)
from gateway.store.tickets import insert_ticket_draft


class CallsMixin:
    """Call-record methods of `Store`; needs its `_db` and `_write()`."""

    async def enter_call(self, *, call_id: str, number: str | None, channel: str,
                         at: datetime) -> Restriction | None:
        """Call entry in one transaction: open the call and answer the restriction question (Zhanjiang 12345
        rules, art. 9). ``number`` is the caller's E.164 number as normalised at entry, or None (anonymous).

        Returns the restriction in force, after recording the refused attempt and closing the call as
        "blocked" (recorded before the announcement, so a caller who hangs up during it is still on record);
        None for a caller who may go on. Idempotent like ``open_call``.
        """
        call_id = check_text(call_id, "call_id")
        async with self._write() as db:
            await _open_call(db, call_id, number, channel, at)
            restriction = await restriction_in_force(db, number, at) if number else None
            if restriction is not None:
                await db.execute(
                    "INSERT INTO blocked_attempts (call_id, number, restriction_id, at) VALUES (?, ?, ?, ?)",
                    (call_id, number, restriction.id, to_ts(at)),
                )
                await db.execute("UPDATE calls SET outcome = 'blocked', ended_at = ? WHERE call_id = ?",
                                 (to_ts(at), call_id))
        return restriction

    async def queue_call(self, call_id: str, *, ivr_path: list[str], request_type: str, emergency: str | None,
                         priority: int, ticket_query: str | None, ticket_type: str | None, due: date | None,
                         at: datetime) -> str:
        """Queueing in one transaction: the IVR's outcome on the call and its ticket draft (type, emergency, due
        date), so the ticket exists before an agent answers (art. 10, 11). Returns the ticket id."""
        call_id = check_text(call_id, "call_id")
        values = {name: check_call_field(name, value) for name, value in (
            ("ivr_path", ivr_path), ("request_type", request_type), ("emergency", emergency),
            ("priority", priority), ("ticket_query", ticket_query), ("outcome", "ivr"))}
        draft = {name: check_ticket_field(name, value) for name, value in (
            ("type", ticket_type), ("emergency", emergency), ("due", due))}
        async with self._write() as db:
            await _update_call(db, call_id, values)
            return await insert_ticket_draft(db, call_id=call_id, request_type=draft["type"], created_at=at,
                                             emergency=draft["emergency"], due=draft["due"])

    async def blocked_attempts(self, number: str | None = None) -> list[dict]:
        sql = "SELECT id, call_id, number, restriction_id, at FROM blocked_attempts"
        params: tuple = ()
        if number is not None:
            sql += " WHERE number = ?"
            params = (lookup_key(number),)
        rows = await self._db.execute_fetchall(sql + " ORDER BY at, id", params)
        return [{**dict(row), "at": from_ts(row["at"])} for row in rows]

    async def open_call(self, *, call_id: str, number: str | None, channel: str, started_at: datetime) -> None:
        """Idempotent: a repeat keeps the first values; a row created early by update_call gets them filled in."""
        async with self._write() as db:
            await _open_call(db, check_text(call_id, "call_id"), number, channel, started_at)

    async def update_call(self, call_id: str, **fields: Any) -> None:
        values = {name: check_call_field(name, value) for name, value in fields.items()}
        async with self._write() as db:
            await _update_call(db, check_text(call_id, "call_id"), values)

    async def get_call(self, call_id: str) -> dict | None:
        rows = await self._db.execute_fetchall(f"SELECT {CALL_COLUMNS} FROM calls WHERE call_id = ?", (call_id,))
        return call_from_row(rows[0]) if rows else None

    async def list_calls(self, *, limit: int = 50) -> list[dict]:
        rows = await self._db.execute_fetchall(
            f"SELECT {CALL_COLUMNS} FROM calls ORDER BY started_at DESC, call_id DESC LIMIT ?", (max(0, limit),)
        )
        return [call_from_row(row) for row in rows]


async def _open_call(db: Any, call_id: str, number: str | None, channel: str, started_at: datetime) -> None:
    # A repeat keeps the first values; a row created early by an AMI event gets them filled in.
    await db.execute(
        "INSERT INTO calls (call_id, number, channel, started_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (call_id) DO UPDATE SET number = COALESCE(calls.number, excluded.number),"
        " channel = COALESCE(calls.channel, excluded.channel),"
        " started_at = COALESCE(calls.started_at, excluded.started_at)",
        (call_id, number, channel, to_ts(started_at)),
    )


async def _update_call(db: Any, call_id: str, values: dict[str, Any]) -> None:
    # AMI events can overtake the FastAGI entry that opens the call: create the row if needed.
    await db.execute("INSERT INTO calls (call_id) VALUES (?) ON CONFLICT DO NOTHING", (call_id,))
    if values:
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        await db.execute(f"UPDATE calls SET {assignments} WHERE call_id = :call_id", {**values, "call_id": call_id})
