"""Moving an office's store from one backend to the other (`hotline store copy`), with nothing lost.

Both stores are opened at the latest schema version (the source is migrated first, as the gateway would on its
next start). The destination must be empty. Every table is copied in primary-key order, in batches, each batch one
transaction; then each table's id generator is moved past the copied ids, and both sides are read back: the row
count and a SHA-256 over every row (columns by name, values as JSON) must be equal on both, table by table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gateway.store.database import Store

__all__ = ["TABLES", "CopyRefused", "TableCopy", "copy_store", "table_digest"]

# Every table of the schema but schema_migrations, parents before the tables that refer to them, with the primary
# key that orders the copy and the read-back.
TABLES: tuple[tuple[str, str], ...] = (
    ("restrictions", "id"), ("restriction_audit", "id"), ("calls", "call_id"), ("blocked_attempts", "id"),
    ("tickets", "ticket_no"), ("ticket_drafts", "ticket_id"), ("ticket_sequences", "day"), ("outbox", "seq"),
    ("pending_restrictions", "id"), ("handoffs", "id"), ("pushes", "id"), ("ticket_assignments", "id"),
    ("screenpops", "id"), ("ticket_access_audit", "id"), ("ticket_status_log", "id"), ("ratings", "id"),
    ("callback_tasks", "id"), ("callback_attempts", "id"), ("ticket_redos", "ticket_id"), ("return_calls", "id"),
    ("call_recordings", "call_id"), ("recording_access_audit", "id"), ("announcements", "id"),
    ("export_cursors", "name"),
)
BATCH = 2000


class CopyRefused(Exception):
    """The copy cannot start (the destination holds data, the schema versions differ); the message says why."""


@dataclass(frozen=True)
class TableCopy:
    table: str
    source_rows: int
    copied_rows: int
    source_digest: str
    copied_digest: str

    @property
    def matches(self) -> bool:
        return self.source_rows == self.copied_rows and self.source_digest == self.copied_digest


async def _rows(store: Store, table: str, key: str) -> AsyncIterator[list[Any]]:
    """The table's rows in key order, a batch at a time (keyset paging: no OFFSET scans)."""
    last: Any = None
    while True:
        where = "" if last is None else f" WHERE {key} > ?"
        batch = await store._db.execute_fetchall(
            f"SELECT * FROM {table}{where} ORDER BY {key} LIMIT {BATCH}", () if last is None else (last,))
        batch = list(batch)
        if not batch:
            return
        yield batch
        last = batch[-1][key]


def _canonical(row: Any) -> bytes:
    return json.dumps({name: row[name] for name in sorted(row.keys())}, ensure_ascii=False,
                      separators=(",", ":")).encode()


async def table_digest(store: Store, table: str, key: str) -> tuple[int, str]:
    """(rows, SHA-256 hex of the rows in key order)."""
    digest, count = hashlib.sha256(), 0
    async for batch in _rows(store, table, key):
        for row in batch:
            digest.update(_canonical(row))
            digest.update(b"\n")
            count += 1
    return count, digest.hexdigest()


async def copy_store(source: Store, destination: Store) -> list[TableCopy]:
    """Copy every table from ``source`` to the empty ``destination`` and check the copy (see above)."""
    versions = await source.schema_version(), await destination.schema_version()
    if versions[0] != versions[1]:
        raise CopyRefused(f"schema versions differ: source {versions[0]}, destination {versions[1]}")
    for table, _ in TABLES:
        rows = await destination._db.execute_fetchall(f"SELECT COUNT(*) FROM {table}")
        if int(list(rows)[0][0]):
            raise CopyRefused(f"the destination is not empty: {table} holds rows ({destination.target})")
    for table, key in TABLES:
        async for batch in _rows(source, table, key):
            columns = list(batch[0].keys())
            sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})")
            async with destination._write() as db:
                await db.executemany(sql, [tuple(row[c] for c in columns) for row in batch])
    await destination.backend.after_copy([table for table, _ in TABLES])
    results = []
    for table, key in TABLES:
        source_rows, source_digest = await table_digest(source, table, key)
        copied_rows, copied_digest = await table_digest(destination, table, key)
        results.append(TableCopy(table, source_rows, copied_rows, source_digest, copied_digest))
    return results
