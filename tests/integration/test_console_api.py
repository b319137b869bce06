"""The agent console's JSON API against a real Store on disk: sign-in, ticket read/save, abusive-caller request."""

import time
from datetime import UTC, date, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.console import app as console
from gateway.console.app import SESSION_COOKIE, create_console_app
from gateway.mqtt.passwords import mqtt_password
from gateway.store.database import Store

NUMBER = "+8613800138000"
WS_URL = "ws://127.0.0.1:19001/mqtt"
NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
JSON = {"Content-Type": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def fast_failures(monkeypatch):
    monkeypatch.setattr(console, "LOGIN_FAILURE_DELAY_S", 0.05)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "db" / "hotline.sqlite")
    yield s
    await s.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def client(store, tmp_path, clock):
    app = create_console_app(store=store, state_dir=tmp_path / "state", agents=["agent1", "agent2"],
                             ws_url=WS_URL, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def ticket(store):
    await store.open_call(call_id="call-1", number=NUMBER, channel="PJSIP/trunk-00000001", started_at=NOW)
    ticket_id = await store.create_ticket_draft(call_id="call-1", request_type="complaint", created_at=NOW)
    await store.update_ticket_draft(ticket_id, address="赤坎区人民大道中 1 号", unit="赤坎区住建局",
                                    due=date(2026, 3, 20), summary="小区夜间施工噪音")
    return ticket_id


def password(tmp_path, agent="agent1"):
    return mqtt_password(tmp_path / "state", agent)


async def login(client, tmp_path, agent="agent1"):
    response = await client.post("/api/login", json={"agent": agent, "password": password(tmp_path, agent)})
    assert response.status == 200, await response.text()
    return await response.json()


# -- sign-in --------------------------------------------------------------------------------------------------


async def test_login_with_broker_password_returns_broker_details_and_a_strict_httponly_cookie(client, tmp_path):
    response = await client.post("/api/login", json={"agent": "agent1", "password": password(tmp_path)})
    assert response.status == 200
    assert await response.json() == {"agent": "agent1", "ws_url": WS_URL, "topic": "hotline/agents/agent1/screenpop"}
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie


async def test_wrong_password_and_unknown_agent_get_the_same_delayed_401(client, tmp_path):
    password(tmp_path)
    answers = []
    for body in ({"agent": "agent1", "password": "guess"}, {"agent": "nobody", "password": "guess"},
                 {"agent": "agent1", "password": password(tmp_path, "agent2")}):
        started = time.monotonic()
        response = await client.post("/api/login", json=body)
        assert time.monotonic() - started >= console.LOGIN_FAILURE_DELAY_S
        assert response.status == 401
        assert "Set-Cookie" not in response.headers
        answers.append(await response.json())
    assert answers[0] == answers[1] == answers[2]


async def test_unconfigured_agent_cannot_sign_in_even_with_its_broker_password(client, tmp_path):
    response = await client.post("/api/login", json={"agent": "agent9", "password": password(tmp_path, "agent9")})
    assert response.status == 401


async def test_login_rejects_non_text_credentials(client):
    response = await client.post("/api/login", json={"agent": ["agent1"], "password": None})
    assert response.status == 401


async def test_session_expires(client, tmp_path, ticket, clock):
    await login(client, tmp_path)
    assert (await client.get(f"/api/tickets/{ticket}")).status == 200
    clock.now = NOW + console.SESSION_TTL
    assert (await client.get(f"/api/tickets/{ticket}")).status == 401


async def test_logout_ends_the_session(client, tmp_path, ticket):
    await login(client, tmp_path)
    assert (await client.post("/api/logout", json={})).status == 200
    assert (await client.get(f"/api/tickets/{ticket}")).status == 401


# -- tickets --------------------------------------------------------------------------------------------------


async def test_ticket_read_and_write_need_a_session(client, ticket):
    assert (await client.get(f"/api/tickets/{ticket}")).status == 401
    assert (await client.put(f"/api/tickets/{ticket}", json={"address": "x"})).status == 401
    assert (await client.post(f"/api/tickets/{ticket}/abusive", json={"reason": "x"})).status == 401


async def test_forged_session_cookie_is_refused(client, ticket):
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: "forged"})
    assert (await client.get(f"/api/tickets/{ticket}")).status == 401


