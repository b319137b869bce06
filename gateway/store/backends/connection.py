"""What the store's SQL runs on, whichever the backend: an aiosqlite connection or `postgres.PgConnection`.

The SQL is sqlite3's (``?`` and ``:name`` placeholders); the PostgreSQL backend translates the placeholders.
Rows are read by position or by column name, and ``dict(row)`` gives the columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

__all__ = ["StoreConnection"]


class StoreConnection(Protocol):
    async def execute(self, sql: str, params: Any = ...) -> Any: ...
    async def execute_fetchall(self, sql: str, params: Any = ...) -> Iterable[Any]: ...
    async def executemany(self, sql: str, seq: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Any: ...
