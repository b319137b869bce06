"""The console's one-key transfer to a linked centre (POST /api/tickets/{id}/transfer, GET /api/centres)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.console import app as console
from gateway.console.app import create_console_app
from gateway.mqtt.passwords import mqtt_password
from gateway.store.database import Store
from linkage.agent_transfer import TransferError

NUMBER = "+8613800138000"
WS_URL = "ws://127.0.0.1:19001/mqtt"
NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
CENTRES = [{"name": "119", "label": "消防 119"}, {"name": "120"}]
STATIC = Path(console.__file__).with_name("static")


class FakeTransfer:
    def __init__(self, error: str | None = None) -> None:
        self.calls: list[dict] = []
        self.error = error

    async def __call__(self, **kwargs) -> int:
        self.calls.append(kwargs)
        if self.error:
            raise TransferError(self.error)
        return 7


@pytest.fixture(autouse=True)
def fast_failures(monkeypatch):
    monkeypatch.setattr(console, "LOGIN_FAILURE_DELAY_S", 0.05)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "db" / "hotline.sqlite")
    yield s
    await s.close()


@pytest.fixture
def fake():
    return FakeTransfer()


async def make_client(store, tmp_path, transfer, centres=lambda: CENTRES):
    app = create_console_app(store=store, state_dir=tmp_path / "state", agents=["agent1", "agent2"],
                             ws_url=WS_URL, clock=lambda: NOW, transfer=transfer, centres=centres)
    return TestClient(TestServer(app))


@pytest.fixture
async def client(store, tmp_path, fake):
    async with await make_client(store, tmp_path, fake) as c:
        yield c


@pytest.fixture
async def ticket_no(store):
    """The number of agent1's ticket (agent1 answered the call)."""
    await store.open_call(call_id="call-1", number=NUMBER, channel="PJSIP/trunk-00000001", started_at=NOW)
    number = await store.create_ticket_draft(call_id="call-1", request_type="help", created_at=NOW)
    await store.record_screenpop(message_id="pop-1", agent="agent1", call_id="call-1", ticket_id=number,
                                 reason=None, at=NOW)
    return number


@pytest.fixture
async def ticket(store, ticket_no):
    """Its public id, the console's name for it."""
    return (await store.get_ticket_draft(ticket_no))["public_id"]


async def login(client, tmp_path, agent="agent1"):
    response = await client.post("/api/login", json={"agent": agent, "password": mqtt_password(tmp_path / "state",
                                                                                                 agent)})
    assert response.status == 200, await response.text()


async def test_transfer_calls_the_transfer_function_with_the_drafts_call_and_the_signed_in_agent(
        client, tmp_path, ticket, ticket_no, fake):
    await login(client, tmp_path)
    response = await client.post(f"/api/tickets/{ticket}/transfer", json={"centre": "119", "mode": "threeway"})
    assert response.status == 202
    assert await response.json() == {"handoff_id": 7}
    assert fake.calls == [{"call_id": "call-1", "centre": "119", "mode": "threeway", "agent": "agent1",
                           "ticket_id": ticket_no}]
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_refused_transfer_is_409_with_the_reason(store, tmp_path, ticket):
    refusing = FakeTransfer(error="this call is not connected to an agent")
    async with await make_client(store, tmp_path, refusing) as c:
        await login(c, tmp_path)
        response = await c.post(f"/api/tickets/{ticket}/transfer", json={"centre": "119", "mode": "blind"})
        assert response.status == 409
        assert (await response.json())["reason"] == "this call is not connected to an agent"


async def test_without_a_transfer_function_the_api_is_unavailable(store, tmp_path, ticket):
    async with await make_client(store, tmp_path, None) as c:
        await login(c, tmp_path)
        response = await c.post(f"/api/tickets/{ticket}/transfer", json={"centre": "119", "mode": "blind"})
        assert response.status == 503


async def test_transfer_needs_a_session(client, ticket, fake):
    response = await client.post(f"/api/tickets/{ticket}/transfer", json={"centre": "119", "mode": "blind"})
    assert response.status == 401 and fake.calls == []


@pytest.mark.parametrize("headers, data, status", [
    ({"Content-Type": "application/x-www-form-urlencoded"}, "centre=119&mode=blind", 415),
    ({"Content-Type": "text/plain"}, '{"centre": "119", "mode": "blind"}', 415),
    ({"Content-Type": "application/json", "Origin": "https://evil.example"}, '{"centre": "119", "mode": "blind"}',
     403),
])
async def test_transfer_follows_the_csrf_rules(client, tmp_path, ticket, fake, headers, data, status):
    await login(client, tmp_path)
    response = await client.post(f"/api/tickets/{ticket}/transfer", data=data, headers=headers)
    assert response.status == status and fake.calls == []


async def test_another_agents_ticket_cannot_be_transferred(client, tmp_path, store, ticket, fake):
    await login(client, tmp_path, "agent2")
    response = await client.post(f"/api/tickets/{ticket}/transfer", json={"centre": "119", "mode": "blind"})
    assert response.status == 404 and fake.calls == []


