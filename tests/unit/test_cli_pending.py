"""`hotline restrict pending|confirm|reject`: supervisors decide agents' restriction requests (art. 9)."""

import argparse
import json
from datetime import datetime
from types import SimpleNamespace

import pytest

from gateway.cli import pending as cli_pending
from gateway.cli import restrict as cli_restrict
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from tests.conftest import store_section

NUMBER = "+8613800138000"


def sh(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(store=store_section(tmp_path / "hotline.sqlite"),
                           restriction=SimpleNamespace(default_days=30))


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(cli_pending, "now", lambda: sh(2026, 11, 27, 15))
    monkeypatch.setattr(cli_restrict, "now", lambda: sh(2026, 11, 27, 15))


@pytest.fixture
def run(cli, config):
    return cli(config, cli_restrict, cli_pending)


async def request(config, reason="辱骂话务员") -> int:
    async with await Store.open(config.store.location) as store:
        return await store.add_pending_restriction(number=NUMBER, reason=reason, requested_by="agent1",
                                                   call_id="1764222222.12", at=sh(2026, 11, 27, 14))


async def test_pending_lists_requests_with_masked_numbers(run, config):
    pending_id = await request(config)
    code, out, _ = await run("restrict", "pending")
    assert code == 0 and str(pending_id) in out and "agent1" in out and "辱骂话务员" in out
    assert NUMBER not in out and "138****8000" in out
    code, out, _ = await run("restrict", "pending", "--json", "--full")
    [row] = json.loads(out)
    assert row["number"] == NUMBER and row["status"] == "pending" and row["requested_at"] == "2026-11-27T14:00:00+08:00"


async def test_confirm_restricts_the_number_under_the_supervisors_name(run, config):
    pending_id = await request(config)
    code, out, err = await run("restrict", "confirm", str(pending_id), "--operator", "sup1")
    assert code == 0, err
    assert "30 days" in out and "last day 2026-12-27" in out and NUMBER not in out
    code, out, _ = await run("restrict", "check", NUMBER, "--json")
    assert json.loads(out)["restricted"] is True
    code, out, _ = await run("restrict", "audit", NUMBER, "--json")
    [entry] = json.loads(out)
    assert entry["operator"] == "sup1" and "agent1" in entry["reason"]
    code, out, _ = await run("restrict", "pending")
    assert out.strip() == "no pending restriction requests"
    code, _, err = await run("restrict", "confirm", str(pending_id), "--operator", "sup2")
    assert code == 1 and "already confirmed" in err


async def test_confirm_takes_days_and_refuses_bad_ones(run, config):
    pending_id = await request(config)
    code, _, err = await run("restrict", "confirm", str(pending_id), "--operator", "sup1", "--days", "0")
    assert code == 2 and "days" in err
    code, out, _ = await run("restrict", "confirm", str(pending_id), "--operator", "sup1", "--days", "7", "--json")
    assert code == 0 and json.loads(out)["last_day"] == "2026-12-04"


async def test_reject_records_the_reason_and_restricts_nobody(run, config):
    pending_id = await request(config)
    code, out, _ = await run("restrict", "reject", str(pending_id), "--operator", "sup1", "--reason", "情绪激动，未辱骂")
    assert code == 0 and "rejected" in out
    code, out, _ = await run("restrict", "check", NUMBER, "--json")
    assert json.loads(out)["restricted"] is False
    code, out, _ = await run("restrict", "pending", "--all", "--json")
    assert json.loads(out)[0]["decision_reason"] == "情绪激动，未辱骂"
    code, _, err = await run("restrict", "reject", "999", "--operator", "sup1", "--reason", "x")
    assert code == 2 and "no pending restriction request 999" in err


def test_register_alone_creates_the_restrict_command():
    parser = argparse.ArgumentParser()
    cli_pending.register(parser.add_subparsers(dest="command", required=True))
    assert parser.parse_args(["restrict", "pending"]).func is cli_pending.pending_list


async def test_pending_shows_the_call_s_recording_as_evidence_once_filed(run, config):
    """Art. 9: the supervisor confirming a request can hear the call; the list names the console URL."""
    pending_id = await request(config)
    code, out, _ = await run("restrict", "pending")
    assert code == 0 and "none yet" in out
    async with await Store.open(config.store.location) as store:
        await store.file_call_recording(call_id="1764222222.12", path="/rec/1764222222.12-call.ogg", format="ogg",
                                        duration_s=42.4, size=80_000, sha256="0" * 64, state="converted",
                                        note=None, recorded_at=sh(2026, 11, 27, 14))
        public_id = (await store.call_recording("1764222222.12"))["public_id"]
    code, out, _ = await run("restrict", "pending")
    assert "42s on the console" in out
    code, out, _ = await run("restrict", "pending", "--json")
    [row] = json.loads(out)
    assert row["id"] == pending_id and row["recording"] == {
        "id": public_id, "state": "converted", "duration_s": 42.4, "url": f"/api/recordings/{public_id}"}
    assert "/rec/" not in out      # the file's place is not the supervisor's business
