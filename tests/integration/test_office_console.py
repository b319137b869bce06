"""The console's supervisors' page (gateway/console/office_api.py) on a store filled with a known day
(tests/office_day.py): over HTTP on both backends, and rendered in headless Chromium, where the charts must be drawn
and the one-click restriction request must reach the store."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.basics.clock import SHANGHAI
from gateway.config import load_config
from gateway.console.app import create_console_app
from gateway.console.office_api import office_settings
from gateway.mqtt.passwords import mqtt_password
from gateway.store.database import Store
from tests.office_day import DAY, NUISANCE, fill_day

selenium = pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.integration.test_console_browser import ConsoleServer, browser  # noqa: E402,F401  (headless Chromium)

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)


def office_config():
    office = load_config(None).office
    return SimpleNamespace(gateway=SimpleNamespace(timezone="Asia/Shanghai"),
                           office=SimpleNamespace(**{**office.__dict__, "nuisance_silent_calls": 1}))


def console_app(store: Store, state_dir: Path) -> web.Application:
    return create_console_app(store=store, state_dir=state_dir, agents=["agent1", "lead1"], supervisors=["lead1"],
                              ws_url="ws://127.0.0.1:9001/mqtt", clock=lambda: NOW.astimezone(UTC),
                              office=office_settings(office_config()))


@pytest.fixture
async def console(store, tmp_path):
    await fill_day(store)
    client = TestClient(TestServer(console_app(store, tmp_path)))
    await client.start_server()
    yield client, tmp_path, store
    await client.close()


async def sign_in(client, state_dir, agent):
    reply = await client.post("/api/login", json={"agent": agent, "password": mqtt_password(state_dir, agent)})
    assert reply.status == 200


async def test_the_supervisors_page_shows_the_report_and_raises_a_request(console):
    client, state_dir, store = console
    assert (await client.get("/supervisor")).status == 401
    await sign_in(client, state_dir, "agent1")
    assert (await client.get("/supervisor")).status == 403
    assert (await client.get("/api/office/nuisance")).status == 403
    await sign_in(client, state_dir, "lead1")
    page = await client.get("/supervisor", params={"date": DAY.isoformat()})
    text = await page.text()
    assert page.status == 200 and "'unsafe-inline'" in page.headers["Content-Security-Policy"]
    assert text.count("<svg") == 5 and "57.14%" in text and "137****5555" in text and NUISANCE not in text
    assert (await client.get("/supervisor", params={"date": "yesterday"})).status == 400
    listed = await (await client.get("/api/office/nuisance", params={"date": DAY.isoformat()})).json()
    entry = next(e for e in listed["entries"] if e["number"] == "137****5555")
    reply = await client.post("/api/office/nuisance/request", json={"call_id": entry["last_call_id"],
                                                                    "reason": "无声来电"})
    assert reply.status == 201
    request_id = (await reply.json())["pending_request"]
    assert (await store.get_pending_restriction(request_id))["number"] == NUISANCE
    listed = await (await client.get("/api/office/nuisance", params={"date": DAY.isoformat()})).json()
    assert next(e for e in listed["entries"] if e["number"] == "137****5555")["pending_request"] == request_id
    assert (await client.post("/api/office/nuisance/request", json={"call_id": "x"})).status == 404
    assert (await client.post("/api/office/nuisance/request", data="call_id=x")).status == 415
    index = await client.get("/")
    assert "style-src 'self';" in index.headers["Content-Security-Policy"]  # the console keeps its strict policy


def test_chromium_draws_the_report_and_a_click_raises_the_request(tmp_path, browser):
    server = ConsoleServer(tmp_path / "hotline.sqlite", tmp_path / "state", "ws://127.0.0.1:9001/mqtt",
                           make_app=lambda store: console_app(store, tmp_path / "state"))
    try:
        server.run(fill_day(server.store))
        browser.get(server.url)
        status = browser.execute_async_script(
            "const done = arguments[2]; fetch('/api/login', {method: 'POST', headers: {'Content-Type':"
            " 'application/json'}, body: JSON.stringify({agent: arguments[0], password: arguments[1]})})"
            ".then(r => done(r.status), e => done(String(e)));", "lead1", mqtt_password(tmp_path / "state", "lead1"))
        assert status == 200
        browser.get(f"{server.url}supervisor?date={DAY.isoformat()}")
        charts = browser.find_elements(By.CSS_SELECTOR, "figure[data-chart] svg")
        sizes = [browser.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.width, r.height];",
                                        svg) for svg in charts]
        assert len(charts) == 5 and all(w > 300 and h > 150 for w, h in sizes), sizes
        # the glyphs of the Chinese titles are outlines in the SVG: drawn, whatever fonts the browser has
        glyphs = browser.execute_script(
            "return [...document.querySelectorAll('figure[data-chart] svg')].map(s => s.querySelectorAll("
            "'g[id^=text] use, g[id^=text] path').length);")
        assert all(count > 5 for count in glyphs), glyphs
        headline = {row.get_attribute("data-key"): row.find_element(By.CSS_SELECTOR, "td.num").text
                    for row in browser.find_elements(By.CSS_SELECTOR, "#headline tr")}
        assert headline["connection_rate"] == "57.14%" and headline["timely_rate"] == "66.67%"
        assert headline["offered"] == "10"
        row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#review tbody tr") if "137****5555" in r.text)
        row.find_element(By.CSS_SELECTOR, "button.request").click()
        WebDriverWait(browser, 10).until(lambda d: "待审批申请" in row.find_element(By.CSS_SELECTOR, ".state").text)
        pending = server.run(server.store.list_pending_restrictions())
        assert [p["number"] for p in pending] == [NUISANCE] and pending[0]["requested_by"] == "lead1"
        browser.save_screenshot(str(tmp_path / "supervisor.png"))
    finally:
        server.close()