@pytest.mark.parametrize("body, field", [
    ({"centre": "119", "mode": "conference"}, "mode"),
    ({"centre": "119"}, "mode"),
    ({"centre": "", "mode": "blind"}, "centre"),
    ({"centre": "119\nevent=forged", "mode": "blind"}, "centre"),
    ({"centre": 119, "mode": "blind"}, "centre"),
])
async def test_a_bad_centre_or_mode_is_400(client, tmp_path, ticket, fake, body, field):
    await login(client, tmp_path)
    response = await client.post(f"/api/tickets/{ticket}/transfer", json=body)
    assert response.status == 400 and (await response.json())["field"] == field and fake.calls == []


async def test_unknown_ticket_is_404(client, tmp_path, fake):
    await login(client, tmp_path)
    response = await client.post(f"/api/tickets/{'f' * 32}/transfer", json={"centre": "119", "mode": "blind"})
    assert response.status == 404 and fake.calls == []


async def test_centres_lists_name_and_label_for_a_signed_in_agent(client, tmp_path):
    assert (await client.get("/api/centres")).status == 401
    await login(client, tmp_path)
    response = await client.get("/api/centres")
    assert response.status == 200
    assert await response.json() == {"centres": [{"name": "119", "label": "消防 119"},
                                                 {"name": "120", "label": "120"}]}


async def test_centres_default_to_none(store, tmp_path):
    app = create_console_app(store=store, state_dir=tmp_path / "state", agents=["agent1"], ws_url=WS_URL,
                             clock=lambda: NOW)
    async with TestClient(TestServer(app)) as c:
        await login(c, tmp_path)
        assert await (await c.get("/api/centres")).json() == {"centres": []}


def test_the_page_has_the_transfer_row_with_stable_ids():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    for element_id in ("transfer-centre", "transfer-blind", "transfer-threeway", "transfer-status"):
        assert f'id="{element_id}"' in html
    assert "转接联动单位" in html and ">转接<" in html and ">三方通话<" in html
    js = (STATIC / "console.js").read_text(encoding="utf-8")
    assert "/api/centres" in js and "/transfer`" in js and "innerHTML" not in js.replace("never innerHTML", "")


# -- in the browser (headless Chromium, a real broker; skipped where they are missing) ----------------------------


@pytest.fixture
def transfer_server(tmp_path, broker, monkeypatch):
    import functools

    from tests.integration import test_console_browser as b
    refusals = {"120": "this call is not connected to an agent"}
    calls: list[dict] = []

    async def transfer(**kwargs) -> int:
        calls.append(kwargs)
        if kwargs["centre"] in refusals:
            raise TransferError(refusals[kwargs["centre"]])
        return 11

    monkeypatch.setattr(b, "create_console_app", functools.partial(create_console_app, transfer=transfer,
                                                                   centres=lambda: CENTRES))
    server = b.ConsoleServer(tmp_path / "db" / "hotline.sqlite", broker["state_dir"], broker["ws_url"])
    server.transfer_calls = calls
    yield server
    server.close()


try:  # the browser test's fixtures and its skip condition (Debian chromium, chromedriver, mosquitto)
    from tests.integration.test_console_browser import broker, browser, publish  # noqa: F401
    from tests.integration.test_console_browser import pytestmark as _needs_browser
except pytest.skip.Exception:  # no selenium
    _needs_browser = pytest.mark.skip(reason="needs selenium")


@_needs_browser
def test_the_agent_transfers_from_the_page_and_sees_the_outcome(transfer_server, broker, publish, browser):
    from tests.integration import test_console_browser as b
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server = transfer_server
    b.sign_in(browser, server.url, "agent1", mqtt_password(broker["state_dir"], "agent1"))
    ticket = b.make_ticket(server, "call-1", "赤坎区人民大道中 1 号", answered_by="agent1", pop_id="pop-1")
    publish("agent1", b.screenpop("pop-1", "agent1", "call-1", ticket, "赤坎区人民大道中 1 号"))
    b.wait_for(browser, lambda d: b.text(d, "ticket-id") == ticket.number, "the screen-pop")
    select = Select(browser.find_element(By.ID, "transfer-centre"))
    assert [o.text for o in select.options] == ["消防 119", "120"]

    select.select_by_value("119")
    browser.find_element(By.ID, "transfer-blind").click()
    b.wait_for(browser, lambda d: b.text(d, "transfer-status") == "已转接 消防 119", "the transfer notice")
    select.select_by_value("120")
    browser.find_element(By.ID, "transfer-threeway").click()
    b.wait_for(browser, lambda d: "this call is not connected to an agent" in b.text(d, "transfer-status"),
               "the refusal's reason")
    assert server.transfer_calls == [
        {"call_id": "call-1", "centre": "119", "mode": "blind", "agent": "agent1", "ticket_id": ticket.number},
        {"call_id": "call-1", "centre": "120", "mode": "threeway", "agent": "agent1", "ticket_id": ticket.number}]
