"""The PostgreSQL backend of the store: the shared database of several gateways (docs/deploy.md).

psycopg 3 with psycopg_pool rather than asyncpg: psycopg's ``%s`` / ``%(name)s`` placeholders are a mechanical
translation of the ``?`` / ``:name`` of sqlite3, so both backends run the same SQL text (`to_pyformat`); and
psycopg_pool replaces dropped connections, so the store reconnects by itself to a database that went away. asyncpg's
``$n`` placeholders would need every query written twice, and its statement cache prepares every statement,
which PgBouncer in transaction mode breaks (a prepared statement lives on one server connection, the next
transaction may get another). psycopg prepares a statement only after it has run ``prepare_threshold`` times on
one connection; behind PgBouncer in transaction mode set ``store.prepared_statements = false`` (no server-side
prepared statements at all).

The schema keeps SQLite's value conventions (times as fixed-width UTC ISO text, flags as 0/1), so the row code,
the checksums of `hotline store copy` and the tests are one for both backends.

Transactions: READ COMMITTED, the default. The per-call writes (call entry, queue events, outbox rows, ticket
numbers) are single-row upserts and updates that are safe under it; a write that reads and then decides (a
restriction lifted, a pending request confirmed, a redo allowed once, a return call scheduled once) asks for
``serial=True`` and takes one transaction-scoped advisory lock, so such writes run one at a time across all
gateways, as every write does on SQLite. A ``durable`` write (an operator's act: a restriction decision, a
rating, a redo) is serial too. Every PostgreSQL commit is flushed (synchronous_commit stays on), durable or not.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from gateway.basics.write_health import failure_kind
from gateway.store.schema import postgres_migrations
from gateway.store.schema.sqlite_migrations import check_versions
from gateway.store.rows import to_ts

__all__ = ["PgRow", "PostgresBackend", "masked_url", "to_pyformat"]

# pg_advisory_xact_lock keys: the serial writers' lock and the migrations' lock ("hotl" and "migr" in ASCII).
WRITE_LOCK = 0x686F746C
MIGRATION_LOCK = 0x6D696772
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RETRY_AFTER_S = 1.0


@lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """sqlite3's ``?`` and ``:name`` placeholders as psycopg's ``%s`` and ``%(name)s``; a literal ``%`` doubled.

    String literals, quoted identifiers and comments are copied as they are (a ``?`` or ``:`` inside them is
    text), apart from the doubling of ``%`` that psycopg needs everywhere. ``::`` casts are left alone.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:    # '' inside a literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == ":" and (i + 1 < n and sql[i + 1] == ":" or i > 0 and sql[i - 1] == ":"):
            out.append(c)
            i += 1
        elif c == ":" and (match := _NAME.match(sql, i + 1)):
            out.append(f"%({match.group()})s")
            i = match.end()
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _value(value: Any) -> Any:
    # The values sqlite3 stores as it takes them, converted the same way: flags as 0/1 (the columns are integers),
    # dates as ISO text (sqlite3's default adapter; the columns are text).
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def _params(params: Any) -> Any:
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {key: _value(v) for key, v in params.items()}
    return tuple(_value(v) for v in params)


class PgRow(tuple):
    """A result row read by position or by column name, like ``sqlite3.Row`` (``dict(row)`` works)."""

    __slots__ = ()
    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    return type("Row", (PgRow,), {"__slots__": (), "_index": {name: i for i, name in enumerate(names)}})


def _row_factory(cursor: Any) -> Any:
    return _row_class(tuple(col.name for col in cursor.description or ()))


class _Result:
    """What ``execute`` returns: the rows affected, and the rows of a ``RETURNING`` or ``SELECT``."""

    def __init__(self, rowcount: int, rows: list[PgRow]) -> None:
        self.rowcount = rowcount
        self.rows = rows

    async def fetchall(self) -> list[PgRow]:
        return self.rows


