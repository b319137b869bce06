"""The work-order status API over real HTTP against a real Store on disk: the token, each refusal, and a ticket's
handling as the progress query reads it."""
from __future__ import annotations

from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from gateway.workorder.status_api import MAX_BODY_BYTES, create_status_app

TOKEN = "s3cret-token-for-the-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MONDAY = datetime(2026, 11, 30, 10, tzinfo=SHANGHAI)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    yield s
    await s.close()


@pytest.fixture
async def client(store):
    async with TestClient(TestServer(create_status_app(store=store, token=TOKEN, clock=lambda: MONDAY))) as c:
        yield c


@pytest.fixture
async def ticket(store) -> str:
    return await store.create_ticket_draft(call_id="c1", request_type="complaint", created_at=MONDAY)


async def test_a_transfer_then_an_extension_and_the_ticket_shows_both(client, store, ticket):
    r = await client.post(f"/api/v1/tickets/{ticket}/status", json={"status": "transferred", "unit": "市住建局"},
                          headers=AUTH)
    assert r.status == 200, await r.text()
    sent = await r.json()
    assert sent["unit"] == "市住建局" and sent["status"] == "transferred" and sent["due"]
    r = await client.post(f"/api/v1/tickets/{ticket}/status", json={"status": "extended", "reason": "跨部门"},
                          headers=AUTH)
    assert r.status == 200 and (await r.json())["extensions"] == 1
    r = await client.get(f"/api/v1/tickets/{ticket}", headers=AUTH)
    shown = await r.json()
    assert [e["status"] for e in shown["log"]] == ["transferred", "extended"]
    assert shown["log"][1]["reason"] == "跨部门" and shown["log"][0]["source"] == "api"
    assert (await store.ticket_status(ticket))["status"] == "extended"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": "Bearer"}])
async def test_no_or_a_wrong_token_is_401_and_changes_nothing(client, store, ticket, headers):
    r = await client.post(f"/api/v1/tickets/{ticket}/status", json={"status": "transferred", "unit": "A"},
                          headers=headers)
    assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = await client.get(f"/api/v1/tickets/{ticket}", headers=headers)
    assert r.status == 401
    assert await store.ticket_status_log(ticket) == []


async def test_an_unknown_ticket_is_404(client):
    r = await client.post("/api/v1/tickets/20261130999/status", json={"status": "received"}, headers=AUTH)
    assert r.status == 404
    assert (await client.get("/api/v1/tickets/nope", headers=AUTH)).status == 404


async def test_an_unknown_status_or_a_refused_step_is_409_with_the_reason(client, store, ticket):
    r = await client.post(f"/api/v1/tickets/{ticket}/status", json={"status": "lost"}, headers=AUTH)
    assert r.status == 409 and "unknown status" in (await r.json())["error"]
    r = await client.post(f"/api/v1/tickets/{ticket}/status", json={"status": "closed"}, headers=AUTH)
    assert r.status == 409 and "may become" in (await r.json())["error"]
    assert await store.ticket_status_log(ticket) == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"status": 5}', b'{"unit": "A"}',
                                  b'{"status": "transferred", "unit": ["A"]}', b"[" * 5000 + b"]" * 5000,
                                  b"\xff\xfe"])
async def test_a_malformed_body_is_400(client, ticket, body):
    r = await client.post(f"/api/v1/tickets/{ticket}/status", data=body,
                          headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 400, (body[:20], await r.text())


async def test_an_oversized_body_is_413(client, ticket):
    body = b'{"status": "transferred", "unit": "' + b"x" * MAX_BODY_BYTES + b'"}'
    r = await client.post(f"/api/v1/tickets/{ticket}/status", data=body,
                          headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 413


def test_the_api_is_not_built_without_a_token(store):
    with pytest.raises(ValueError):
        create_status_app(store=store, token="", clock=lambda: MONDAY)
