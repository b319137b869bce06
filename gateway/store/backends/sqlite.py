"""The SQLite backend of the store (aiosqlite): one file, the embedded default for one machine.

One connection per process, WAL so readers (the call-entry check) never wait for a writer. Writes take an
asyncio lock and a `BEGIN IMMEDIATE` transaction: the lock stops two coroutines sharing the connection from
interleaving inside one transaction, IMMEDIATE stops two processes (gateway and admin CLI) from deadlocking on
a lock upgrade; busy_timeout makes the loser wait instead of failing. Every write is therefore serial, which
is what ``write(serial=True)`` asks of the PostgreSQL backend.

Durability: WAL with ``synchronous=NORMAL`` syncs only at checkpoints, so the last transactions before a power
loss may roll back. That is the right price for the per-call writes (entry, queueing, outbox: up to hundreds a
second, each redone or superseded by the next event), not for a restriction decision and its audit, which are an
operator's act under art. 9 and must outlive the machine. SQLite's ``synchronous`` is a setting of the connection,
not of a transaction, so ``write(durable=True)`` raises it to FULL for the one transaction, under the write lock
(no other transaction of this connection can commit meanwhile), and back to NORMAL after: FULL syncs the WAL at
that COMMIT, which also makes every earlier frame durable; later NORMAL commits cannot undo it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from gateway.store.schema import sqlite_migrations as migrations
from gateway.store.rows import to_ts

__all__ = ["SQLiteBackend"]

BUSY_TIMEOUT_MS = 5000


class SQLiteBackend:
    """Connection, transactions and migrations of one SQLite file."""

    name = "sqlite"
    shared = False          # one gateway per file: nothing to claim from another (outbox_claim)

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self.reader = db
        self.path = path
        self._lock = asyncio.Lock()

    @property
    def target(self) -> str:
        return f"sqlite:{self.path}"

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteBackend:
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
            backend = cls(db, path)
            await backend.migrate()
        except BaseException:
            await db.close()
            raise
        return backend

    async def close(self) -> None:
        await self.reader.close()

    async def schema_version(self) -> int:
        rows = await self.reader.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    async def migrate(self) -> None:
        latest = migrations.check_versions(migrations.MIGRATIONS)
        await self.reader.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = await self.schema_version()
        if current > latest:
            raise RuntimeError(f"{self.path}: schema version {current} is newer than this code ({latest})")
        for version, sql in migrations.MIGRATIONS:
            if version <= current:
                continue
            async with self.write() as db:
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

    async def after_copy(self, tables: list[str]) -> None:
        """Nothing to do after a copy: a rowid (and AUTOINCREMENT's sqlite_sequence) follows the largest id
        inserted, explicit ones included."""

    @asynccontextmanager
    async def write(self, *, durable: bool = False, serial: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction; ``durable``: synced to disk at its COMMIT (synchronous=FULL), see above."""
        async with self._lock:
            if durable:
                await self.reader.execute("PRAGMA synchronous = FULL")
            try:
                await self.reader.execute("BEGIN IMMEDIATE")
                yield self.reader
                await self.reader.execute("COMMIT")
            except BaseException:
                if self.reader.in_transaction:
                    try:
                        await self.reader.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite has rolled back already (it does on SQLITE_FULL and SQLITE_IOERR)
                raise
            finally:
                if durable:
                    await self.reader.execute("PRAGMA synchronous = NORMAL")


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
