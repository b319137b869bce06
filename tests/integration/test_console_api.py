"""The agent console's JSON API against a real Store on disk: sign-in, ticket read/save, abusive-caller request,
who may see which ticket (and the audit of it), and the current call's screen-pop for a console that reconnects."""

import sqlite3
import time
from datetime import UTC, date, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.console import app as console
from gateway.console.sessions import SESSION_TTL
from gateway.console.app import create_console_app
from gateway.console.sessions import SESSION_COOKIE
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
    app = create_console_app(store=store, state_dir=tmp_path / "state", agents=["agent1", "agent2", "lead1"],
                             supervisors=["lead1"], ws_url=WS_URL, clock=clock)
    async with TestClient(TestServer(app)) as c:
        yield c


async def a_ticket(store, call_id="call-1", number=NUMBER) -> str:
    """A queued call's draft, as the call flow leaves it: no agent has answered yet. Returns its number."""
    await store.open_call(call_id=call_id, number=number, channel=f"PJSIP/trunk-{call_id}", started_at=NOW)
    ticket_no = await store.create_ticket_draft(call_id=call_id, request_type="complaint", created_at=NOW)
    await store.update_ticket_draft(ticket_no, address="赤坎区人民大道中 1 号", unit="赤坎区住建局",
                                    due=date(2026, 3, 20), summary="小区夜间施工噪音")
    return ticket_no


async def answered_by(store, agent, ticket_no, call_id="call-1", message_id="pop-1"):
    """What the screen-pop records when Asterisk connects ``agent`` to the caller."""
    await store.record_screenpop(message_id=message_id, agent=agent, call_id=call_id, ticket_id=ticket_no,
                                 reason=None, at=NOW)


async def public(store, ticket_no) -> str:
    return (await store.get_ticket_draft(ticket_no))["public_id"]


@pytest.fixture
async def ticket_no(store):
    """agent1's ticket: agent1 answered its call."""
    number = await a_ticket(store)
    await answered_by(store, "agent1", number)
    return number


@pytest.fixture
async def ticket(store, ticket_no):
    """The public id of agent1's ticket: the only name the console API knows it by."""
    return await public(store, ticket_no)


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
    assert await response.json() == {"agent": "agent1", "role": "agent", "ws_url": WS_URL,
                                     "topic": "hotline/agents/agent1/screenpop"}
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
    clock.now = NOW + SESSION_TTL
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


async def test_get_ticket_returns_the_draft(client, tmp_path, ticket, ticket_no):
    await login(client, tmp_path)
    response = await client.get(f"/api/tickets/{ticket}")
    assert response.status == 200
    draft = await response.json()
    assert (draft["id"], draft["public_id"]) == (ticket_no, ticket)
    assert draft["type"] == "complaint"
    assert draft["address"] == "赤坎区人民大道中 1 号"
    assert draft["due"] == "2026-03-20"
    assert draft["status"] == "draft"


async def test_unknown_ticket_is_404(client, tmp_path):
    await login(client, tmp_path)
    unknown = "0" * 32
    assert (await client.get(f"/api/tickets/{unknown}")).status == 404
    assert (await client.put(f"/api/tickets/{unknown}", json={"address": "x"})).status == 404
    assert (await client.post(f"/api/tickets/{unknown}/abusive", json={"reason": "x"})).status == 404
    assert (await client.get(f"/api/tickets/{'x' * 100}")).status == 404


async def test_the_sequential_ticket_number_opens_nothing(client, store, tmp_path, ticket_no):
    await login(client, tmp_path)
    assert (await client.get(f"/api/tickets/{ticket_no}")).status == 404
    assert (await client.put(f"/api/tickets/{ticket_no}", json={"address": "x"})).status == 404
    assert (await store.get_ticket_draft(ticket_no))["address"] == "赤坎区人民大道中 1 号"


async def test_put_saves_fields_with_status_saved_and_the_signed_in_agent(client, store, tmp_path, ticket,
                                                                         ticket_no):
    await login(client, tmp_path)
    edit = {"type": "help", "category": "市政设施", "unit": "湛江市城管局", "address": "霞山区海滨大道 8 号",
            "callback_number": "0759-2345678", "due": "2026-03-16", "summary": "路灯损坏"}
    response = await client.put(f"/api/tickets/{ticket}", json=edit)
    assert response.status == 200, await response.text()
    saved = await store.get_ticket_draft(ticket_no)
    assert {k: saved[k] for k in ("type", "category", "unit", "address", "summary")} == {
        k: edit[k] for k in ("type", "category", "unit", "address", "summary")}
    assert saved["due"] == date(2026, 3, 16)
    assert saved["callback_number"] == "+867592345678"
    assert (saved["status"], saved["agent"]) == ("saved", "agent1")
    body = await response.json()
    assert (body["id"], body["public_id"], body["status"], body["address"]) == (
        ticket_no, ticket, "saved", "霞山区海滨大道 8 号")
    assert await store.ticket_access_audit(ticket_no) == []   # the ticket's own agent is not audited


