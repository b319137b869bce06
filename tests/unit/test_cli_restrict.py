import argparse
import inspect
import json
from datetime import datetime
from types import SimpleNamespace

import pytest

from gateway.cli import restrict as cli_restrict
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from tests.conftest import store_section

NUMBER = "+8613800138000"


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(store=store_section(tmp_path / "state" / "hotline.sqlite"),
                           restriction=SimpleNamespace(default_days=30))


@pytest.fixture
def clock(monkeypatch):
    """A frozen clock the handlers read through cli_restrict.now(); set clock.now to move it."""
    state = SimpleNamespace(now=sh(2026, 3, 1, 15, 0))
    monkeypatch.setattr(cli_restrict, "now", lambda: state.now)
    return state


@pytest.fixture
def run(cli, config):
    return cli(config, cli_restrict)


async def test_add_prints_the_until_date_and_check_sees_it(run, clock):
    code, out, err = await run("restrict", "add", "138 0013 8000", "--reason", "insulted staff", "--operator", "li")
    assert code == 0, err
    assert "+8613800138000" in out
    assert "2026-04-01T00:00:00+08:00" in out and "last day 2026-03-31" in out and "30 days" in out

    clock.now = sh(2026, 3, 31, 23, 59, 59)
    code, out, _ = await run("restrict", "check", "0086 138 0013 8000", "--json")
    assert code == 0
    assert out.strip() == ('{"number": "+8613800138000", "restricted": true, "until": "2026-04-01T00:00:00+08:00", '
                           '"reason": "insulted staff"}')

    clock.now = sh(2026, 4, 1, 0, 0)
    code, out, _ = await run("restrict", "check", "13800138000", "--json")
    assert json.loads(out) == {"number": NUMBER, "restricted": False, "until": None, "reason": None}


async def test_add_decided_after_midnight_counts_from_the_local_day(run, clock):
    clock.now = sh(2026, 3, 1, 1, 0)  # 2026-02-28 in UTC
    await run("restrict", "add", NUMBER, "--reason", "threats", "--operator", "li")
    clock.now = sh(2026, 3, 31, 23, 0)
    _, out, _ = await run("restrict", "check", NUMBER, "--json")
    assert json.loads(out)["until"] == "2026-04-01T00:00:00+08:00"


async def test_add_uses_days_option_over_the_config_default(run, clock, config):
    config.restriction.default_days = 10
    _, out, _ = await run("restrict", "add", NUMBER, "--reason", "r", "--operator", "li")
    assert "2026-03-12T00:00:00+08:00" in out
    _, out, _ = await run("restrict", "add", NUMBER, "--reason", "r", "--operator", "li", "--days", "3", "--json")
    assert json.loads(out)["until"] == "2026-03-05T00:00:00+08:00"
    assert json.loads(out)["number"] == NUMBER


@pytest.mark.parametrize("days", ["0", "366", "-5"])
async def test_add_with_days_out_of_range_exits_2(run, clock, days):
    code, out, err = await run("restrict", "add", NUMBER, "--reason", "r", "--operator", "li", "--days", days)
    assert code == 2 and out == ""
    assert "between 1 and 365" in err


@pytest.mark.parametrize("command", [["restrict", "add", "abc", "--reason", "r", "--operator", "o"],
                                     ["restrict", "lift", "12345", "--reason", "r", "--operator", "o"],
                                     ["restrict", "check", "*#", "--json"],
                                     ["restrict", "audit", "anonymous"]])
async def test_bad_numbers_exit_2_naming_the_problem(run, clock, command):
    code, out, err = await run(*command)
    assert code == 2 and out == ""
    assert "not a usable phone number" in err
    assert "error:" in err


async def test_empty_reason_exits_2(run, clock):
    code, _, err = await run("restrict", "add", NUMBER, "--reason", " ", "--operator", "li")
    assert code == 2 and "reason" in err


async def test_lift_ends_it_at_once_and_shows_in_the_audit(run, clock):
    await run("restrict", "add", NUMBER, "--reason", "insulted staff", "--operator", "li")
    clock.now = sh(2026, 3, 5, 10, 0)
    code, out, _ = await run("restrict", "lift", "13800138000", "--operator", "wang", "--reason", "apologised")
    assert code == 0 and "lifted" in out and "2026-03-05T10:00:00+08:00" in out
    _, out, _ = await run("restrict", "check", NUMBER, "--json")
    assert json.loads(out)["restricted"] is False

    _, out, _ = await run("restrict", "audit", NUMBER, "--json")
    audit = json.loads(out)
    assert [(a["action"], a["operator"], a["reason"], a["at"]) for a in audit] == [
        ("add", "li", "insulted staff", "2026-03-01T15:00:00+08:00"),
        ("lift", "wang", "apologised", "2026-03-05T10:00:00+08:00"),
    ]
    assert audit[0]["number"] == "138****8000"

    code, out, _ = await run("restrict", "audit", "--full")
    assert code == 0 and "+8613800138000" in out and "lift" in out and "wang" in out


