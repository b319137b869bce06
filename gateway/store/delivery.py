"""The durable MQTT outbox, linkage hand-offs (art. 14) and their data pushes: a mixin of `Store`.

The methods rely on what `Store` provides: `self._db` (the aiosqlite connection, for reads) and `self._write()`
(the write lock and `BEGIN IMMEDIATE` transaction, for writes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.store.rows import (
    HANDOFF_COLUMNS,
    PUSH_COLUMNS,
    PUSH_ADAPTERS,
    from_ts,
    handoff_from_row,
    check_handoff_field,
    check_push_field,
    check_text,
    to_ts,
)


class DeliveryMixin:
    """Outbox, hand-off and push methods of `Store`; needs its `_db` and `_write()`."""

    # -- outbox (durable MQTT publishing) ---------------------------------------------------------------------

    async def outbox_add(self, topic: str, payload: dict, *, message_id: str, at: datetime) -> int:
        """Queue a message; the seq orders publishing. Idempotent on message_id (returns the existing seq)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        async with self._write() as db:
            await db.execute(
                "INSERT INTO outbox (message_id, topic, payload, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                (check_text(message_id, "message_id"), check_text(topic, "topic"), body, to_ts(at)),
            )
            rows = await db.execute_fetchall("SELECT seq FROM outbox WHERE message_id = ?", (message_id,))
        return int(rows[0][0])

    async def outbox_pending(self, limit: int = 100) -> list[dict]:
        rows = await self._db.execute_fetchall(
            "SELECT seq, message_id, topic, payload, created_at, attempts, last_error FROM outbox ORDER BY seq LIMIT ?",
            (max(0, limit),),
        )
        return [{**dict(row), "payload": json.loads(row["payload"]), "created_at": from_ts(row["created_at"])}
                for row in rows]

    async def outbox_remove(self, seq: int) -> None:
        async with self._write() as db:
            await db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    async def outbox_mark_attempt(self, seq: int, error: str | None, *, at: datetime | None = None) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, last_attempt_at = ? WHERE seq = ?",
                (error, to_ts(at or datetime.now(UTC)), seq),
            )

    # -- linkage hand-offs (art. 14) and their data pushes -------------------------------------------------------

    async def add_handoff(
        self, *, call_id: str, centre: str, trigger: str, mode: str, requested_at: datetime,
        ticket_id: str | None = None, situation: str | None = None, detail: str | None = None,
    ) -> int:
        values = {"call_id": check_text(call_id, "call_id"), "centre": check_text(centre, "centre"),
                  "trigger": check_handoff_field("trigger", trigger), "mode": check_handoff_field("mode", mode),
                  "requested_at": to_ts(requested_at), "ticket_id": check_handoff_field("ticket_id", ticket_id),
                  "situation": check_handoff_field("situation", situation),
                  "detail": check_handoff_field("detail", detail)}
        async with self._write() as db:
            cursor = await db.execute(
                f"INSERT INTO handoffs ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})", values
            )
        return int(cursor.lastrowid)

    async def update_handoff(self, handoff_id: int, **fields: Any) -> None:
        """Set ring_at, answered_at, ended_at, result, detail, mode, ticket_id or situation; unknown -> LookupError."""
        values = {name: check_handoff_field(name, value) for name, value in fields.items()}
        if not values:
            return
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        async with self._write() as db:
            cursor = await db.execute(f"UPDATE handoffs SET {assignments} WHERE id = :id", {**values, "id": handoff_id})
            if cursor.rowcount == 0:
                raise LookupError(f"no hand-off {handoff_id}")

    async def get_handoff(self, handoff_id: int) -> dict | None:
        rows = await self._db.execute_fetchall(f"SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = ?", (handoff_id,))
        return handoff_from_row(rows[0]) if rows else None

    async def list_handoffs(self, *, call_id: str | None = None, limit: int = 50) -> list[dict]:
        """Newest request first."""
        where, params = ("", ()) if call_id is None else (" WHERE call_id = ?", (call_id,))
        rows = await self._db.execute_fetchall(
            f"SELECT {HANDOFF_COLUMNS} FROM handoffs{where} ORDER BY requested_at DESC, id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        return [handoff_from_row(row) for row in rows]

    async def add_push(
        self, *, push_id: str, centre: str, adapter: str, at: datetime, handoff_id: int | None = None,
        call_id: str | None = None,
    ) -> int:
        """A push in state 'pending'. Idempotent on push_id (returns the existing row's id)."""
        if adapter not in PUSH_ADAPTERS:
            raise ValueError(f"adapter must be one of {sorted(PUSH_ADAPTERS)}, got {adapter!r}")
        async with self._write() as db:
            await db.execute(
                "INSERT INTO pushes (push_id, handoff_id, call_id, centre, adapter, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (push_id) DO NOTHING",
                (check_text(push_id, "push_id"), handoff_id, call_id, check_text(centre, "centre"), adapter, to_ts(at),
                 to_ts(at)),
            )
            rows = await db.execute_fetchall("SELECT id FROM pushes WHERE push_id = ?", (push_id,))
        return int(rows[0][0])

    async def update_push(self, push_row_id: int, *, at: datetime | None = None, **fields: Any) -> None:
        """Set state, attempts and/or last_error; updated_at becomes `at` (default now)."""
        values = {name: check_push_field(name, value) for name, value in fields.items()}
        values["updated_at"] = to_ts(at or datetime.now(UTC))
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        async with self._write() as db:
            cursor = await db.execute(f"UPDATE pushes SET {assignments} WHERE id = :id", {**values, "id": push_row_id})
            if cursor.rowcount == 0:
                raise LookupError(f"no push {push_row_id}")

    async def list_pushes(self, *, handoff_id: int | None = None, call_id: str | None = None,
                          state: str | None = None, limit: int = 50) -> list[dict]:
        """Newest first. `in_outbox`: an MQTT push still waiting in the outbox for the broker's PUBACK."""
        clauses, params = [], []
        if state is not None:
            clauses.append("p.state = ?")
            params.append(check_push_field("state", state))
        if handoff_id is not None:
            clauses.append("p.handoff_id = ?")
            params.append(handoff_id)
        if call_id is not None:
            clauses.append("p.call_id = ?")
            params.append(call_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        columns = ", ".join(f"p.{c.strip()}" for c in PUSH_COLUMNS.split(","))
        rows = await self._db.execute_fetchall(
            f"SELECT {columns}, EXISTS (SELECT 1 FROM outbox AS o WHERE o.message_id = p.push_id) AS in_outbox"
            f" FROM pushes AS p{where} ORDER BY p.created_at DESC, p.id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        return [{**dict(row), "in_outbox": bool(row["in_outbox"]), "created_at": from_ts(row["created_at"]),
                 "updated_at": from_ts(row["updated_at"]), "resumed_at": from_ts(row["resumed_at"])} for row in rows]
