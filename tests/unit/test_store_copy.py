"""`hotline store copy`: an office's store moved between SQLite and PostgreSQL with nothing lost."""
from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest

from gateway.cli import store as cli_store
from gateway.store.copying import TABLES, CopyRefused, copy_store, table_digest
from gateway.store.database import Store
from gateway.store.schema.sqlite_migrations import MIGRATIONS
from tests.conftest import store_section
from tests.office_store import CALLER, T0, fill_office


@pytest.fixture
async def office(tmp_path):
    path = tmp_path / "office.sqlite"
    async with await Store.open(path) as store:
        await fill_office(store)
    return path


async def digests(location) -> dict[str, tuple[int, str]]:
    async with await Store.open(location) as store:
        return {table: await table_digest(store, table, key) for table, key in TABLES}


async def test_every_table_reaches_postgres_and_back_unchanged(office, postgres_url, tmp_path):
    before = await digests(office)
    assert all(rows > 0 for rows, _ in before.values()), [t for t, (rows, _) in before.items() if rows == 0]
    async with await Store.open(office) as source, await Store.open(postgres_url) as target:
        results = await copy_store(source, target)
    assert [r.table for r in results] == [t for t, _ in TABLES] and all(r.matches for r in results)
    assert await digests(postgres_url) == before
    back = tmp_path / "back.sqlite"
    async with await Store.open(postgres_url) as source, await Store.open(back) as target:
        assert all(r.matches for r in await copy_store(source, target))
    assert await digests(back) == before


async def test_the_copy_goes_on_where_the_office_stopped(office, postgres_url):
    async with await Store.open(office) as source, await Store.open(postgres_url) as target:
        await copy_store(source, target)
        old_ids = {r.id for r in await source.list_restrictions(T0, include_inactive=True)}
        added = await target.add_restriction("+8613500003333", reason="骚扰", operator="lead1", days=30,
                                             decided_at=T0 + timedelta(days=2))
        assert added.id > max(old_ids)
        # the day's ticket numbering continues after the copied tickets
        ticket = await target.queue_call("later.1", ivr_path=["1"], request_type="consult", emergency=None,
                                         priority=3, ticket_query=None, ticket_type="consult", due=None,
                                         at=T0 + timedelta(hours=1))
        assert ticket == T0.strftime("%Y%m%d") + "00004"
        assert (await target.caller_history(CALLER, now=T0 + timedelta(days=1)))["calls_total"] == 3
        assert len(await target.outbox_claim("gw-b", 10)) == 3
        assert len(await target.restriction_audit()) == len(await source.restriction_audit()) + 1


async def test_a_destination_holding_data_is_refused(office, postgres_url):
    async with await Store.open(postgres_url) as target:
        await target.add_restriction(CALLER, reason="x", operator="op", days=1, decided_at=T0)
        async with await Store.open(office) as source:
            with pytest.raises(CopyRefused, match="not empty: restrictions"):
                await copy_store(source, target)


async def test_a_changed_row_changes_the_digest(office):
    async with await Store.open(office) as store:
        before = await table_digest(store, "calls", "call_id")
        await store.update_call("1764000001.1", agent="agent9")
        after = await table_digest(store, "calls", "call_id")
    assert before[0] == after[0] and before[1] != after[1]


async def test_the_command_copies_and_reports_each_table(office, postgres_url, cli):
    config = SimpleNamespace(store=store_section(office))
    run = cli(config, cli_store)
    code, out, err = await run("store", "copy", "--to", postgres_url, "--json")
    report = json.loads(out)
    assert code == 0 and err == "" and "***" in report["to"] and postgres_url not in out
    assert {t["table"] for t in report["tables"] if t["match"] and t["rows"] == t["copied"]} == {t for t, _ in TABLES}
    code, _, err = await run("store", "copy", "--to", postgres_url)
    assert code == 2 and "not empty" in err
    code, out, _ = await run("store", "migrate", "--to", postgres_url)
    assert code == 0 and f"schema version {MIGRATIONS[-1][0]}" in out
