"""`hotline tickets status|show`: an operator records what the work-order system reports (art. 10-13)."""
import json
from datetime import datetime
from types import SimpleNamespace

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.cli import tickets as cli_tickets
from gateway.store.database import Store
from tests.conftest import store_section


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(store=store_section(tmp_path / "hotline.sqlite"))


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(cli_tickets, "now", lambda: sh(2026, 11, 30, 10))   # a Monday


@pytest.fixture
def run(cli, config):
    return cli(config, cli_tickets)


@pytest.fixture
async def ticket(config) -> str:
    async with await Store.open(config.store.location) as store:
        return await store.create_ticket_draft(call_id="c1", request_type="consultation",
                                               created_at=sh(2026, 11, 30, 9))


async def test_a_transfer_is_recorded_with_its_unit_and_due_date(run, ticket):
    code, out, _ = await run("tickets", "status", ticket, "transferred", "--unit", "市人社局", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["status"] == "transferred" and shown["unit"] == "市人社局" and shown["type"] == "consultation"
    assert shown["due"] == "2026-12-02"     # 2 working days after Monday 30 November
    code, out, _ = await run("tickets", "show", ticket)
    assert code == 0 and "市人社局" in out and "due 2026-12-02" in out and "cli" in out


async def test_a_step_the_rules_do_not_allow_exits_1_with_the_reason(run, ticket):
    code, out, _ = await run("tickets", "status", ticket, "closed")
    assert code == 1 and "refused" in out and "may become" in out


async def test_an_unknown_ticket_or_status_is_bad_input(run, ticket):
    code, _, err = await run("tickets", "status", "20261130999", "received")
    assert code == 2 and "no ticket" in err
    code, _, err = await run("tickets", "status", ticket, "lost")
    assert code == 2 and "unknown status" in err
    code, _, err = await run("tickets", "show", "nope")
    assert code == 2
