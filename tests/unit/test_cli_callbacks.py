"""`hotline callbacks list|assign|done`: the call-back tasks of dissatisfied callers (art. 15)."""
import json
from datetime import date, datetime
from types import SimpleNamespace

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.cli import callbacks as cli_callbacks
from gateway.store.database import Store
from ivr.survey import SurveyKind
from tests.conftest import store_section

NOW = datetime(2026, 12, 1, 10, tzinfo=SHANGHAI)


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(store=store_section(tmp_path / "hotline.sqlite"),
                           agents=[SimpleNamespace(name="agent1"), SimpleNamespace(name="agent2")])


@pytest.fixture
def run(cli, config, monkeypatch):
    monkeypatch.setattr(cli_callbacks, "now", lambda: NOW)
    return cli(config, cli_callbacks)


@pytest.fixture
async def task(config) -> int:
    async with await Store.open(config.store.location) as store:
        ticket = await store.create_ticket_draft(call_id="c1", request_type="complaint", created_at=NOW)
        rating = await store.open_survey(SurveyKind.INTAKE, call_id="c1", ticket_id=ticket,
                                         number="+8613800138000", at=NOW)
        return await store.record_rating(rating, 5, at=NOW, callback_due=date(2026, 12, 3))


async def test_list_assign_and_close_with_the_one_redo(run, task):
    code, out, _ = await run("callbacks", "list")
    assert code == 0 and "138****8000" in out and "13800138000" not in out and "2026-12-03" in out
    assert (await run("callbacks", "assign", str(task), "nobody"))[0] == 2
    assert (await run("callbacks", "assign", str(task), "agent2"))[0] == 0
    code, out, _ = await run("callbacks", "list", "--agent", "agent2", "--json", "--full")
    [shown] = json.loads(out)
    assert shown["id"] == task and shown["assigned_to"] == "agent2" and shown["number"] == "+8613800138000"
    assert json.loads((await run("callbacks", "list", "--agent", "agent1", "--json"))[1]) == []
    code, out, _ = await run("callbacks", "done", str(task), "--agent", "agent2", "--outcome", "reached", "--redo")
    assert code == 0 and "redo" in out
    assert (await run("callbacks", "done", str(task), "--agent", "agent2"))[0] == 2     # closed already
    code, out, _ = await run("callbacks", "list", "--all", "--json")
    [closed] = json.loads(out)
    assert closed["state"] == "done" and closed["outcome"] == "reached" and closed["attempts"] == 1


async def test_a_second_redo_of_the_same_ticket_is_refused(run, config, task):
    async with await Store.open(config.store.location) as store:
        ticket = (await store.callback_task(task))["ticket_id"]
        again = await store.open_survey(SurveyKind.HANDLING, call_id="rc1", ticket_id=ticket,
                                        number="+8613800138000", at=NOW)
        second = await store.record_rating(again, 4, at=NOW, callback_due=date(2026, 12, 3))
    assert (await run("callbacks", "done", str(task), "--agent", "agent1", "--redo"))[0] == 0
    code, out, _ = await run("callbacks", "done", str(second), "--agent", "agent1", "--redo")
    assert code == 1 and "redone once already" in out
