"""The automated return calls in the store (一事一评): one per done ticket, tried within calling hours until
answered or given up (``gateway.aftercall.calling_hours`` decides the next try)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.store.rows import from_ts, to_ts

__all__ = ["ReturnCallsMixin", "schedule_return_call"]

_RETURN_COLUMNS = "id, ticket_id, number, state, attempts, next_at, last_outcome, created_at, updated_at"


class ReturnCallsMixin:
    """Return-call methods of `Store`; needs its `_db` and `_write()`."""

    async def return_call(self, return_id: int) -> dict[str, Any] | None:
        rows = await self._db.execute_fetchall(f"SELECT {_RETURN_COLUMNS} FROM return_calls WHERE id = ?",
                                               (return_id,))
        return _return(rows[0]) if rows else None

    async def return_calls(self, *, ticket_id: str | None = None) -> list[dict[str, Any]]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_RETURN_COLUMNS} FROM return_calls" + (" WHERE ticket_id = ?" if ticket_id else "")
            + " ORDER BY id", (ticket_id,) if ticket_id else ())
        return [_return(row) for row in rows]

    async def due_return_calls(self, now: datetime, *, limit: int = 10) -> list[dict[str, Any]]:
        """Return calls waiting whose next try is due, the longest waiting first."""
        rows = await self._db.execute_fetchall(
            f"SELECT {_RETURN_COLUMNS} FROM return_calls WHERE state = 'pending' AND next_at <= ?"
            " ORDER BY next_at, id LIMIT ?", (to_ts(now), limit))
        return [_return(row) for row in rows]

    async def start_return_call(self, return_id: int, *, at: datetime) -> bool:
        """Mark a try as being placed (one more attempt); False if it was not waiting (taken meanwhile)."""
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE return_calls SET state = 'calling', attempts = attempts + 1, updated_at = ?"
                " WHERE id = ? AND state = 'pending'", (to_ts(at), return_id))
            return bool(cursor.rowcount)

    async def end_return_call(self, return_id: int, *, state: str, outcome: str, at: datetime,
                              next_at: datetime | None = None) -> None:
        """A try's end: answered, gave_up, or pending again with its next try."""
        if state not in {"answered", "pending", "gave_up"} or (state == "pending") != (next_at is not None):
            raise ValueError(f"a try ends answered, gave_up, or pending with a next try; not {state!r}")
        async with self._write() as db:
            await db.execute(
                "UPDATE return_calls SET state = ?, last_outcome = ?, updated_at = ?,"
                " next_at = COALESCE(?, next_at) WHERE id = ? AND state = 'calling'",
                (state, outcome, to_ts(at), to_ts(next_at) if next_at else None, return_id))

    async def requeue_interrupted_return_calls(self, *, at: datetime) -> int:
        """Tries still 'calling' when the gateway stopped: waiting again (their try counts)."""
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE return_calls SET state = 'pending', last_outcome = 'interrupted', next_at = ?,"
                " updated_at = ? WHERE state = 'calling'", (to_ts(at), to_ts(at)))
            return cursor.rowcount


async def schedule_return_call(db: Any, ticket_id: str, *, at: datetime) -> int | None:
    """Inside a transaction: the return call of a ticket just done, to the ticket's call-back number (else the
    number it was reported from); None when there is nobody to call or a return call already waits."""
    rows = await db.execute_fetchall(
        "SELECT COALESCE(d.callback_number, c.number) AS number FROM ticket_drafts d"
        " LEFT JOIN calls c ON c.call_id = d.call_id WHERE d.ticket_id = ?", (ticket_id,))
    number = rows[0]["number"] if rows else None
    if not number:
        return None
    inserted = await db.execute_fetchall(
        "INSERT INTO return_calls (ticket_id, number, next_at, created_at, updated_at) SELECT ?, ?, ?, ?, ?"
        " WHERE NOT EXISTS (SELECT 1 FROM return_calls WHERE ticket_id = ? AND state IN ('pending', 'calling'))"
        " RETURNING id",
        (ticket_id, number, to_ts(at), to_ts(at), to_ts(at), ticket_id))
    return inserted[0][0] if inserted else None


def _return(row: Any) -> dict[str, Any]:
    return {**dict(row), **{k: from_ts(row[k]) for k in ("next_at", "created_at", "updated_at")}}