class PgConnection:
    """One connection (in a transaction, or lent by the pool per statement) with the calls the store makes of an
    aiosqlite connection: ``execute``, ``execute_fetchall``, ``executemany``."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Any = None) -> _Result:
        async with self._conn.cursor() as cur:
            await cur.execute(to_pyformat(sql), _params(params))
            rows = await cur.fetchall() if cur.description else []
            return _Result(cur.rowcount, rows)

    async def execute_fetchall(self, sql: str, params: Any = None) -> list[PgRow]:
        return (await self.execute(sql, params)).rows

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        async with self._conn.cursor() as cur:
            await cur.executemany(to_pyformat(sql), [_params(p) for p in seq])


class _PoolReader:
    """Reads outside a write transaction: each statement on a connection the pool lends (autocommit)."""

    def __init__(self, lend: Any) -> None:
        self._lend = lend

    async def execute(self, sql: str, params: Any = None) -> _Result:
        async with self._lend() as conn:
            return await PgConnection(conn).execute(sql, params)

    async def execute_fetchall(self, sql: str, params: Any = None) -> list[PgRow]:
        return (await self.execute(sql, params)).rows


def masked_url(url: str) -> str:
    """The URL with its password replaced, for logs and messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class PostgresBackend:
    """A connection pool on one PostgreSQL database, its transactions and migrations."""

    name = "postgres"
    shared = True           # several gateways: outbox rows are claimed (outbox_claim)
    path = None

    def __init__(self, pool: AsyncConnectionPool, url: str) -> None:
        self._pool = pool
        self.url = url
        self.reader = _PoolReader(self._connection)
        self._unreachable_until = 0.0
        self._checking: asyncio.Task | None = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A connection of the pool. While the database is away each statement would wait ``wait_timeout`` for
        one, and a call makes several: so for ``RETRY_AFTER_S`` after a failure to reach it, statements fail at
        once, and then one tries again (a circuit breaker). The pool reconnects in the background meanwhile."""
        if time.monotonic() < self._unreachable_until:
            raise psycopg.OperationalError("the database could not be reached a moment ago")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            if failure_kind(exc) == "database_unreachable":
                self._unreachable_until = time.monotonic() + RETRY_AFTER_S
                if self._checking is None or self._checking.done():
                    # the other idle connections are likely dead too (a restarted server): replace them now
                    self._checking = asyncio.get_running_loop().create_task(self._pool.check())
            raise

    @property
    def target(self) -> str:
        return masked_url(self.url)

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 8, prepared_statements: bool = True,
                   connect_timeout: float = 5.0, wait_timeout: float = 10.0) -> PostgresBackend:
        """Open the pool (waiting for the first connection) and apply the migrations.

        ``wait_timeout``: how long a statement waits for a connection while the database is away, after which
        it fails (psycopg_pool.PoolTimeout, an OperationalError) and the caller's fallback runs; the pool goes on
        reconnecting in the background."""
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": _row_factory,
                                  "prepare_threshold": 5 if prepared_statements else None,
                                  "connect_timeout": max(1, round(connect_timeout)),
                                  "application_name": "hotline-gateway"}
        # No check of each connection as it is lent (a round trip per statement, which doubled the call-entry
        # check's latency): a connection that fails is dropped by the pool, and a failure to reach the database
        # has the pool test all its idle ones (`_connection`).
        pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, kwargs=kwargs, open=False,
                                   timeout=wait_timeout, name="hotline-store")
        try:
            await pool.open(wait=True, timeout=wait_timeout)
            backend = cls(pool, url)
            await backend.migrate()
        except BaseException:
            await pool.close()
            raise
        return backend

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        await self._pool.close()

    async def schema_version(self) -> int:
        rows = await self.reader.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    async def migrate(self) -> None:
        """Apply the missing migrations in one transaction (PostgreSQL's DDL is transactional: all or none) under
        a transaction-scoped advisory lock, so that gateways starting together apply each once; being one
        transaction, it also runs as it should through PgBouncer in transaction mode."""
        latest = check_versions(postgres_migrations.MIGRATIONS)
        async with self._connection() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                                   " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
                cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                current = int((await cur.fetchone())[0])
                if current > latest:
                    raise RuntimeError(f"{self.target}: schema version {current} is newer than this code ({latest})")
                for version, sql in postgres_migrations.MIGRATIONS:
                    if version <= current:
                        continue
                    await conn.execute(sql)     # no parameters: psycopg sends the script as it is
                    await conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                                       (version, to_ts(datetime.now(UTC))))

    async def after_copy(self, tables: list[str]) -> None:
        """Move each identity past the largest id copied into ``tables``, so new rows never take a copied id."""
        columns = await self.reader.execute_fetchall(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND is_identity = 'YES'")
        async with self.write(serial=True) as db:
            for table, column in columns:
                if table in tables:
                    await db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                                     f" COALESCE(MAX({column}), 0) + 1, false) FROM {table}")

    @asynccontextmanager
    async def write(self, *, durable: bool = False, serial: bool = False) -> AsyncIterator[PgConnection]:
        """One write transaction on a connection of the pool; ``serial``: one at a time across gateways."""
        async with self._connection() as conn:
            async with conn.transaction():
                if serial or durable:
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield PgConnection(conn)
