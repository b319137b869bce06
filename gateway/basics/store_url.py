"""Which store a location names: a PostgreSQL URL (``postgresql://`` or ``postgres://``), else a SQLite file.
Shared by the configuration check and `gateway.store.database.Store.open`, which must agree."""
from __future__ import annotations

__all__ = ["POSTGRES_SCHEMES", "is_postgres_url"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)