async def test_empty_callback_number_clears_it(client, store, tmp_path, ticket, ticket_no):
    await store.update_ticket_draft(ticket_no, callback_number=NUMBER)
    await login(client, tmp_path)
    assert (await client.put(f"/api/tickets/{ticket}", json={"callback_number": ""})).status == 200
    assert (await store.get_ticket_draft(ticket_no))["callback_number"] is None


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
async def test_put_rejects_bad_input_naming_the_field(client, store, tmp_path, ticket, ticket_no, body, field,
                                                      reason):
    await login(client, tmp_path)
    response = await client.put(f"/api/tickets/{ticket}", json=body)
    assert response.status == 400
    error = await response.json()
    assert error["field"] == field
    assert reason in error["reason"]
    assert (await store.get_ticket_draft(ticket_no))["status"] == "draft"


async def test_put_with_a_json_array_or_broken_json_is_400(client, tmp_path, ticket):
    await login(client, tmp_path)
    assert (await client.put(f"/api/tickets/{ticket}", json=["address"])).status == 400
    assert (await client.put(f"/api/tickets/{ticket}", data="{", headers=JSON)).status == 400


async def test_another_agent_gets_404_on_a_ticket_answered_by_someone_else_and_the_refusal_is_audited(
        client, store, tmp_path, ticket, ticket_no, clock):
    await login(client, tmp_path, "agent2")
    assert (await client.get(f"/api/tickets/{ticket}")).status == 404
    assert (await client.put(f"/api/tickets/{ticket}", json={"address": "x"})).status == 404
    assert (await client.post(f"/api/tickets/{ticket}/abusive", json={"reason": "辱骂"})).status == 404
    assert (await store.get_ticket_draft(ticket_no))["address"] == "赤坎区人民大道中 1 号"
    assert await store.list_pending_restrictions() == []
    audit = await store.ticket_access_audit(ticket_no)
    assert [(r["viewer"], r["role"], r["action"], r["basis"], r["at"]) for r in audit] == [
        ("agent2", "agent", action, "denied", NOW) for action in ("read", "save", "abusive")]


async def test_a_ticket_whose_call_no_agent_answered_is_shown_to_no_agent(client, store, tmp_path):
    # Every call in the IVR or the queue, and every abandoned call, has such a ticket.
    queued = await public(store, await a_ticket(store, "call-queued"))
    for agent in ("agent1", "agent2"):
        await login(client, tmp_path, agent)
        assert (await client.get(f"/api/tickets/{queued}")).status == 404
        assert (await client.put(f"/api/tickets/{queued}", json={"summary": "x"})).status == 404
        assert (await client.post(f"/api/tickets/{queued}/abusive", json={"reason": "x"})).status == 404
    assert await store.list_pending_restrictions() == []


async def test_a_supervisor_reads_and_saves_any_ticket_without_taking_it_over_and_each_access_is_audited(
        client, store, tmp_path, ticket, ticket_no):
    queued = await a_ticket(store, "call-queued")
    await login(client, tmp_path, "lead1")
    assert (await client.get(f"/api/tickets/{ticket}")).status == 200
    response = await client.put(f"/api/tickets/{ticket}", json={"category": "噪音扰民"})
    assert response.status == 200
    assert (await client.get(f"/api/tickets/{await public(store, queued)}")).status == 200
    saved = await store.get_ticket_draft(ticket_no)
    assert (saved["category"], saved["status"], saved["agent"]) == ("噪音扰民", "saved", "agent1")
    audit = await store.ticket_access_audit()
    assert [(r["viewer"], r["role"], r["action"], r["ticket_id"], r["basis"]) for r in audit] == [
        ("lead1", "supervisor", "read", ticket_no, "supervisor"), ("lead1", "supervisor", "save", ticket_no, "supervisor"),
        ("lead1", "supervisor", "read", queued, "supervisor")]
    assert all(NUMBER not in repr(row) and "13800138000" not in repr(row) for row in audit)


async def test_the_supervisor_role_comes_with_the_session(client, tmp_path):
    assert (await login(client, tmp_path, "lead1"))["role"] == "supervisor"
    session = await client.get("/api/session")
    assert session.status == 200
    assert (await session.json())["role"] == "supervisor"


async def test_an_agent_the_supervisor_assigned_may_work_on_the_ticket_audited(client, store, tmp_path, ticket,
                                                                               ticket_no):
    await login(client, tmp_path, "agent2")
    assert (await client.get(f"/api/tickets/{ticket}")).status == 404
    assert (await client.post(f"/api/tickets/{ticket}/assign", json={"agent": "agent2"})).status == 403
    await login(client, tmp_path, "lead1")
    assert (await client.post(f"/api/tickets/{ticket}/assign", json={"agent": "nobody"})).status == 400
    assert (await client.post(f"/api/tickets/{ticket}/assign", json={"agent": "agent2"})).status == 201
    await login(client, tmp_path, "agent2")
    assert (await client.put(f"/api/tickets/{ticket}", json={"summary": "已联系施工方"})).status == 200
    assert (await store.get_ticket_draft(ticket_no))["agent"] == "agent1"
    audit = await store.ticket_access_audit(ticket_no)
    assert [(r["viewer"], r["action"], r["basis"]) for r in audit] == [
        ("agent2", "read", "denied"), ("lead1", "assign", "supervisor"), ("agent2", "save", "assigned")]