async def test_lift_without_active_restriction_exits_1(run, clock):
    code, out, err = await run("restrict", "lift", NUMBER, "--operator", "wang", "--reason", "r")
    assert code == 1 and out == ""
    assert "no active restriction" in err and "+8613800138000" in err


async def test_list_masks_numbers_unless_full(run, clock):
    await run("restrict", "add", NUMBER, "--reason", "insults", "--operator", "li")
    await run("restrict", "add", "0759-2345678", "--reason", "threats", "--operator", "li", "--days", "1")
    clock.now = sh(2026, 3, 2, 12)
    code, out, _ = await run("restrict", "list")
    assert code == 0
    assert "138****8000" in out and "0759****678" in out
    assert "13800138000" not in out and "2345678" not in out
    _, out, _ = await run("restrict", "list", "--full", "--json")
    rows = json.loads(out)
    assert {r["number"] for r in rows} == {NUMBER, "+867592345678"}
    assert all(r["status"] == "active" for r in rows)


async def test_list_all_shows_lifted_expired_and_superseded(run, clock):
    await run("restrict", "add", NUMBER, "--reason", "first", "--operator", "li")           # superseded
    clock.now = sh(2026, 3, 2, 9)
    await run("restrict", "add", NUMBER, "--reason", "second", "--operator", "li")          # active
    await run("restrict", "add", "+867592345678", "--reason", "x", "--operator", "li", "--days", "1")  # expired
    await run("restrict", "add", "+8613900139000", "--reason", "y", "--operator", "li")     # lifted
    await run("restrict", "lift", "+8613900139000", "--reason", "z", "--operator", "wang")
    clock.now = sh(2026, 3, 10)

    _, out, _ = await run("restrict", "list", "--json")
    assert [r["reason"] for r in json.loads(out)] == ["second"]
    _, out, _ = await run("restrict", "list", "--all", "--json")
    assert {r["reason"]: r["status"] for r in json.loads(out)} == {
        "first": "superseded", "second": "active", "x": "expired", "y": "lifted"}
    _, out, _ = await run("restrict", "list", "--all")
    assert "superseded" in out and "expired" in out


async def test_list_when_empty(run, clock):
    code, out, _ = await run("restrict", "list")
    assert code == 0 and "no restrictions" in out
    _, out, _ = await run("restrict", "list", "--json")
    assert json.loads(out) == []


async def test_check_human_output(run, clock):
    _, out, _ = await run("restrict", "check", NUMBER)
    assert out.strip() == "+8613800138000 is not restricted"
    await run("restrict", "add", NUMBER, "--reason", "insults", "--operator", "li")
    _, out, _ = await run("restrict", "check", NUMBER)
    assert "restricted until 2026-04-01T00:00:00+08:00 (last day 2026-03-31)" in out


async def test_calls_list_masks_numbers_unless_full(run, clock, config):
    store = await Store.open(config.store.location)
    try:
        await store.open_call(call_id="c1", number=NUMBER, channel="PJSIP/t-1", started_at=sh(2026, 3, 1, 9))
        await store.update_call("c1", outcome="answered", ivr_path=["root", "complaint"], agent="agent07")
        await store.open_call(call_id="c2", number=None, channel="PJSIP/t-2", started_at=sh(2026, 3, 1, 10))
        await store.open_call(call_id="c3", number="+867592345678", channel="PJSIP/t-3", started_at=sh(2026, 3, 1, 11))
    finally:
        await store.close()

    code, out, _ = await run("calls", "list")
    assert code == 0
    assert "138****8000" in out and "anonymous" in out and "root>complaint" in out
    assert "13800138000" not in out
    assert out.index("c3") < out.index("c2") < out.index("c1")

    _, out, _ = await run("calls", "list", "--json", "--limit", "2")
    rows = json.loads(out)
    assert [r["call_id"] for r in rows] == ["c3", "c2"]
    assert rows[0]["number"] == "0759****678" and rows[0]["started_at"] == "2026-03-01T11:00:00+08:00"

    _, out, _ = await run("calls", "list", "--json", "--full")
    assert json.loads(out)[2]["number"] == NUMBER


async def test_calls_list_rejects_a_bad_limit(run, clock):
    code, _, err = await run("calls", "list", "--limit", "0")
    assert code == 2 and "--limit" in err


def test_every_leaf_command_has_an_async_handler():
    parser = argparse.ArgumentParser()
    cli_restrict.register(parser.add_subparsers(dest="command"))
    for argv in (["restrict", "add", "1", "--reason", "r", "--operator", "o"],
                 ["restrict", "lift", "1", "--reason", "r", "--operator", "o"],
                 ["restrict", "list"], ["restrict", "check", "1"], ["restrict", "audit"], ["calls", "list"]):
        assert inspect.iscoroutinefunction(parser.parse_args(argv).func)


def test_default_clock_is_aware_shanghai_time():
    assert cli_restrict.now().utcoffset().total_seconds() == 8 * 3600
