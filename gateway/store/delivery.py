"""The durable MQTT outbox, linkage hand-offs (art. 14) and their data pushes: a mixin of `Store`.

The methods rely on what `Store` provides: `self._db` (for reads) and `self._write()` (one transaction, for writes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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

# How long a publisher's claim on outbox rows holds without renewal: a gateway that dies with rows claimed
# delays those pops by at most this much before another gateway's publisher takes them.
OUTBOX_LEASE_S = 15.0


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

    async def outbox_depth(self) -> int:
        """Rows in the outbox (every gateway's, on a shared database): one COUNT over a table kept short."""
        rows = await self._db.execute_fetchall("SELECT COUNT(*) FROM outbox")
        return int(rows[0][0])

    async def outbox_claim(self, claimant: str, limit: int = 100, *, lease_s: float = OUTBOX_LEASE_S,
                           now: datetime | None = None) -> list[dict]:
        """The oldest rows ``claimant`` may publish, claimed for ``lease_s``: rows nobody holds, rows it holds
        already (the claim is renewed) and rows whose claim ran out (their publisher stopped or lost the broker).

        With several gateways on one database each row goes to one publisher at a time. A row waits while an
        earlier row of its topic is held by another publisher, so one agent's pops keep their order. Claims are
        serial writes (one at a time across gateways), which that order needs; ``FOR UPDATE SKIP LOCKED`` lets a
        claim pass over rows another transaction is deleting instead of waiting for it.

        A SQLite file has one gateway (a second process on it is the admin CLI, which publishes nothing): there the
        claim is the plain read of the oldest rows, and a publishing cycle writes nothing, so a state disk that
        refuses writes is not seen to heal by a claim squeezed into the last free page."""
        if not self.backend.shared:
            return await self.outbox_pending(limit)
        now = now or datetime.now(UTC)
        bind = {"me": check_text(claimant, "claimant"), "now": to_ts(now), "limit": max(0, limit),
                "until": to_ts(now + timedelta(seconds=lease_s))}
        async with self._write(serial=True) as db:
            free = await db.execute_fetchall(
                "SELECT seq FROM outbox AS o WHERE (o.claimed_until IS NULL OR o.claimed_by = :me"
                "   OR o.claimed_until < :now)"
                " AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.topic = o.topic AND e.seq < o.seq"
                "   AND e.claimed_by != :me AND e.claimed_until >= :now)"
                " ORDER BY o.seq LIMIT :limit FOR UPDATE SKIP LOCKED", bind)
            seqs = [int(row[0]) for row in free]
            if not seqs:
                return []
            marks = ", ".join(f":s{i}" for i in range(len(seqs)))
            rows = await db.execute_fetchall(
                f"UPDATE outbox SET claimed_by = :me, claimed_until = :until WHERE seq IN ({marks})"
                " RETURNING seq, message_id, topic, payload, created_at, attempts, last_error",
                {**bind, **{f"s{i}": seq for i, seq in enumerate(seqs)}})
        return sorted(({**dict(row), "payload": json.loads(row["payload"]), "created_at": from_ts(row["created_at"])}
                       for row in rows), key=lambda row: row["seq"])

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
            inserted = await db.execute_fetchall(
                f"INSERT INTO handoffs ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})"
                " RETURNING id",
                values)
        return int(inserted[0][0])

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
