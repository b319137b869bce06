"""Who may work on a ticket and who looked at it: a mixin of `Store`.

- A ticket's *public id* (random, ``ticket_drafts.public_id``) is the only name the agent console knows it by; its
  number (date + daily sequence) is read to the caller and stays out of the console's URLs.
- A ticket is *assigned* to an agent when there is a ``ticket_assignments`` row for the two: ``answered`` (written
  with the screen-pop, when Asterisk connected the agent to the caller), ``supervisor`` (a supervisor handed the
  ticket on) or ``return_call`` (the agent makes the ticket's return call). ``ticket_drafts.agent`` is the agent
  who answered last: the ticket's agent.
- ``screenpops`` lists each pop sent (ids only) so a reconnecting console can be sent its current call's again.
- ``ticket_access_audit`` records every console access by anyone but the ticket's agent, and every refusal.

The methods rely on what `Store` provides: ``self._db`` for reads and ``self._write()`` for writes.
"""
from __future__ import annotations

from datetime import datetime

from gateway.store.rows import (
    ASSIGNMENT_SOURCES,
    TICKET_COLUMNS,
    check_text,
    from_ts,
    is_public_id,
    ticket_from_row,
    to_ts,
)

_AUDIT_ROLES = frozenset({"agent", "supervisor"})
_AUDIT_BASES = frozenset({"assigned", "supervisor", "denied"})


class TicketAccessMixin:
    """Public ids, assignments, the screen-pop log and the access audit; needs `Store`'s `_db` and `_write()`."""

    async def ticket_by_public_id(self, public_id: str) -> dict | None:
        """The draft with this public id; None for an unknown or malformed id."""
        if not is_public_id(public_id):
            return None
        rows = await self._db.execute_fetchall(
            f"SELECT {TICKET_COLUMNS} FROM ticket_drafts WHERE public_id = ?", (public_id,))
        return ticket_from_row(rows[0]) if rows else None

    async def ticket_assignees(self, ticket_id: str) -> frozenset[str]:
        """Every agent who answered the ticket's call or was assigned the ticket."""
        rows = await self._db.execute_fetchall(
            "SELECT DISTINCT agent FROM ticket_assignments WHERE ticket_id = ?", (ticket_id,))
        return frozenset(row[0] for row in rows)

    async def assign_ticket(self, ticket_id: str, *, agent: str, source: str, at: datetime,
                            assigned_by: str | None = None, call_id: str | None = None) -> None:
        """Let ``agent`` work on the ticket. A supervisor's assignment names the supervisor (``assigned_by``).
        Unknown ticket -> LookupError; bad source or agent -> ValueError."""
        agent = check_text(agent, "agent")
        if source not in ASSIGNMENT_SOURCES:
            raise ValueError(f"source must be one of {sorted(ASSIGNMENT_SOURCES)}, got {source!r}")
        if (source == "supervisor") != (assigned_by is not None):
            raise ValueError("a supervisor's assignment, and only that, names who assigned it")
        async with self._write() as db:
            if not await db.execute_fetchall("SELECT 1 FROM ticket_drafts WHERE ticket_id = ?", (ticket_id,)):
                raise LookupError(f"no ticket draft {ticket_id!r}")
            await db.execute(
                "INSERT INTO ticket_assignments (ticket_id, agent, source, assigned_by, call_id, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (ticket_id, agent, source, assigned_by, call_id, to_ts(at)),
            )

    async def record_screenpop(self, *, message_id: str, agent: str, call_id: str, ticket_id: str | None,
                               reason: str | None, at: datetime) -> None:
        """The pop about to be sent, in one transaction with what answering gives the agent: the ticket becomes
        theirs (``ticket_drafts.agent``) and they are on its assignment list for good."""
        agent, call_id = check_text(agent, "agent"), check_text(call_id, "call_id")
        async with self._write() as db:
            await db.execute(
                "INSERT INTO screenpops (message_id, agent, call_id, ticket_id, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (check_text(message_id, "message_id"), agent, call_id, ticket_id, reason, to_ts(at)),
            )
            if ticket_id is not None:
                cursor = await db.execute("UPDATE ticket_drafts SET agent = ? WHERE ticket_id = ?",
                                          (agent, ticket_id))
                if cursor.rowcount:
                    await db.execute(
                        "INSERT INTO ticket_assignments (ticket_id, agent, source, call_id, at)"
                        " VALUES (?, ?, 'answered', ?, ?)",
                        (ticket_id, agent, call_id, to_ts(at)),
                    )

    async def latest_screenpop(self, agent: str) -> dict | None:
        """The last pop sent to ``agent``: message_id, agent, call_id, ticket_id, reason, created_at."""
        rows = await self._db.execute_fetchall(
            "SELECT message_id, agent, call_id, ticket_id, reason, created_at FROM screenpops WHERE agent = ?"
            " ORDER BY id DESC LIMIT 1", (agent,))
        return {**dict(rows[0]), "created_at": from_ts(rows[0]["created_at"])} if rows else None

    async def audit_ticket_access(self, *, viewer: str, role: str, action: str, ticket_id: str, basis: str,
                                  at: datetime) -> None:
        """One audit row; it carries no caller number, only who, what, when and which ticket."""
        if role not in _AUDIT_ROLES or basis not in _AUDIT_BASES:
            raise ValueError(f"role must be one of {sorted(_AUDIT_ROLES)} and basis one of {sorted(_AUDIT_BASES)}")
        async with self._write(durable=True) as db:  # an audit must outlive a power cut, like the restriction audit
            await db.execute(
                "INSERT INTO ticket_access_audit (at, viewer, role, action, ticket_id, basis)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (to_ts(at), check_text(viewer, "viewer"), role, check_text(action, "action"),
                 check_text(ticket_id, "ticket_id"), basis),
            )

    async def ticket_access_audit(self, ticket_id: str | None = None) -> list[dict]:
        """Audit rows, oldest first; of one ticket if given."""
        sql = "SELECT id, at, viewer, role, action, ticket_id, basis FROM ticket_access_audit"
        params: tuple = ()
        if ticket_id is not None:
            sql += " WHERE ticket_id = ?"
            params = (ticket_id,)
        rows = await self._db.execute_fetchall(sql + " ORDER BY id", params)
        return [{**dict(row), "at": from_ts(row["at"])} for row in rows]