async def test_get_ticket_returns_the_draft(client, tmp_path, ticket):
    await login(client, tmp_path)
    response = await client.get(f"/api/tickets/{ticket}")
    assert response.status == 200
    draft = await response.json()
    assert draft["id"] == ticket
    assert draft["type"] == "complaint"
    assert draft["address"] == "赤坎区人民大道中 1 号"
    assert draft["due"] == "2026-03-20"
    assert draft["status"] == "draft"


async def test_unknown_ticket_is_404(client, tmp_path):
    await login(client, tmp_path)
    assert (await client.get("/api/tickets/2026030299999")).status == 404
    assert (await client.put("/api/tickets/2026030299999", json={"address": "x"})).status == 404
    assert (await client.post("/api/tickets/2026030299999/abusive", json={"reason": "x"})).status == 404


async def test_put_saves_fields_with_status_saved_and_the_signed_in_agent(client, store, tmp_path, ticket):
    await login(client, tmp_path)
    edit = {"type": "help", "category": "市政设施", "unit": "湛江市城管局", "address": "霞山区海滨大道 8 号",
            "callback_number": "0759-2345678", "due": "2026-03-16", "summary": "路灯损坏"}
    response = await client.put(f"/api/tickets/{ticket}", json=edit)
    assert response.status == 200, await response.text()
    saved = await store.get_ticket_draft(ticket)
    assert {k: saved[k] for k in ("type", "category", "unit", "address", "summary")} == {
        k: edit[k] for k in ("type", "category", "unit", "address", "summary")}
    assert saved["due"] == date(2026, 3, 16)
    assert saved["callback_number"] == "+867592345678"
    assert (saved["status"], saved["agent"]) == ("saved", "agent1")
    body = await response.json()
    assert (body["id"], body["status"], body["address"]) == (ticket, "saved", "霞山区海滨大道 8 号")


async def test_empty_callback_number_clears_it(client, store, tmp_path, ticket):
    await store.update_ticket_draft(ticket, callback_number=NUMBER)
    await login(client, tmp_path)
    assert (await client.put(f"/api/tickets/{ticket}", json={"callback_number": ""})).status == 200
    assert (await store.get_ticket_draft(ticket))["callback_number"] is None


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"type": "unspecified"}, "type", "must be one of"),
    ({"type": 3}, "type", "must be one of"),
    ({"due": "2026-02-30"}, "due", "ISO date"),
    ({"due": "20.03.2026"}, "due", "ISO date"),
    ({"due": "2026-03-20T00:00:00"}, "due", "ISO date"),
    ({"address": "路" * 257}, "address", "at most 256"),
    ({"summary": "x" * 4001}, "summary", "at most 4000"),
    ({"unit": ["a"]}, "unit", "must be text"),
    ({"category": "a\x00b"}, "category", "control characters"),
    ({"callback_number": "not a number"}, "callback_number", "phone number"),
    ({"status": "closed"}, "status", "not an editable field"),
    ({"agent": "agent2"}, "agent", "not an editable field"),
    ({}, "body", "no fields"),
])
async def test_put_rejects_bad_input_naming_the_field(client, store, tmp_path, ticket, body, field, reason):
    await login(client, tmp_path)
    response = await client.put(f"/api/tickets/{ticket}", json=body)
    assert response.status == 400
    error = await response.json()
    assert error["field"] == field
    assert reason in error["reason"]
    assert (await store.get_ticket_draft(ticket))["status"] == "draft"


async def test_put_with_a_json_array_or_broken_json_is_400(client, tmp_path, ticket):
    await login(client, tmp_path)
    assert (await client.put(f"/api/tickets/{ticket}", json=["address"])).status == 400
    assert (await client.put(f"/api/tickets/{ticket}", data="{", headers=JSON)).status == 400


async def test_ticket_saved_by_one_agent_is_not_another_agents_to_edit(client, store, tmp_path, ticket):
    await store.update_ticket_draft(ticket, agent="agent2", status="saved")
    await login(client, tmp_path)
    assert (await client.get(f"/api/tickets/{ticket}")).status == 403
    assert (await client.put(f"/api/tickets/{ticket}", json={"address": "x"})).status == 403
    assert (await store.get_ticket_draft(ticket))["address"] == "赤坎区人民大道中 1 号"


# -- abusive callers (art. 9) ---------------------------------------------------------------------------------


