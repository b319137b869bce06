"""The gateway's SQLite store (aiosqlite): restrictions and their audit, call records, ticket drafts, the MQTT
outbox, pending restriction requests, linkage hand-offs and their data pushes.

One connection per process, WAL so readers (the call-entry check) never wait for a writer. Writes take an
asyncio lock and a `BEGIN IMMEDIATE` transaction: the lock stops two coroutines sharing the connection from
interleaving inside one transaction, IMMEDIATE stops two processes (gateway and admin CLI) from deadlocking on
a lock upgrade; busy_timeout makes the loser wait instead of failing.

Numbers are E.164 text. Datetimes go in as aware datetimes, are stored as UTC text and come back aware in
Asia/Shanghai (the hotline's civil time).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from gateway import migrations
from gateway.phone import normalise, normalise_strict
from gateway.restriction import SHANGHAI, Restriction, check_aware, check_days, effective, restriction_end

BUSY_TIMEOUT_MS = 5000
CALL_OUTCOMES = frozenset({"blocked", "queued", "answered", "abandoned", "ivr", "failed"})
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_RESTRICTION_COLUMNS = "id, number, reason, operator, decided_at, until, lifted_at, lifted_by, lift_reason"
_CALL_COLUMNS = (
    "call_id, number, channel, started_at, ivr_path, request_type, emergency, outcome, "
    "queued_at, answered_at, ended_at, agent, priority, ticket_query"
)
_CALL_TIMES = ("started_at", "queued_at", "answered_at", "ended_at")
TICKET_FIELDS = (
    "type", "category", "unit", "address", "callback_number", "emergency", "emergency_situation", "due", "summary",
    "transcript", "status", "agent",
)
TICKET_DRAFT_STATUSES = frozenset({"draft", "saved"})
# What the IVR progress query (art. 12) tells a caller about a ticket that has not yet left the hotline.
DRAFT_PUBLIC_STATUS = "received"
_TICKET_COLUMNS = "ticket_id, call_id, " + ", ".join(TICKET_FIELDS) + ", created_at, updated_at"
HANDOFF_TRIGGERS = frozenset({"menu", "speech", "agent"})
HANDOFF_MODES = frozenset({"blind", "threeway"})
# answered: the centre took the call; no_answer/busy: it did not within its answer timeout; fallback_*: the call
# went on to the next centre or to the priority agent queue; caller_hangup: the caller left while it rang.
HANDOFF_RESULTS = frozenset({"answered", "no_answer", "busy", "failed", "fallback_queue", "fallback_centre",
                             "caller_hangup", "cancelled"})
PUSH_ADAPTERS = frozenset({"mqtt", "http", "none"})
# queued: in the durable MQTT outbox (the publisher delivers it at least once); sent: the centre's HTTP endpoint
# answered 2xx; skipped: the centre takes no data push.
PUSH_STATES = frozenset({"pending", "queued", "sent", "failed", "skipped"})
_HANDOFF_COLUMNS = ("id, call_id, ticket_id, situation, centre, trigger, mode, requested_at, ring_at, answered_at, "
                    "ended_at, result, detail")
_HANDOFF_TIMES = ("requested_at", "ring_at", "answered_at", "ended_at")
_PUSH_COLUMNS = ("id, push_id, handoff_id, call_id, centre, adapter, state, attempts, last_error, created_at, "
                 "updated_at")
_PENDING_COLUMNS = (
    "id, number, reason, requested_by, call_id, requested_at, status, decided_by, decided_at, decision_reason,"
    " restriction_id"
)


class Store:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below), never implicit.
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await _enable_wal(db)
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            store = cls(db, path)
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- schema -----------------------------------------------------------------------------------------------

    async def schema_version(self) -> int:
        rows = await self._db.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    async def _migrate(self) -> None:
        known = migrations.MIGRATIONS
        versions = [version for version, _ in known]
        if versions != sorted(set(versions)) or (versions and versions[0] < 1):
            raise RuntimeError(f"MIGRATIONS versions must be unique, ascending and >= 1: {versions}")
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = await self.schema_version()
        if versions and current > versions[-1]:
            raise RuntimeError(f"{self.path}: schema version {current} is newer than this code ({versions[-1]})")
        for version, sql in known:
            if version <= current:
                continue
            async with self._write() as db:
                # Another process may have applied it while we waited for the write lock.
                done = await db.execute_fetchall("SELECT 1 FROM schema_migrations WHERE version = ?", (version,))
                if done:
                    continue
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, _ts(datetime.now(UTC))),
                )

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise

    # -- restrictions -----------------------------------------------------------------------------------------

    async def add_restriction(
        self, number: str, *, reason: str, operator: str, days: int, decided_at: datetime
    ) -> Restriction:
        number = normalise_strict(number)
        reason, operator = _text(reason, "reason"), _text(operator, "operator")
        check_days(days)
        async with self._write() as db:
            return await _insert_restriction(db, number, reason=reason, operator=operator, days=days,
                                             decided_at=decided_at)

    async def add_restrictions_bulk(self, rows: Iterable[tuple[str, str, str, int, datetime]]) -> None:
        """(number, reason, operator, days, decided_at) rows in one transaction, each audited as an 'add'.

        Every number is validated like an operator's (~20 us each in phonenumbers); that runs in a worker thread
        so a large import does not stall calls served by the same event loop.
        """
        prepared = await asyncio.to_thread(_prepare_bulk, list(rows))
        async with self._write() as db:
            before = (await db.execute_fetchall("SELECT COALESCE(MAX(id), 0) FROM restrictions"))[0][0]
            await db.executemany(
                "INSERT INTO restrictions (number, reason, operator, days, decided_at, until) VALUES (?,?,?,?,?,?)",
                prepared,
            )
            await db.execute(
                "INSERT INTO restriction_audit (action, restriction_id, number, operator, reason, at, days, until)"
                " SELECT 'add', id, number, operator, reason, decided_at, days, until FROM restrictions"
                " WHERE id > ? ORDER BY id",
                (before,),
            )

    async def active_restriction(self, number: str | None, now: datetime) -> Restriction | None:
        """The restriction in force for `number` at `now`: one indexed lookup of the latest decision."""
        key = _lookup_key(number)
        if key is None:
            return None
        rows = await self._db.execute_fetchall(
            f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions WHERE number = ? AND decided_at <= ?"
            " ORDER BY decided_at DESC, id DESC LIMIT 1",
            (key, _ts(now)),
        )
        return effective((_restriction(row) for row in rows), now)

    async def lift_restriction(self, number: str, *, operator: str, reason: str, at: datetime) -> Restriction | None:
        number = normalise_strict(number)
        operator, reason = _text(operator, "operator"), _text(reason, "reason")
        async with self._write() as db:
            rows = await db.execute_fetchall(
                f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions WHERE number = ? AND decided_at <= ?"
                " ORDER BY decided_at DESC, id DESC LIMIT 1",
                (number, _ts(at)),
            )
            active = effective((_restriction(row) for row in rows), at)
            if active is None:
                return None
            await db.execute(
                "UPDATE restrictions SET lifted_at = ?, lifted_by = ?, lift_reason = ? WHERE id = ?",
                (_ts(at), operator, reason, active.id),
            )
            await db.execute(
                "INSERT INTO restriction_audit (action, restriction_id, number, operator, reason, at, days, until)"
                " VALUES ('lift', ?, ?, ?, ?, ?, NULL, ?)",
                (active.id, number, operator, reason, _ts(at), _ts(active.until)),
            )
            rows = await db.execute_fetchall(
                f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions WHERE id = ?", (active.id,)
            )
        return _restriction(rows[0])

    async def list_restrictions(self, now: datetime, *, include_inactive: bool = False) -> list[Restriction]:
        """Newest decision first. By default only those in force at `now` (one per number)."""
        if include_inactive:
            rows = await self._db.execute_fetchall(
                f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions ORDER BY decided_at DESC, id DESC"
            )
            return [_restriction(row) for row in rows]
        at = _ts(now)
        rows = await self._db.execute_fetchall(
            f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions AS r"
            " WHERE r.decided_at <= :now AND r.until > :now AND (r.lifted_at IS NULL OR r.lifted_at > :now)"
            " AND NOT EXISTS (SELECT 1 FROM restrictions AS n WHERE n.number = r.number AND n.decided_at <= :now"
            "   AND (n.decided_at > r.decided_at OR (n.decided_at = r.decided_at AND n.id > r.id)))"
            " ORDER BY r.decided_at DESC, r.id DESC",
            {"now": at},
        )
        return [r for r in map(_restriction, rows) if r.is_active(now)]

    async def restriction_audit(self, number: str | None = None) -> list[dict]:
        """Every add and lift, oldest first."""
        sql = "SELECT id, action, restriction_id, number, operator, reason, at, days, until FROM restriction_audit"
        params: tuple = ()
        if number is not None:
            sql += " WHERE number = ?"
            params = (normalise_strict(number),)
        rows = await self._db.execute_fetchall(sql + " ORDER BY id", params)
        return [{**dict(row), "at": _dt(row["at"]), "until": _dt(row["until"])} for row in rows]

    # -- calls ------------------------------------------------------------------------------------------------

    async def record_blocked_attempt(
        self, *, call_id: str, number: str | None, restriction_id: int, at: datetime
    ) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO blocked_attempts (call_id, number, restriction_id, at) VALUES (?, ?, ?, ?)",
                (_text(call_id, "call_id"), number, restriction_id, _ts(at)),
            )

    async def blocked_attempts(self, number: str | None = None) -> list[dict]:
        sql = "SELECT id, call_id, number, restriction_id, at FROM blocked_attempts"
        params: tuple = ()
        if number is not None:
            sql += " WHERE number = ?"
            params = (_lookup_key(number),)
        rows = await self._db.execute_fetchall(sql + " ORDER BY at, id", params)
        return [{**dict(row), "at": _dt(row["at"])} for row in rows]

    async def open_call(self, *, call_id: str, number: str | None, channel: str, started_at: datetime) -> None:
        """Idempotent: a repeat keeps the first values; a row created early by update_call gets them filled in."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO calls (call_id, number, channel, started_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (call_id) DO UPDATE SET number = COALESCE(calls.number, excluded.number),"
                " channel = COALESCE(calls.channel, excluded.channel),"
                " started_at = COALESCE(calls.started_at, excluded.started_at)",
                (_text(call_id, "call_id"), number, channel, _ts(started_at)),
            )

    async def update_call(self, call_id: str, **fields: Any) -> None:
        values = {name: _call_field(name, value) for name, value in fields.items()}
        async with self._write() as db:
            # AMI events can overtake the FastAGI entry that opens the call: create the row if needed.
            await db.execute("INSERT OR IGNORE INTO calls (call_id) VALUES (?)", (_text(call_id, "call_id"),))
            if values:
                assignments = ", ".join(f"{name} = :{name}" for name in values)
                await db.execute(
                    f"UPDATE calls SET {assignments} WHERE call_id = :call_id", {**values, "call_id": call_id}
                )

    async def get_call(self, call_id: str) -> dict | None:
        rows = await self._db.execute_fetchall(f"SELECT {_CALL_COLUMNS} FROM calls WHERE call_id = ?", (call_id,))
        return _call(rows[0]) if rows else None

    async def list_calls(self, *, limit: int = 50) -> list[dict]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_CALL_COLUMNS} FROM calls ORDER BY started_at DESC, rowid DESC LIMIT ?", (max(0, limit),)
        )
        return [_call(row) for row in rows]

    # -- tickets ----------------------------------------------------------------------------------------------

    async def ticket_status(self, ticket_no: str) -> dict | None:
        """The status the IVR progress query announces: the ticket system's, else 'received' for a draft."""
        rows = await self._db.execute_fetchall(
            "SELECT ticket_no, status, updated_at FROM tickets WHERE ticket_no = ?", (ticket_no,)
        )
        if rows:
            return {**dict(rows[0]), "updated_at": _dt(rows[0]["updated_at"])}
        rows = await self._db.execute_fetchall(
            "SELECT ticket_id, updated_at FROM ticket_drafts WHERE ticket_id = ?", (ticket_no,)
        )
        if not rows:
            return None
        return {"ticket_no": rows[0]["ticket_id"], "status": DRAFT_PUBLIC_STATUS, "updated_at": _dt(rows[0]["updated_at"])}

    async def create_ticket_draft(self, *, call_id: str, request_type: str | None, created_at: datetime) -> str:
        """A new draft; its id is the local date and that day's sequence number: "2026112700042"."""
        day = check_aware(created_at, "created_at").astimezone(SHANGHAI).date().strftime("%Y%m%d")
        request_type = _ticket_field("type", request_type)
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "INSERT INTO ticket_sequences (day, last) VALUES (?, 1)"
                " ON CONFLICT (day) DO UPDATE SET last = last + 1 RETURNING last",
                (day,),
            )
            ticket_id = f"{day}{rows[0][0]:05d}"
            await db.execute(
                "INSERT INTO ticket_drafts (ticket_id, call_id, type, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (ticket_id, _text(call_id, "call_id"), request_type, _ts(created_at), _ts(created_at)),
            )
        return ticket_id

    async def update_ticket_draft(self, ticket_id: str, *, at: datetime | None = None, **fields: Any) -> None:
        """Set fields of a draft (see TICKET_FIELDS); unknown field or ticket -> ValueError / LookupError."""
        values = {name: _ticket_field(name, value) for name, value in fields.items()}
        values["updated_at"] = _ts(at or datetime.now(UTC))
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        async with self._write() as db:
            cursor = await db.execute(
                f"UPDATE ticket_drafts SET {assignments} WHERE ticket_id = :ticket_id", {**values, "ticket_id": ticket_id}
            )
            if cursor.rowcount == 0:
                raise LookupError(f"no ticket draft {ticket_id!r}")

    async def get_ticket_draft(self, ticket_id: str) -> dict | None:
        rows = await self._db.execute_fetchall(
            f"SELECT {_TICKET_COLUMNS} FROM ticket_drafts WHERE ticket_id = ?", (ticket_id,)
        )
        return _ticket(rows[0]) if rows else None

    async def ticket_draft_for_call(self, call_id: str) -> dict | None:
        """The call's latest draft."""
        rows = await self._db.execute_fetchall(
            f"SELECT {_TICKET_COLUMNS} FROM ticket_drafts WHERE call_id = ? ORDER BY created_at DESC, ticket_id DESC"
            " LIMIT 1",
            (call_id,),
        )
        return _ticket(rows[0]) if rows else None

    # -- caller history (screen-pop) --------------------------------------------------------------------------

    async def caller_history(self, number_e164: str | None, *, now: datetime, days: int = 90) -> dict:
        """What an agent should know about a caller: recent calls and tickets, every restriction decision."""
        key = _lookup_key(number_e164) if number_e164 else None
        if key is None:
            return {"calls": [], "tickets": [], "restrictions": []}
        since, until = _ts(now - timedelta(days=days)), _ts(now)
        calls = await self._db.execute_fetchall(
            "SELECT call_id, started_at, request_type, outcome FROM calls"
            " WHERE number = ? AND started_at >= ? AND started_at <= ? ORDER BY started_at DESC",
            (key, since, until),
        )
        tickets = await self._db.execute_fetchall(
            "SELECT ticket_id AS id, type, category, status, created_at FROM ticket_drafts"
            " WHERE created_at >= :since AND created_at <= :until AND (callback_number = :n"
            "   OR call_id IN (SELECT call_id FROM calls WHERE number = :n AND started_at >= :since))"
            " ORDER BY created_at DESC, ticket_id DESC",
            {"n": key, "since": since, "until": until},
        )
        decisions = [_restriction(row) for row in await self._db.execute_fetchall(
            f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions WHERE number = ? ORDER BY decided_at DESC, id DESC",
            (key,),
        )]
        in_force = effective(decisions, now)
        return {
            "calls": [{**dict(row), "started_at": _dt(row["started_at"])} for row in calls],
            "tickets": [{**dict(row), "created_at": _dt(row["created_at"])} for row in tickets],
            "restrictions": [
                {"id": r.id, "reason": r.reason, "operator": r.operator, "decided_at": r.decided_at,
                 "until": r.until, "lifted_at": r.lifted_at, "lifted_by": r.lifted_by, "lift_reason": r.lift_reason,
                 "active": in_force is not None and in_force.id == r.id}
                for r in decisions
            ],
        }

    # -- outbox (durable MQTT publishing) ---------------------------------------------------------------------

    async def outbox_add(self, topic: str, payload: dict, *, message_id: str, at: datetime) -> int:
        """Queue a message; the seq orders publishing. Idempotent on message_id (returns the existing seq)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        async with self._write() as db:
            await db.execute(
                "INSERT INTO outbox (message_id, topic, payload, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                (_text(message_id, "message_id"), _text(topic, "topic"), body, _ts(at)),
            )
            rows = await db.execute_fetchall("SELECT seq FROM outbox WHERE message_id = ?", (message_id,))
        return int(rows[0][0])

    async def outbox_pending(self, limit: int = 100) -> list[dict]:
        rows = await self._db.execute_fetchall(
            "SELECT seq, message_id, topic, payload, created_at, attempts, last_error FROM outbox ORDER BY seq LIMIT ?",
            (max(0, limit),),
        )
        return [{**dict(row), "payload": json.loads(row["payload"]), "created_at": _dt(row["created_at"])}
                for row in rows]

    async def outbox_remove(self, seq: int) -> None:
        async with self._write() as db:
            await db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    async def outbox_mark_attempt(self, seq: int, error: str | None, *, at: datetime | None = None) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, last_attempt_at = ? WHERE seq = ?",
                (error, _ts(at or datetime.now(UTC)), seq),
            )

    # -- pending restrictions (art. 9: an agent asks, a supervisor decides) -----------------------------------

    async def add_pending_restriction(
        self, *, number: str, reason: str, requested_by: str, call_id: str | None, at: datetime
    ) -> int:
        number = normalise_strict(number)
        async with self._write() as db:
            cursor = await db.execute(
                "INSERT INTO pending_restrictions (number, reason, requested_by, call_id, requested_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (number, _text(reason, "reason"), _text(requested_by, "requested_by"), call_id, _ts(at)),
            )
        return int(cursor.lastrowid)

    async def list_pending_restrictions(self, *, include_decided: bool = False) -> list[dict]:
        """Oldest request first."""
        where = "" if include_decided else " WHERE status = 'pending'"
        rows = await self._db.execute_fetchall(
            f"SELECT {_PENDING_COLUMNS} FROM pending_restrictions{where} ORDER BY requested_at, id"
        )
        return [_pending(row) for row in rows]

    async def get_pending_restriction(self, pending_id: int) -> dict | None:
        rows = await self._db.execute_fetchall(
            f"SELECT {_PENDING_COLUMNS} FROM pending_restrictions WHERE id = ?", (pending_id,)
        )
        return _pending(rows[0]) if rows else None

    async def confirm_pending_restriction(
        self, pending_id: int, *, operator: str, at: datetime, days: int
    ) -> Restriction:
        """The supervisor's confirmation: the restriction and its audit entry, in one transaction with the
        request's decision. Unknown id -> LookupError; already decided -> ValueError."""
        operator = _text(operator, "operator")
        check_days(days)
        async with self._write() as db:
            request = await _undecided(db, pending_id)
            reason = f"{request['reason']} (requested by {request['requested_by']}"
            reason += f", call {request['call_id']})" if request["call_id"] else ")"
            restriction = await _insert_restriction(db, request["number"], reason=reason, operator=operator,
                                                    days=days, decided_at=at)
            await db.execute(
                "UPDATE pending_restrictions SET status = 'confirmed', decided_by = ?, decided_at = ?,"
                " restriction_id = ? WHERE id = ?",
                (operator, _ts(at), restriction.id, pending_id),
            )
        return restriction

    async def reject_pending_restriction(self, pending_id: int, *, operator: str, reason: str, at: datetime) -> None:
        operator, reason = _text(operator, "operator"), _text(reason, "reason")
        async with self._write() as db:
            await _undecided(db, pending_id)
            await db.execute(
                "UPDATE pending_restrictions SET status = 'rejected', decided_by = ?, decided_at = ?,"
                " decision_reason = ? WHERE id = ?",
                (operator, _ts(at), reason, pending_id),
            )

    async def add_ticket(self, ticket_no: str, *, status: str, at: datetime, call_id: str | None = None) -> None:
        """Insert, or record a new status for an existing ticket."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO tickets (ticket_no, status, updated_at, call_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (ticket_no) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,"
                " call_id = COALESCE(excluded.call_id, tickets.call_id)",
                (_text(ticket_no, "ticket_no"), _text(status, "status"), _ts(at), call_id),
            )

    # -- linkage hand-offs (art. 14) and their data pushes -------------------------------------------------------

    async def add_handoff(
        self, *, call_id: str, centre: str, trigger: str, mode: str, requested_at: datetime,
        ticket_id: str | None = None, situation: str | None = None, detail: str | None = None,
    ) -> int:
        values = {"call_id": _text(call_id, "call_id"), "centre": _text(centre, "centre"),
                  "trigger": _handoff_field("trigger", trigger), "mode": _handoff_field("mode", mode),
                  "requested_at": _ts(requested_at), "ticket_id": _handoff_field("ticket_id", ticket_id),
                  "situation": _handoff_field("situation", situation), "detail": _handoff_field("detail", detail)}
        async with self._write() as db:
            cursor = await db.execute(
                f"INSERT INTO handoffs ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})", values
            )
        return int(cursor.lastrowid)

    async def update_handoff(self, handoff_id: int, **fields: Any) -> None:
        """Set ring_at, answered_at, ended_at, result, detail, mode, ticket_id or situation; unknown -> LookupError."""
        values = {name: _handoff_field(name, value) for name, value in fields.items()}
        if not values:
            return
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        async with self._write() as db:
            cursor = await db.execute(f"UPDATE handoffs SET {assignments} WHERE id = :id", {**values, "id": handoff_id})
            if cursor.rowcount == 0:
                raise LookupError(f"no hand-off {handoff_id}")

    async def get_handoff(self, handoff_id: int) -> dict | None:
        rows = await self._db.execute_fetchall(f"SELECT {_HANDOFF_COLUMNS} FROM handoffs WHERE id = ?", (handoff_id,))
        return _handoff(rows[0]) if rows else None

    async def list_handoffs(self, *, call_id: str | None = None, limit: int = 50) -> list[dict]:
        """Newest request first."""
        where, params = ("", ()) if call_id is None else (" WHERE call_id = ?", (call_id,))
        rows = await self._db.execute_fetchall(
            f"SELECT {_HANDOFF_COLUMNS} FROM handoffs{where} ORDER BY requested_at DESC, id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        return [_handoff(row) for row in rows]

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
                (_text(push_id, "push_id"), handoff_id, call_id, _text(centre, "centre"), adapter, _ts(at), _ts(at)),
            )
            rows = await db.execute_fetchall("SELECT id FROM pushes WHERE push_id = ?", (push_id,))
        return int(rows[0][0])

    async def update_push(self, push_row_id: int, *, at: datetime | None = None, **fields: Any) -> None:
        """Set state, attempts and/or last_error; updated_at becomes `at` (default now)."""
        values = {name: _push_field(name, value) for name, value in fields.items()}
        values["updated_at"] = _ts(at or datetime.now(UTC))
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        async with self._write() as db:
            cursor = await db.execute(f"UPDATE pushes SET {assignments} WHERE id = :id", {**values, "id": push_row_id})
            if cursor.rowcount == 0:
                raise LookupError(f"no push {push_row_id}")

    async def list_pushes(self, *, handoff_id: int | None = None, call_id: str | None = None,
                          limit: int = 50) -> list[dict]:
        """Newest first. `in_outbox`: an MQTT push still waiting in the outbox for the broker's PUBACK."""
        clauses, params = [], []
        if handoff_id is not None:
            clauses.append("p.handoff_id = ?")
            params.append(handoff_id)
        if call_id is not None:
            clauses.append("p.call_id = ?")
            params.append(call_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        columns = ", ".join(f"p.{c.strip()}" for c in _PUSH_COLUMNS.split(","))
        rows = await self._db.execute_fetchall(
            f"SELECT {columns}, EXISTS (SELECT 1 FROM outbox AS o WHERE o.message_id = p.push_id) AS in_outbox"
            f" FROM pushes AS p{where} ORDER BY p.created_at DESC, p.id DESC LIMIT ?",
            (*params, max(0, limit)),
        )
        return [{**dict(row), "in_outbox": bool(row["in_outbox"]), "created_at": _dt(row["created_at"]),
                 "updated_at": _dt(row["updated_at"])} for row in rows]


async def _insert_restriction(
    db: aiosqlite.Connection, number: str, *, reason: str, operator: str, days: int, decided_at: datetime
) -> Restriction:
    """Restriction and its 'add' audit entry, inside the caller's transaction."""
    until = restriction_end(decided_at, days)
    cursor = await db.execute(
        "INSERT INTO restrictions (number, reason, operator, days, decided_at, until) VALUES (?,?,?,?,?,?)",
        (number, reason, operator, days, _ts(decided_at), _ts(until)),
    )
    restriction_id = cursor.lastrowid
    await db.execute(
        "INSERT INTO restriction_audit (action, restriction_id, number, operator, reason, at, days, until)"
        " VALUES ('add', ?, ?, ?, ?, ?, ?, ?)",
        (restriction_id, number, operator, reason, _ts(decided_at), days, _ts(until)),
    )
    rows = await db.execute_fetchall(f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions WHERE id = ?", (restriction_id,))
    return _restriction(rows[0])


async def _undecided(db: aiosqlite.Connection, pending_id: int) -> dict:
    rows = await db.execute_fetchall(f"SELECT {_PENDING_COLUMNS} FROM pending_restrictions WHERE id = ?", (pending_id,))
    if not rows:
        raise LookupError(f"no pending restriction request {pending_id}")
    request = _pending(rows[0])
    if request["status"] != "pending":
        raise ValueError(f"restriction request {pending_id} was already {request['status']} "
                         f"by {request['decided_by']}")
    return request


async def _enable_wal(db: aiosqlite.Connection) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite does not run the busy handler for it, so two
    # processes creating the database at once would see "database is locked": retry briefly. WAL persists in the
    # file; later opens find it already set.
    for _ in range(100):
        try:
            rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
            if rows and str(rows[0][0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        await asyncio.sleep(0.05)
    raise RuntimeError("could not switch the database to WAL mode: it stayed locked for 5 s")


def _prepare_bulk(rows: list[tuple[str, str, str, int, datetime]]) -> list[tuple]:
    prepared = []
    for number, reason, operator, days, decided_at in rows:
        until = restriction_end(decided_at, check_days(days))
        prepared.append(
            (normalise_strict(number), _text(reason, "reason"), _text(operator, "operator"), days,
             _ts(decided_at), _ts(until))
        )
    return prepared


def _statements(script: str) -> Iterable[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]!r}")


def _lookup_key(number: str | None) -> str | None:
    # The hot path receives CallerNumber.e164 already; only other spellings pay for phonenumbers.
    if number is None:
        return None
    if _E164.fullmatch(number):
        return number
    return normalise(number).e164


def _ts(value: datetime) -> str:
    return check_aware(value).astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(SHANGHAI)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be non-empty text, got {value!r}")
    return value.strip()


def _restriction(row: sqlite3.Row) -> Restriction:
    return Restriction(
        id=row["id"],
        number=row["number"],
        reason=row["reason"],
        operator=row["operator"],
        decided_at=_dt(row["decided_at"]),
        until=_dt(row["until"]),
        lifted_at=_dt(row["lifted_at"]),
        lifted_by=row["lifted_by"],
        lift_reason=row["lift_reason"],
    )


def _call(row: sqlite3.Row) -> dict:
    call = dict(row)
    call["ivr_path"] = json.loads(call["ivr_path"] or "[]")
    for name in _CALL_TIMES:
        call[name] = _dt(call[name])
    return call


def _call_field(name: str, value: Any) -> Any:
    if name == "ivr_path":
        if not isinstance(value, (list, tuple)) or not all(isinstance(step, str) for step in value):
            raise ValueError(f"ivr_path must be a list of str, got {value!r}")
        return json.dumps(list(value), ensure_ascii=False)
    if name in ("request_type", "emergency", "agent", "ticket_query"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be str or None, got {value!r}")
        return value
    if name == "outcome":
        if value not in CALL_OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(CALL_OUTCOMES)}, got {value!r}")
        return value
    if name in ("queued_at", "answered_at", "ended_at"):
        return None if value is None else _ts(value)
    if name == "priority":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"priority must be int, got {value!r}")
        return value
    raise ValueError(f"unknown call field {name!r}")


def _ticket_field(name: str, value: Any) -> Any:
    if name not in TICKET_FIELDS:
        raise ValueError(f"unknown ticket field {name!r}; known: {', '.join(TICKET_FIELDS)}")
    if name == "status":
        if value not in TICKET_DRAFT_STATUSES:
            raise ValueError(f"status must be one of {sorted(TICKET_DRAFT_STATUSES)}, got {value!r}")
        return value
    if value is None:
        return None
    if name == "due":
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError(f"due must be a date, got {value!r}")
        return value.isoformat()
    if name == "callback_number":
        return normalise_strict(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be str or None, got {value!r}")
    return value


def _ticket(row: sqlite3.Row) -> dict:
    ticket = dict(row)
    ticket["due"] = None if ticket["due"] is None else date.fromisoformat(ticket["due"])
    ticket["created_at"], ticket["updated_at"] = _dt(ticket["created_at"]), _dt(ticket["updated_at"])
    return ticket


def _pending(row: sqlite3.Row) -> dict:
    return {**dict(row), "requested_at": _dt(row["requested_at"]), "decided_at": _dt(row["decided_at"])}


def _handoff_field(name: str, value: Any) -> Any:
    if name == "trigger":
        if value not in HANDOFF_TRIGGERS:
            raise ValueError(f"trigger must be one of {sorted(HANDOFF_TRIGGERS)}, got {value!r}")
        return value
    if name == "mode":
        if value not in HANDOFF_MODES:
            raise ValueError(f"mode must be one of {sorted(HANDOFF_MODES)}, got {value!r}")
        return value
    if name == "result":
        if value is not None and value not in HANDOFF_RESULTS:
            raise ValueError(f"result must be one of {sorted(HANDOFF_RESULTS)}, got {value!r}")
        return value
    if name in ("ring_at", "answered_at", "ended_at"):
        return None if value is None else _ts(value)
    if name in ("ticket_id", "situation", "detail"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be str or None, got {value!r}")
        return value
    raise ValueError(f"unknown hand-off field {name!r}")


def _handoff(row: sqlite3.Row) -> dict:
    handoff = dict(row)
    for name in _HANDOFF_TIMES:
        handoff[name] = _dt(handoff[name])
    return handoff


def _push_field(name: str, value: Any) -> Any:
    if name == "state":
        if value not in PUSH_STATES:
            raise ValueError(f"state must be one of {sorted(PUSH_STATES)}, got {value!r}")
        return value
    if name == "attempts":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"attempts must be an int >= 0, got {value!r}")
        return value
    if name == "last_error":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"last_error must be str or None, got {value!r}")
        return None if value is None else value[:500]
    raise ValueError(f"unknown push field {name!r}")
