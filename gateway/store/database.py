"""The gateway's SQLite store (aiosqlite): restrictions and their audit, call records, ticket drafts, the MQTT
outbox, pending restriction requests, linkage hand-offs and their data pushes.

One connection per process, WAL so readers (the call-entry check) never wait for a writer. Writes take an
asyncio lock and a `BEGIN IMMEDIATE` transaction: the lock stops two coroutines sharing the connection from
interleaving inside one transaction, IMMEDIATE stops two processes (gateway and admin CLI) from deadlocking on
a lock upgrade; busy_timeout makes the loser wait instead of failing.

Durability: WAL with ``synchronous=NORMAL`` syncs only at checkpoints, so the last transactions before a power
loss may roll back. That is the right price for the per-call writes (entry, queueing, outbox: up to hundreds a
second, each redone or superseded by the next event), not for a restriction decision and its audit, which are an
operator's act under art. 9 and must outlive the machine. SQLite's ``synchronous`` is a setting of the connection,
not of a transaction, so ``_write(durable=True)`` raises it to FULL for the one transaction, under the write lock
(no other transaction of this connection can commit meanwhile), and back to NORMAL after: FULL syncs the WAL at
that COMMIT, which also makes every earlier frame durable; later NORMAL commits cannot undo it.

Disk failures (SQLITE_FULL, SQLITE_IOERR, ...) of any write are recorded in ``self.health`` (logged once per
kind, not once per call); the exception still reaches the writer, who decides what the call does without it.

Numbers are E.164 text. Datetimes go in as aware datetimes, are stored as UTC text and come back aware in
Asia/Shanghai (the hotline's civil time).

Layout: this module keeps the connection, the schema and the transaction (`_write`) plus restrictions;
`calls.CallsMixin` adds call records, call entry and queueing; `tickets.TicketsMixin` ticket drafts and status,
caller history and pending restrictions; `handling.HandlingMixin` the units' handling of tickets as the work-order
system reports it; `aftercall.AfterCallMixin` survey ratings, call-back tasks and redos;
`return_calls.ReturnCallsMixin` the automated return calls; `recordings.RecordingsMixin` call recordings and their
access audit; `ticket_access.TicketAccessMixin` public ids, assignments, the
screen-pop log and the console's access audit; `delivery.DeliveryMixin` the outbox, hand-offs and pushes; `rows` holds
the row conversions, field validators and value sets.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from gateway.store import migrations
from gateway.basics.phone import normalise_strict
from gateway.restriction import Restriction, check_days
from gateway.store.aftercall import AfterCallMixin
from gateway.store.calls import CallsMixin
from gateway.basics.write_health import WriteHealth
from gateway.store.delivery import DeliveryMixin
from gateway.store.handling import HandlingMixin
from gateway.store.recordings import RecordingsMixin
from gateway.store.return_calls import ReturnCallsMixin
from gateway.store.rows import (
    RESTRICTION_COLUMNS,
    from_ts,
    insert_restriction,
    lookup_key,
    prepare_bulk,
    restriction_from_row,
    restriction_in_force,
    check_text,
    to_ts,
)
from gateway.store.ticket_access import TicketAccessMixin
from gateway.store.tickets import TicketsMixin

BUSY_TIMEOUT_MS = 5000
STORE_TARGET = "store"


class Store(CallsMixin, TicketsMixin, HandlingMixin, AfterCallMixin, ReturnCallsMixin, RecordingsMixin,
            TicketAccessMixin, DeliveryMixin):
    def __init__(self, db: aiosqlite.Connection, path: Path, health: WriteHealth | None = None) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()
        self.health = health or WriteHealth()

    @classmethod
    async def open(cls, path: str | Path, *, health: WriteHealth | None = None) -> Store:
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
            store = cls(db, path, health)
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
                    (version, to_ts(datetime.now(UTC))),
                )

    @asynccontextmanager
    async def _write(self, *, durable: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; ``durable``: synced to disk at its COMMIT (synchronous=FULL), see above."""
        async with self._write_lock:
            try:
                if durable:
                    await self._db.execute("PRAGMA synchronous = FULL")
                try:
                    await self._db.execute("BEGIN IMMEDIATE")
                    yield self._db
                    await self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        try:
                            await self._db.execute("ROLLBACK")
                        except sqlite3.Error:
                            pass  # SQLite has rolled back already (it does on SQLITE_FULL and SQLITE_IOERR)
                    raise
                finally:
                    if durable:
                        await self._db.execute("PRAGMA synchronous = NORMAL")
            except Exception as exc:
                self.health.failed(STORE_TARGET, exc)
                raise
            self.health.succeeded(STORE_TARGET)

    # -- restrictions -----------------------------------------------------------------------------------------

    async def add_restriction(
        self, number: str, *, reason: str, operator: str, days: int, decided_at: datetime
    ) -> Restriction:
        number = normalise_strict(number)
        reason, operator = check_text(reason, "reason"), check_text(operator, "operator")
        check_days(days)
        async with self._write(durable=True) as db:
            return await insert_restriction(db, number, reason=reason, operator=operator, days=days,
                                             decided_at=decided_at)

    async def add_restrictions_bulk(self, rows: Iterable[tuple[str, str, str, int, datetime]]) -> None:
        """(number, reason, operator, days, decided_at) rows in one transaction, each audited as an 'add'.

        Every number is validated like an operator's (~20 us each in phonenumbers); that runs in a worker thread
        so a large import does not stall calls served by the same event loop.
        """
        prepared = await asyncio.to_thread(prepare_bulk, list(rows))
        async with self._write(durable=True) as db:
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
        key = lookup_key(number)
        return None if key is None else await restriction_in_force(self._db, key, now)

    async def lift_restriction(self, number: str, *, operator: str, reason: str, at: datetime) -> Restriction | None:
        number = normalise_strict(number)
        operator, reason = check_text(operator, "operator"), check_text(reason, "reason")
        async with self._write(durable=True) as db:
            active = await restriction_in_force(db, number, at)
            if active is None:
                return None
            await db.execute(
                "UPDATE restrictions SET lifted_at = ?, lifted_by = ?, lift_reason = ? WHERE id = ?",
                (to_ts(at), operator, reason, active.id),
            )
            await db.execute(
                "INSERT INTO restriction_audit (action, restriction_id, number, operator, reason, at, days, until)"
                " VALUES ('lift', ?, ?, ?, ?, ?, NULL, ?)",
                (active.id, number, operator, reason, to_ts(at), to_ts(active.until)),
            )
            rows = await db.execute_fetchall(
                f"SELECT {RESTRICTION_COLUMNS} FROM restrictions WHERE id = ?", (active.id,)
            )
        return restriction_from_row(rows[0])

    async def list_restrictions(self, now: datetime, *, include_inactive: bool = False) -> list[Restriction]:
        """Newest decision first. By default only those in force at `now` (one per number)."""
        if include_inactive:
            rows = await self._db.execute_fetchall(
                f"SELECT {RESTRICTION_COLUMNS} FROM restrictions ORDER BY decided_at DESC, id DESC"
            )
            return [restriction_from_row(row) for row in rows]
        at = to_ts(now)
        rows = await self._db.execute_fetchall(
            f"SELECT {RESTRICTION_COLUMNS} FROM restrictions AS r"
            " WHERE r.decided_at <= :now AND r.until > :now AND (r.lifted_at IS NULL OR r.lifted_at > :now)"
            " AND NOT EXISTS (SELECT 1 FROM restrictions AS n WHERE n.number = r.number AND n.decided_at <= :now"
            "   AND (n.decided_at > r.decided_at OR (n.decided_at = r.decided_at AND n.id > r.id)))"
            " ORDER BY r.decided_at DESC, r.id DESC",
            {"now": at},
        )
        return [r for r in map(restriction_from_row, rows) if r.is_active(now)]

    async def restriction_audit(self, number: str | None = None) -> list[dict]:
        """Every add and lift, oldest first."""
        sql = "SELECT id, action, restriction_id, number, operator, reason, at, days, until FROM restriction_audit"
        params: tuple = ()
        if number is not None:
            sql += " WHERE number = ?"
            params = (normalise_strict(number),)
        rows = await self._db.execute_fetchall(sql + " ORDER BY id", params)
        return [{**dict(row), "at": from_ts(row["at"]), "until": from_ts(row["until"])} for row in rows]


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


def _statements(script: str) -> Iterable[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]!r}")
