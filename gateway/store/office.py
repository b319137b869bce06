"""The rows behind the hotline office's figures (Zhanjiang 12345 rules, art. 5: the office analyses and reports the
work) and its nuisance review (art. 9), read by time range through the indexes on the time columns."""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from gateway.store.rows import from_ts, to_ts

__all__ = ["OfficeMixin", "SILENT_CALL"]

_CALL_COLUMNS = ("call_id, started_at, queued_at, answered_at, ended_at, outcome, request_type, emergency, ivr_path,"
                 " agent, announcement_id")
_TICKET_COLUMNS = ("ticket_id, call_id, type, category, unit, address, callback_number, emergency,"
                   " emergency_situation, due, summary, status, prefilled")
# A silent call: no key pressed and no word said, and the caller hung up in the menu (art. 9: repeated calls
# without good reason). The speech pre-fill has no transcript for it either, so the menu path is the test. A caller
# who hung up after an incident announcement had a reason: the announcement answered the call (art. 18).
SILENT_CALL = "outcome = 'abandoned' AND queued_at IS NULL AND ivr_path = '[]' AND announcement_id IS NULL"


class OfficeMixin:
    """Office figure reads of `Store`; needs its `_db`."""

    async def office_rows(self, since: datetime, until: datetime, *, due_on: date) -> dict[str, list[dict]]:
        """Every row one report needs, ``since`` <= time < ``until``: the calls that started, the calls refused at
        entry, the ticket drafts made, the hand-offs asked for, the surveys asked; and the call-back tasks due on
        ``due_on`` (a local date)."""
        window = (to_ts(since), to_ts(until))
        calls = await self._db.execute_fetchall(
            f"SELECT {_CALL_COLUMNS} FROM calls WHERE started_at >= ? AND started_at < ?", window)
        refused = await self._db.execute_fetchall(
            "SELECT DISTINCT call_id FROM blocked_attempts WHERE at >= ? AND at < ?", window)
        tickets = await self._db.execute_fetchall(
            f"SELECT {_TICKET_COLUMNS} FROM ticket_drafts WHERE created_at >= ? AND created_at < ?", window)
        handoffs = await self._db.execute_fetchall(
            "SELECT centre, requested_at, answered_at, result FROM handoffs WHERE requested_at >= ? AND requested_at < ?",
            window)
        ratings = await self._db.execute_fetchall(
            "SELECT kind, rating FROM ratings WHERE asked_at >= ? AND asked_at < ?", window)
        callbacks = await self._db.execute_fetchall(
            "SELECT id, state, due, done_at FROM callback_tasks WHERE due = ?", (due_on.isoformat(),))
        return {
            "calls": [_times(row, "started_at", "queued_at", "answered_at", "ended_at") | {
                "ivr_path": json.loads(row["ivr_path"] or "[]")} for row in calls],
            "refused": [{"call_id": row["call_id"]} for row in refused],
            "tickets": [{**dict(row), "prefilled": json.loads(row["prefilled"]) if row["prefilled"] else {}}
                        for row in tickets],
            "handoffs": [_times(row, "requested_at", "answered_at") for row in handoffs],
            "ratings": [dict(row) for row in ratings],
            "callbacks": [{**_times(row, "done_at"), "due": date.fromisoformat(row["due"])} for row in callbacks],
        }

    async def frequent_callers(self, since: datetime, until: datetime, *, at_least: int) -> list[dict[str, Any]]:
        """Numbers with at least ``at_least`` calls started in the range, the most calls first: number, calls,
        last_call_id."""
        return await self._counted_numbers("", since, until, at_least)

    async def silent_callers(self, since: datetime, until: datetime, *, at_least: int) -> list[dict[str, Any]]:
        """Numbers with at least ``at_least`` silent calls (`SILENT_CALL`) in the range: number, calls,
        last_call_id."""
        return await self._counted_numbers(f" AND {SILENT_CALL}", since, until, at_least)

    async def _counted_numbers(self, condition: str, since: datetime, until: datetime,
                               at_least: int) -> list[dict[str, Any]]:
        window = (to_ts(since), to_ts(until))
        rows = await self._db.execute_fetchall(
            "SELECT number, COUNT(*) AS calls FROM calls WHERE started_at >= ? AND started_at < ?"
            f" AND number IS NOT NULL{condition} GROUP BY number HAVING COUNT(*) >= ? ORDER BY COUNT(*) DESC, number",
            (*window, at_least))
        found = []
        for row in rows:
            last = await self._db.execute_fetchall(
                "SELECT call_id FROM calls WHERE number = ? AND started_at >= ? AND started_at < ?"
                f"{condition} ORDER BY started_at DESC LIMIT 1", (row["number"], *window))
            found.append({"number": row["number"], "calls": int(row["calls"]), "last_call_id": last[0]["call_id"]})
        return found


def _times(row: Any, *names: str) -> dict[str, Any]:
    values = dict(row)
    for name in names:
        values[name] = from_ts(values[name])
    return values
