"""Fixtures every kind of test uses.

``store`` is a fresh store on each backend: the test ids say which (``[sqlite]``, ``[postgres]``). PostgreSQL is a
throwaway cluster from the Debian package, started once per test session by `gateway.sandbox.postgres_cluster`
(its own port and data directory, a random password) and removed at the end; each test gets a database of its
own, copied from a template that has every migration applied.
"""
from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import pytest

from gateway.config_store import StoreSection
from gateway.sandbox.postgres_cluster import PostgresCluster
from gateway.store.database import Store

BACKENDS = ("sqlite", "postgres")
_TEMPLATE = "hotline_template"


def store_section(location: str | Path) -> StoreSection:
    """The ``[store]`` section of a configuration whose store is at ``location`` (a SQLite path or a URL)."""
    url = str(location) if str(location).startswith("postgresql://") else ""
    return StoreSection(path=Path("/nonexistent") if url else Path(location), url=url, pool_max=4,
                        prepared_statements=True, wait_timeout_s=2.0)


@pytest.fixture(scope="session")
def postgres_cluster():
    """The session's PostgreSQL cluster, with a migrated template database."""
    cluster = PostgresCluster.create(Path(tempfile.mkdtemp(prefix="hotline-pg-")))
    try:
        cluster.psql(f"CREATE DATABASE {_TEMPLATE}")
        asyncio.run(_migrate(cluster.url(_TEMPLATE)))
        yield cluster
    finally:
        cluster.remove()


async def _migrate(url: str) -> None:
    await (await Store.open(url)).close()


@pytest.fixture
def postgres_url(postgres_cluster):
    """The URL of a fresh, migrated database of the session's cluster, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres_cluster.psql(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
    yield postgres_cluster.url(name)
    postgres_cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def store_location(request, tmp_path):
    """Where a fresh store is: a SQLite path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "hotline.sqlite")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def store(store_location):
    """A fresh store with every migration applied, on each backend."""
    s = await Store.open(store_location)
    yield s
    await s.close()
