"""The PostgreSQL backend: placeholders, migrations, and several gateways on one database."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import psycopg
import pytest

from gateway.basics.clock import SHANGHAI
from gateway.basics.write_health import failure_kind
from gateway.store.backends.postgres import masked_url, to_pyformat
from gateway.store.database import Store
from gateway.store.schema import postgres_migrations, sqlite_migrations

T0 = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI)


# -- the SQL both backends share -------------------------------------------------------------------------------

@pytest.mark.parametrize("sqlite, postgres", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("UPDATE t SET a = :a WHERE id = :id", "UPDATE t SET a = %(a)s WHERE id = %(id)s"),
    ("SELECT '?', ':x', 'it''s ?' FROM t WHERE a = ?", "SELECT '?', ':x', 'it''s ?' FROM t WHERE a = %s"),
    ("SELECT 5 % 2, '100%' -- 50% ?\nFROM t", "SELECT 5 %% 2, '100%%' -- 50%% ?\nFROM t"),
    ("SELECT x::text FROM t WHERE y = :y", "SELECT x::text FROM t WHERE y = %(y)s"),
    ('SELECT "a?b" FROM t', 'SELECT "a?b" FROM t'),
])
def test_placeholders_translate_outside_literals_and_comments(sqlite, postgres):
    assert to_pyformat(sqlite) == postgres


def test_a_password_never_reaches_a_message():
    assert masked_url("postgresql://hotline:s3cr:et@db:5432/h") == "postgresql://hotline:***@db:5432/h"
    assert masked_url("postgresql://db/h") == "postgresql://db/h"


def test_both_backends_end_at_the_same_schema_version():
    assert sqlite_migrations.MIGRATIONS[-1][0] == postgres_migrations.MIGRATIONS[-1][0]


def test_a_lost_server_is_a_health_failure_and_a_bad_statement_is_not():
    assert failure_kind(psycopg.OperationalError("connection refused")) == "database_unreachable"
    assert failure_kind(psycopg.errors.AdminShutdown("terminating connection")) == "database_unreachable"
    assert failure_kind(psycopg.errors.DiskFull("no space left")) == "disk_full"
    assert failure_kind(psycopg.errors.UniqueViolation("duplicate key")) is None
    assert failure_kind(psycopg.errors.UndefinedTable("no such table")) is None


# -- migrations ------------------------------------------------------------------------------------------------

async def test_gateways_starting_together_apply_each_migration_once(postgres_cluster):
    postgres_cluster.psql("CREATE DATABASE fresh_start")
    try:
        url = postgres_cluster.url("fresh_start")
        stores = await asyncio.gather(*(Store.open(url) for _ in range(4)))
        try:
            rows = await stores[0]._db.execute_fetchall("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in rows] == [v for v, _ in postgres_migrations.MIGRATIONS]
        finally:
            for s in stores:
                await s.close()
    finally:
        postgres_cluster.psql("DROP DATABASE fresh_start WITH (FORCE)")


async def test_a_database_newer_than_the_code_is_refused(postgres_url, monkeypatch):
    monkeypatch.setattr(postgres_migrations, "MIGRATIONS", postgres_migrations.MIGRATIONS[:1])
    with pytest.raises(RuntimeError, match="newer than this code"):
        await Store.open(postgres_url)


async def test_a_new_migration_is_applied_once(postgres_url, monkeypatch):
    last = postgres_migrations.MIGRATIONS[-1][0]
    monkeypatch.setattr(postgres_migrations, "MIGRATIONS", [
        *postgres_migrations.MIGRATIONS, (last + 1, "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (1);")])
    for _ in range(2):
        async with await Store.open(postgres_url) as store:
            assert await store.schema_version() == last + 1
            assert [tuple(r) for r in await store._db.execute_fetchall("SELECT x FROM extra")] == [(1,)]


# -- two gateways, one database --------------------------------------------------------------------------------

@pytest.fixture
async def two_gateways(postgres_url):
    a, b = await Store.open(postgres_url), await Store.open(postgres_url)
    yield a, b
    await a.close()
    await b.close()


async def test_a_restriction_added_on_one_gateway_refuses_the_caller_on_the_other(two_gateways):
    a, b = two_gateways
    await a.add_restriction("+8613800138000", reason="辱骂", operator="lead1", days=30, decided_at=T0)
    refused = await b.enter_call(call_id="b-1", number="+8613800138000", channel="PJSIP/t", at=T0 + timedelta(1))
    assert refused is not None and (await a.get_call("b-1"))["outcome"] == "blocked"


async def test_tickets_numbered_at_once_on_two_gateways_are_distinct_and_consecutive(two_gateways):
    a, b = two_gateways

    async def queue(store, n):
        call = f"{store is a}-{n}"
        await store.enter_call(call_id=call, number=None, channel="PJSIP/t", at=T0)
        return await store.queue_call(call, ivr_path=["1"], request_type="consult", emergency=None, priority=3,
                                      ticket_query=None, ticket_type="consult", due=None, at=T0)

    tickets = await asyncio.gather(*(queue(a if n % 2 else b, n) for n in range(120)))
    assert sorted(tickets) == [f"20261201{n:05d}" for n in range(1, 121)]


async def test_each_outbox_row_is_published_by_one_gateway_only(two_gateways):
    a, b = two_gateways
    for n in range(60):
        await a.outbox_add(f"hotline/agents/agent{n % 3}/screenpop", {"n": n}, message_id=f"m{n}", at=T0)
    published: dict[str, list[int]] = {"gw-a": [], "gw-b": [], "gw-a2": []}
    order: list[int] = []

    async def publisher(store, name):
        while True:
            rows = await store.outbox_claim(name, 7)
            if not rows:
                if not await store.outbox_pending(1):
                    return
                await asyncio.sleep(0.01)
                continue
            for row in rows:
                published[name].append(row["payload"]["n"])
                order.append(row["payload"]["n"])
                await store.outbox_remove(row["seq"])

    await asyncio.gather(publisher(a, "gw-a"), publisher(b, "gw-b"), publisher(a, "gw-a2"))
    everything = [n for ns in published.values() for n in ns]
    # which publisher wins each claim is up to the scheduler (one may take them all): every row once, in order
    assert sorted(everything) == list(range(60))
    for agent in range(3):      # one agent's pops in the order they were queued, whoever sent them
        assert [n for n in order if n % 3 == agent] == list(range(agent, 60, 3))


async def test_one_agents_pops_wait_while_another_gateway_holds_an_earlier_one(two_gateways):
    a, b = two_gateways
    for n in range(4):
        await a.outbox_add("hotline/agents/agent1/screenpop", {"n": n}, message_id=f"m{n}", at=T0)
    await a.outbox_add("hotline/agents/agent2/screenpop", {"n": 9}, message_id="other", at=T0)
    held = await a.outbox_claim("gw-a", 1, now=T0)
    assert [r["payload"]["n"] for r in held] == [0]
    # gw-b may not overtake agent1's first pop, but agent2's is free
    assert [r["payload"]["n"] for r in await b.outbox_claim("gw-b", 10, now=T0)] == [9]
    # gw-a stopped without sending: once its claim runs out gw-b takes agent1's pops, in order
    later = await b.outbox_claim("gw-b", 10, now=T0 + timedelta(seconds=60))
    assert [r["payload"]["n"] for r in later] == [0, 1, 2, 3, 9]


async def test_a_failing_migration_leaves_nothing_behind(postgres_url, monkeypatch):
    last = postgres_migrations.MIGRATIONS[-1][0]
    monkeypatch.setattr(postgres_migrations, "MIGRATIONS", [
        *postgres_migrations.MIGRATIONS, (last + 1, "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);")])
    with pytest.raises(psycopg.errors.UndefinedTable):
        await Store.open(postgres_url)
    monkeypatch.undo()
    async with await Store.open(postgres_url) as store:
        assert await store.schema_version() == last
        assert not await store._db.execute_fetchall("SELECT 1 FROM pg_tables WHERE tablename = 'half'")