async def test_an_access_that_cannot_be_audited_shows_nothing(client, store, tmp_path, ticket, monkeypatch):
    async def broken(**_):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(store, "audit_ticket_access", broken)
    await login(client, tmp_path, "lead1")
    response = await client.get(f"/api/tickets/{ticket}")
    assert response.status == 503
    assert "赤坎区" not in await response.text()


async def test_a_supervisor_opens_any_ticket_by_its_number_audited_and_agents_may_not(client, store, tmp_path,
                                                                                      ticket, ticket_no):
    await login(client, tmp_path)
    assert (await client.get(f"/api/tickets?number={ticket_no}")).status == 403
    await login(client, tmp_path, "lead1")
    response = await client.get(f"/api/tickets?number={ticket_no}")
    assert response.status == 200
    pop = (await response.json())["pop"]
    assert (pop["ticket"]["id"], pop["ticket"]["public_id"], pop["caller_number"]) == (ticket_no, ticket, NUMBER)
    assert pop["agent"] == "lead1" and pop["ticket"]["address"] == "赤坎区人民大道中 1 号"
    assert (await client.get("/api/tickets?number=2026030299999")).status == 404
    for bad in ("abc", "1" * 21, ""):
        assert (await client.get(f"/api/tickets?number={bad}")).status == 400
    audit = await store.ticket_access_audit(ticket_no)
    assert [(r["viewer"], r["action"], r["basis"]) for r in audit] == [("lead1", "lookup", "supervisor")]


# -- the current call's screen-pop ---------------------------------------------------------------------------


async def test_the_current_screenpop_is_the_last_pop_sent_to_the_agent_under_its_own_id(client, store, tmp_path,
                                                                                       ticket, ticket_no, clock):
    await login(client, tmp_path)
    response = await client.get("/api/screenpop")
    assert response.status == 200
    pop = (await response.json())["pop"]
    assert (pop["id"], pop["agent"], pop["call_id"], pop["caller_number"]) == ("pop-1", "agent1", "call-1", NUMBER)
    assert (pop["ticket"]["id"], pop["ticket"]["public_id"]) == (ticket_no, ticket)
    assert pop["ticket"]["address"] == "赤坎区人民大道中 1 号"
    await client.put(f"/api/tickets/{ticket}", json={"address": "霞山区海滨大道 8 号"})
    await store.update_call("call-1", ended_at=NOW)
    # saved and hung up: nothing is current any more
    assert (await (await client.get("/api/screenpop")).json()) == {"pop": None}


async def test_an_agent_without_a_pop_or_signed_out_gets_none(client, store, tmp_path, ticket):
    assert (await client.get("/api/screenpop")).status == 401
    await login(client, tmp_path, "agent2")
    assert (await (await client.get("/api/screenpop")).json()) == {"pop": None}
    await login(client, tmp_path, "lead1")
    assert (await (await client.get("/api/screenpop")).json()) == {"pop": None}   # agent1's, not the supervisor's


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
    anonymous = await a_ticket(store, "call-anon", number=None)
    await answered_by(store, "agent1", anonymous, call_id="call-anon", message_id="pop-anon")
    await login(client, tmp_path)
    response = await client.post(f"/api/tickets/{await public(store, anonymous)}/abusive", json={"reason": "威胁"})
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
                  await client.get("/api/screenpop"), await client.get("/api/session"),
                  await client.put(f"/api/tickets/{ticket}", json={"due": "x"})]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "connect-src 'self' ws://127.0.0.1:19001;" in csp
        assert "frame-ancestors 'none'" in csp
        assert "worker-src blob:;" in csp and "script-src 'self';" in csp   # MQTT.js's keepalive worker only


async def test_page_and_static_files_are_served_with_the_same_policy(client):
    page = await client.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = await page.text()
    for label in ("坐席工号", "工单编号", "诉求类型", "承办单位", "办理时限", "保存工单", "标记骚扰来电", "来电历史"):
        assert label in html
    assert "http://" not in html and "https://" not in html  # nothing from outside the gateway
    assert "Content-Security-Policy" in page.headers
    for name in ("console.js", "broker.js", "vendor/mqtt/mqtt.min.js", "vendor/mqtt/LICENSE", "console.css"):
        response = await client.get(f"/static/{name}")
        assert response.status == 200, name
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (await client.get("/static/")).status in (403, 404)
    assert (await client.get("/static/../console.py")).status in (403, 404)
