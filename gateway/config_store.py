"""The ``[store]`` settings: the SQLite file of one machine, or the PostgreSQL database several gateways share."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.basics.store_url import is_postgres_url
from gateway.config_checks import SettingsReader

__all__ = ["StoreSection", "read_store"]


@dataclass(frozen=True)
class StoreSection:
    path: Path                      # the SQLite file
    url: str                        # "": the SQLite file at ``path``; else a postgresql:// URL
    pool_max: int                   # PostgreSQL connections this gateway keeps at most
    prepared_statements: bool       # false behind PgBouncer in transaction mode
    wait_timeout_s: float           # how long a statement waits for a connection while PostgreSQL is away

    @property
    def location(self) -> str:
        """What `Store.open` takes: the PostgreSQL URL, else the SQLite file's path."""
        return self.url or str(self.path)

    @property
    def pool(self) -> dict[str, Any]:
        """The PostgreSQL pool's settings (`Store.open`'s keywords); none for SQLite."""
        if not self.url:
            return {}
        return {"max_size": self.pool_max, "prepared_statements": self.prepared_statements,
                "wait_timeout": self.wait_timeout_s}


def read_store(r: SettingsReader, state: Path) -> StoreSection:
    path = r.get("store.path", str)
    return StoreSection(
        path=Path(path) if path else state / "hotline.db",
        url=r.get("store.url", str, check=lambda v: v == "" or is_postgres_url(v),
                  reason="must be empty (SQLite at store.path) or a postgresql:// URL"),
        pool_max=r.get("store.pool_max", int, check=lambda v: 1 <= v <= 100, reason="must be 1-100"),
        prepared_statements=r.get("store.prepared_statements", bool),
        wait_timeout_s=r.get("store.wait_timeout_s", float, check=lambda v: v > 0, reason="must be greater than 0"),
    )