async def test_mark_abusive_creates_a_pending_restriction_for_the_calls_number(client, store, tmp_path, ticket):
    await login(client, tmp_path)
    response = await client.post(f"/api/tickets/{ticket}/abusive", json={"reason": "辱骂坐席人员"})
    assert response.status == 201, await response.text()
    pending_id = (await response.json())["pending_id"]
    pending = await store.list_pending_restrictions()
    assert [(p["id"], p["number"], p["reason"], p["requested_by"], p["call_id"], p["status"]) for p in pending] == [
        (pending_id, NUMBER, "辱骂坐席人员", "agent1", "call-1", "pending")]
    assert await store.active_restriction(NUMBER, NOW) is None


async def test_mark_abusive_needs_a_reason(client, store, tmp_path, ticket):
    await login(client, tmp_path)
    for body in ({}, {"reason": "  "}, {"reason": "x" * 501}):
        response = await client.post(f"/api/tickets/{ticket}/abusive", json=body)
        assert response.status == 400
        assert (await response.json())["field"] == "reason"
    assert await store.list_pending_restrictions() == []


async def test_mark_abusive_on_an_anonymous_call_is_409(client, store, tmp_path):
    await store.open_call(call_id="call-anon", number=None, channel="PJSIP/trunk-2", started_at=NOW)
    ticket_id = await store.create_ticket_draft(call_id="call-anon", request_type=None, created_at=NOW)
    await login(client, tmp_path)
    response = await client.post(f"/api/tickets/{ticket_id}/abusive", json={"reason": "威胁"})
    assert response.status == 409
    assert await store.list_pending_restrictions() == []


async def test_caller_number_never_reaches_the_log_unmasked(client, tmp_path, ticket, caplog):
    caplog.set_level("DEBUG", logger="gateway.console.app")
    await login(client, tmp_path)
    await client.put(f"/api/tickets/{ticket}", json={"callback_number": "13800138000"})
    await client.post(f"/api/tickets/{ticket}/abusive", json={"reason": "骚扰"})
    assert "abusive_requested" in caplog.text
    assert "138****8000" in caplog.text
    assert "13800138000" not in caplog.text


# -- CSRF and headers -----------------------------------------------------------------------------------------


async def test_state_changing_requests_need_a_json_content_type(client, store, tmp_path, ticket):
    await login(client, tmp_path)
    form = await client.post(f"/api/tickets/{ticket}/abusive", data={"reason": "x"})
    assert form.status == 415
    text = await client.put(f"/api/tickets/{ticket}", data='{"address": "x"}', headers={"Content-Type": "text/plain"})
    assert text.status == 415
    login_form = await client.post("/api/login", data={"agent": "agent1", "password": password(tmp_path)})
    assert login_form.status == 415
    assert await store.list_pending_restrictions() == []


async def test_cross_origin_state_change_is_refused(client, tmp_path, ticket):
    await login(client, tmp_path)
    response = await client.put(f"/api/tickets/{ticket}", json={"address": "x"},
                                headers={"Origin": "http://evil.example"})
    assert response.status == 403


async def test_api_responses_are_not_cached_and_carry_security_headers(client, tmp_path, ticket):
    responses = [await client.post("/api/login", json={"agent": "agent1", "password": "wrong"})]
    await login(client, tmp_path)
    responses += [await client.get(f"/api/tickets/{ticket}"), await client.get("/api/tickets/1"),
                  await client.put(f"/api/tickets/{ticket}", json={"due": "x"})]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "connect-src 'self' ws://127.0.0.1:19001;" in csp
        assert "frame-ancestors 'none'" in csp


async def test_page_and_static_files_are_served_with_the_same_policy(client):
    page = await client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = await page.text()
    for label in ("坐席工号", "工单编号", "诉求类型", "承办单位", "办理时限", "保存工单", "标记骚扰来电", "来电历史"):
        assert label in html
    assert "http://" not in html and "https://" not in html  # nothing from outside the gateway
    assert "Content-Security-Policy" in page.headers
    for name in ("console.js", "mqtt-ws.js", "console.css"):
        response = await client.get(f"/static/{name}")
        assert response.status == 200, name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (await client.get("/static/")).status in (403, 404)
    assert (await client.get("/static/../console.py")).status in (403, 404)
