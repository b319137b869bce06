"""Call-back tasks on the console against a real Store: an agent sees and works only the tasks assigned to them, a
supervisor every one and assigns them; starting a call-back goes to the dialer, closing it records the outcome and
the one redo (art. 15); bad input is a 400, another's task a 404."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.aftercall.outbound import CallBackError
from ivr.survey import SurveyKind
from tests.integration.console_support import console_client
from tests.integration.console_support import sign_in as console_sign_in

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class Dialer:
    def __init__(self):
        self.calls = []

    async def __call__(self, task_id, *, agent):
        if task_id == 999:
            raise RuntimeError("never")
        self.calls.append((task_id, agent))


@pytest.fixture
def dialer():
    return Dialer()


@pytest.fixture
async def client(store, tmp_path, dialer):
    async with console_client(store, tmp_path / "state", NOW, call_back=dialer) as c:
        yield c


async def sign_in(client, tmp_path, agent):
    await console_sign_in(client, tmp_path / "state", agent)


@pytest.fixture
async def task(store) -> int:
    ticket = await store.create_ticket_draft(call_id="c1", request_type="complaint", created_at=NOW)
    rating = await store.open_survey(SurveyKind.INTAKE, call_id="c1", ticket_id=ticket, number="+8613800138000",
                                     at=NOW)
    return await store.record_rating(rating, 4, at=NOW, callback_due=date(2026, 12, 3))


async def test_a_supervisor_assigns_the_agent_calls_back_and_closes_with_a_redo(client, tmp_path, task, dialer,
                                                                                store):
    await sign_in(client, tmp_path, "agent1")
    assert (await (await client.get("/api/callbacks")).json())["callbacks"] == []       # not assigned yet
    assert (await client.post(f"/api/callbacks/{task}/call", json={})).status == 404
    assert (await client.post(f"/api/callbacks/{task}/assign", json={"agent": "agent1"})).status == 403
    await sign_in(client, tmp_path, "lead1")
    [listed] = (await (await client.get("/api/callbacks")).json())["callbacks"]
    assert listed["number"] == "138****8000" and listed["due"] == "2026-12-03"
    assert (await client.post(f"/api/callbacks/{task}/assign", json={"agent": "nobody"})).status == 400
    assert (await client.post(f"/api/callbacks/{task}/assign", json={"agent": "agent1"})).status == 200
    await sign_in(client, tmp_path, "agent2")
    assert (await client.post(f"/api/callbacks/{task}/call", json={})).status == 404   # agent1's
    await sign_in(client, tmp_path, "agent1")
    assert (await client.post(f"/api/callbacks/{task}/call", data="x")).status == 415   # a JSON body only
    response = await client.post(f"/api/callbacks/{task}/call", json={})
    assert response.status == 202 and dialer.calls == [(task, "agent1")]
    for bad in ({"outcome": "maybe"}, {"redo": "yes"}, {"note": "x" * 501}):
        assert (await client.post(f"/api/callbacks/{task}/done", json=bad)).status == 400
    response = await client.post(f"/api/callbacks/{task}/done", json={"outcome": "reached", "redo": True})
    assert response.status == 200
    assert [a["outcome"] for a in await store.callback_attempts(task)] == ["reached"]
    assert await store.ticket_redone((await store.callback_task(task))["ticket_id"])
    assert (await client.post(f"/api/callbacks/{task}/done", json={})).status == 404      # closed
    for junk in ("abc", "-1", "9" * 20):
        assert (await client.post(f"/api/callbacks/{junk}/call", json={})).status == 404


async def test_a_dialer_that_cannot_place_the_call_is_a_409_with_the_reason(store, tmp_path, task):
    async def refusing(task_id, *, agent):
        raise CallBackError("the caller's number cannot be dialled")

    async with console_client(store, tmp_path / "state", NOW, call_back=refusing) as client:
        await sign_in(client, tmp_path, "lead1")
        response = await client.post(f"/api/callbacks/{task}/call", json={})
        assert response.status == 409
        assert (await response.json())["reason"] == "the caller's number cannot be dialled"
    assert await store.callback_attempts(task) == []
