"""After the call in the store: the surveys asked and their ratings, the call-back tasks a dissatisfied rating
creates, their attempts, and the one redo a ticket may have (Zhanjiang 12345 rules, art. 15)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.store.handling import reopen_for_redo
from gateway.store.rows import check_text, from_ts, to_ts, where_clause
from ivr.survey import RATING_LABELS, SurveyKind, needs_callback

__all__ = ["CALLBACK_OUTCOMES", "AfterCallMixin", "RedoRefused", "SurveyContext"]

CALLBACK_OUTCOMES = frozenset({"reached", "no_answer", "busy", "failed"})
_TASK_COLUMNS = ("id, ticket_id, call_id, rating_id, number, reason, created_at, due, assigned_to, state, attempts,"
                 " outcome, done_at, done_by, note")


class RedoRefused(ValueError):
    """The ticket was redone once already (art. 15: at most once per ticket)."""


@dataclass(frozen=True)
class SurveyContext:
    """What the intake survey's decision needs to know of a call (``ivr.survey.survey_skip_reason``)."""
    number: str | None
    ticket_id: str | None
    answered: bool
    refused: bool
    handed_to_centre: bool
    last_asked: datetime | None


class AfterCallMixin:
    """Survey and call-back methods of `Store`; needs its `_db` and `_write()`."""

    async def survey_context(self, call_id: str) -> SurveyContext:
        """The call as the survey sees it; a call the store never saw is neither answered nor refused."""
        rows = await self._db.execute_fetchall(
            "SELECT number, outcome, agent FROM calls WHERE call_id = ?", (call_id,))
        call = rows[0] if rows else None
        number = call["number"] if call else None
        ticket = await self.ticket_draft_for_call(call_id)
        centre = await self._db.execute_fetchall(
            "SELECT 1 FROM handoffs WHERE call_id = ? AND answered_at IS NOT NULL LIMIT 1", (call_id,))
        last = await self._db.execute_fetchall(
            "SELECT MAX(asked_at) FROM ratings WHERE number = ? AND call_id != ?", (number, call_id)) \
            if number else [(None,)]
        return SurveyContext(number=number, ticket_id=ticket["ticket_id"] if ticket else None,
                             answered=bool(call and call["agent"]), refused=bool(call and call["outcome"] == "blocked"),
                             handed_to_centre=bool(centre), last_asked=from_ts(last[0][0]))

    async def open_survey(self, kind: SurveyKind, *, call_id: str, ticket_id: str | None, number: str | None,
                          at: datetime) -> int | None:
        """Record that the caller is being asked (the per-caller cap counts what was asked, rated or not); None
        if this call was asked already (a repeated AGI run)."""
        async with self._write() as db:
            inserted = await db.execute_fetchall(
                "INSERT INTO ratings (kind, call_id, ticket_id, number, asked_at, redo)"
                " VALUES (?, ?, ?, ?, ?, (SELECT COUNT(*) FROM ticket_redos WHERE ticket_id = ?))"
                " ON CONFLICT DO NOTHING RETURNING id",
                (SurveyKind(kind).value, check_text(call_id, "call_id"), ticket_id, number, to_ts(at), ticket_id))
            return inserted[0][0] if inserted else None

    async def record_rating(self, rating_id: int, rating: int, *, at: datetime, callback_due: date) -> int | None:
        """Store the caller's 1-5 and, for 4 or 5, the call-back task, in one transaction. Returns the task id."""
        if rating not in RATING_LABELS:
            raise ValueError(f"a rating is 1..5, not {rating!r}")
        async with self._write(durable=True) as db:
            rows = await db.execute_fetchall(
                "SELECT kind, call_id, ticket_id, number FROM ratings WHERE id = ?", (rating_id,))
            if not rows:
                raise LookupError(f"no survey {rating_id}")
            asked = rows[0]
            await db.execute("UPDATE ratings SET rating = ?, rated_at = ? WHERE id = ?", (rating, to_ts(at), rating_id))
            if not needs_callback(rating) or not asked["number"]:
                return None
            inserted = await db.execute_fetchall(
                "INSERT INTO callback_tasks (ticket_id, call_id, rating_id, number, reason, created_at, due)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                (asked["ticket_id"], asked["call_id"], rating_id, asked["number"],
                 f"{asked['kind']}_rating_{rating}_{RATING_LABELS[rating]}", to_ts(at), callback_due.isoformat()))
            return inserted[0][0] if inserted else None

    async def ratings(self, *, call_id: str | None = None, ticket_id: str | None = None) -> list[dict[str, Any]]:
        """Surveys asked, oldest first, for one call or one ticket (or all)."""
        where, params = [], []
        for column, value in (("call_id", call_id), ("ticket_id", ticket_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = await self._db.execute_fetchall(
            f"SELECT id, kind, call_id, ticket_id, asked_at, rating, rated_at, redo FROM ratings{where_clause(where)}"
            " ORDER BY id", params)
        return [{**dict(row), "asked_at": from_ts(row["asked_at"]), "rated_at": from_ts(row["rated_at"]),
                 "redo": bool(row["redo"])} for row in rows]

    async def counted_handling_rating(self, ticket_id: str) -> int | None:
        """The handling rating that counts for a ticket: the redo's, once there was one (art. 15), else the
        latest given."""
        rows = await self._db.execute_fetchall(
            "SELECT rating FROM ratings WHERE ticket_id = ? AND kind = 'handling' AND rating IS NOT NULL"
            " ORDER BY redo DESC, id DESC LIMIT 1", (ticket_id,))
        return rows[0]["rating"] if rows else None

    # -- call-back tasks ------------------------------------------------------------------------------------------

    async def callback_tasks(self, *, agent: str | None = None, include_done: bool = False) -> list[dict[str, Any]]:
        """Call-back tasks, the earliest due first; ``agent``: only those assigned to that agent."""
        where = [] if include_done else ["state = 'open'"]
        params: list[Any] = []
        if agent is not None:
            where.append("assigned_to = ?")
            params.append(agent)
        rows = await self._db.execute_fetchall(
            f"SELECT {_TASK_COLUMNS} FROM callback_tasks{where_clause(where)} ORDER BY due, id", params)
        return [_task(row) for row in rows]

    async def callback_task(self, task_id: int) -> dict[str, Any] | None:
        rows = await self._db.execute_fetchall(f"SELECT {_TASK_COLUMNS} FROM callback_tasks WHERE id = ?", (task_id,))
        return _task(rows[0]) if rows else None

    async def assign_callback(self, task_id: int, *, agent: str) -> None:
        """Give an open task to an agent (LookupError: no such open task)."""
        async with self._write() as db:
            cursor = await db.execute("UPDATE callback_tasks SET assigned_to = ? WHERE id = ? AND state = 'open'",
                                      (check_text(agent, "agent"), task_id))
            if not cursor.rowcount:
                raise LookupError(f"no open call-back task {task_id}")

    async def record_callback_attempt(self, task_id: int, *, agent: str, outcome: str, at: datetime) -> None:
        """One try at calling back (reached, no answer, busy, failed)."""
        if outcome not in CALLBACK_OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(sorted(CALLBACK_OUTCOMES))}, not {outcome!r}")
        async with self._write() as db:
            cursor = await db.execute(
                "UPDATE callback_tasks SET attempts = attempts + 1, outcome = ? WHERE id = ? AND state = 'open'",
                (outcome, task_id))
            if not cursor.rowcount:
                raise LookupError(f"no open call-back task {task_id}")
            await db.execute("INSERT INTO callback_attempts (task_id, agent, at, outcome) VALUES (?, ?, ?, ?)",
                             (task_id, check_text(agent, "agent"), to_ts(at), outcome))

    async def callback_attempts(self, task_id: int) -> list[dict[str, Any]]:
        rows = await self._db.execute_fetchall(
            "SELECT agent, at, outcome FROM callback_attempts WHERE task_id = ? ORDER BY id", (task_id,))
        return [{**dict(row), "at": from_ts(row["at"])} for row in rows]

    async def finish_callback(self, task_id: int, *, agent: str, at: datetime, note: str | None = None,
                              redo: bool = False) -> None:
        """Close a task; with ``redo`` the ticket goes back to be handled again, which art. 15 allows once per
        ticket (RedoRefused otherwise, and then nothing is written)."""
        agent = check_text(agent, "agent")
        async with self._write(durable=True) as db:
            rows = await db.execute_fetchall("SELECT ticket_id FROM callback_tasks WHERE id = ? AND state = 'open'",
                                             (task_id,))
            if not rows:
                raise LookupError(f"no open call-back task {task_id}")
            ticket_id = rows[0]["ticket_id"]
            if redo:
                if ticket_id is None:
                    raise RedoRefused(f"call-back task {task_id} has no ticket to redo")
                if await _redone(db, ticket_id):
                    raise RedoRefused(f"ticket {ticket_id} was redone once already (art. 15)")
                await db.execute("INSERT INTO ticket_redos (ticket_id, task_id, agent, at) VALUES (?, ?, ?, ?)",
                                 (ticket_id, task_id, agent, to_ts(at)))
                await reopen_for_redo(db, ticket_id, at=at)
            await db.execute("UPDATE callback_tasks SET state = 'done', done_at = ?, done_by = ?, note = ?"
                             " WHERE id = ?", (to_ts(at), agent, note, task_id))

    async def ticket_redone(self, ticket_id: str) -> bool:
        return await _redone(self._db, ticket_id)


async def _redone(db: Any, ticket_id: str) -> bool:
    rows = await db.execute_fetchall("SELECT 1 FROM ticket_redos WHERE ticket_id = ?", (ticket_id,))
    return bool(rows)


def _task(row: Any) -> dict[str, Any]:
    return {**dict(row), "created_at": from_ts(row["created_at"]), "done_at": from_ts(row["done_at"]),
            "due": date.fromisoformat(row["due"])}
