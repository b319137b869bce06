"""The gateway's SQLite store (aiosqlite): restrictions and their audit, call records, ticket status.

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
from datetime import UTC, datetime
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
        until = restriction_end(decided_at, check_days(days))
        async with self._write() as db:
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
            rows = await db.execute_fetchall(
                f"SELECT {_RESTRICTION_COLUMNS} FROM restrictions WHERE id = ?", (restriction_id,)
            )
        return _restriction(rows[0])

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
        rows = await self._db.execute_fetchall(
            "SELECT ticket_no, status, updated_at FROM tickets WHERE ticket_no = ?", (ticket_no,)
        )
        if not rows:
            return None
        return {**dict(rows[0]), "updated_at": _dt(rows[0]["updated_at"])}

    async def add_ticket(self, ticket_no: str, *, status: str, at: datetime, call_id: str | None = None) -> None:
        """Insert, or record a new status for an existing ticket."""
        async with self._write() as db:
            await db.execute(
                "INSERT INTO tickets (ticket_no, status, updated_at, call_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (ticket_no) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,"
                " call_id = COALESCE(excluded.call_id, tickets.call_id)",
                (_text(ticket_no, "ticket_no"), _text(status, "status"), _ts(at), call_id),
            )


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
