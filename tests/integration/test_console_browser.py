"""The agent console end to end in headless Chromium: a real mosquitto (websockets, password file, per-agent ACL),
the console app on a free port with a real Store, screen-pops published as the gateway's broker user (by hand, or
by the gateway's own ScreenPopper on an AgentConnect event), the page's MQTT client the vendored MQTT.js."""

import asyncio
import json
import shutil
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

import paho.mqtt.client as paho
import pytest
from aiohttp import web

from ami_handlers.screenpop import ScreenPopper
from gateway.console.app import create_console_app
from gateway.mqtt.broker_config import write_broker_config
from gateway.sandbox.broker import LocalBroker, free_port
from gateway.mqtt.passwords import mqtt_password
from gateway.contract import GATEWAY_USER
from gateway.store.database import Store

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists() and shutil.which("mosquitto")),
    reason="needs Debian chromium, chromedriver and mosquitto",
)

HOST = "127.0.0.1"
NUMBER = "+8613800138000"
NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
WAIT_S = 15


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {HOST}:{port}")


@pytest.fixture
def broker(tmp_path):
    state_dir = tmp_path / "state"
    port, ws_port = free_port(HOST), free_port(HOST)
    conf = write_broker_config(state_dir, host=HOST, port=port, ws_port=ws_port,
                               agents=["agent1", "agent2", "lead1"], centres=[])
    broker = LocalBroker(conf, host=HOST, port=port, log_file=tmp_path / "mosquitto.log")
    broker.start()
    try:
        wait_port(ws_port)
        yield {"state_dir": state_dir, "port": port, "ws_port": ws_port, "ws_url": f"ws://{HOST}:{ws_port}/mqtt",
               "process": broker}
    finally:
        broker.stop()


class ConsoleServer:
    """The console app and its Store on an event loop in a background thread (selenium calls block)."""

    def __init__(self, db_path: Path, state_dir: Path, ws_url: str,
                 make_app: Callable[[Store], web.Application] | None = None) -> None:
        """``make_app(store)``: another app than the console with its three test agents."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-server", daemon=True)
        self.thread.start()
        self.port = free_port(HOST)
        self.store: Store = self.run(Store.open(db_path))
        app = make_app(self.store) if make_app is not None else create_console_app(
            store=self.store, state_dir=state_dir, agents=["agent1", "agent2", "lead1"], supervisors=["lead1"],
            ws_url=ws_url, clock=lambda: datetime.now(UTC))
        self.runner = web.AppRunner(app)
        self.run(self.runner.setup())
        self.run(web.TCPSite(self.runner, HOST, self.port).start())
        self.url = f"http://{HOST}:{self.port}/"

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.runner.cleanup())
        self.run(self.store.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server(tmp_path, broker):
    s = ConsoleServer(tmp_path / "db" / "hotline.sqlite", broker["state_dir"], broker["ws_url"])
    yield s
    s.close()


@pytest.fixture
def publish(broker):
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-gateway", protocol=paho.MQTTv311)
    client.username_pw_set(GATEWAY_USER, mqtt_password(broker["state_dir"], GATEWAY_USER))
    client.connect(HOST, broker["port"])
    client.loop_start()

    def send(agent: str, pop: dict) -> None:
        info = client.publish(f"hotline/agents/{agent}/screenpop", json.dumps(pop, ensure_ascii=False), qos=1)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), "the broker did not PUBACK the screen-pop"

    yield send
    client.loop_stop()
    client.disconnect()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Ticket(NamedTuple):
    number: str      # what the caller hears and the page shows
    public_id: str   # what the page's API calls name it by


def make_ticket(server: ConsoleServer, call_id: str, address: str, *, answered_by: str | None = None,
                pop_id: str | None = None) -> Ticket:
    """A queued call's ticket draft; ``answered_by`` records, as the gateway's screen-pop does, that this agent
    answered (so the agent may see it) under the pop's id."""
    async def create() -> Ticket:
        await server.store.open_call(call_id=call_id, number=NUMBER, channel=f"PJSIP/trunk-{call_id}",
                                     started_at=NOW)
        number = await server.store.create_ticket_draft(call_id=call_id, request_type="complaint",
                                                        created_at=NOW)
        await server.store.update_ticket_draft(number, address=address, unit="赤坎区住建局", category="噪音扰民",
                                               due=date(2026, 3, 20), summary="小区夜间施工噪音",
                                               transcript="你好，我要投诉人民大道中一号工地夜里施工。")
        if answered_by:
            await server.store.record_screenpop(message_id=pop_id or f"pop-{call_id}", agent=answered_by,
                                                call_id=call_id, ticket_id=number, reason=None,
                                                at=datetime.now(UTC))
        return Ticket(number, (await server.store.get_ticket_draft(number))["public_id"])
    return server.run(create())


def screenpop(pop_id: str, agent: str, call_id: str, ticket: Ticket, address: str) -> dict:
    return {
        "id": pop_id, "agent": agent, "call_id": call_id, "caller_number": NUMBER,
        "ticket": {"id": ticket.number, "public_id": ticket.public_id, "type": "complaint", "category": "噪音扰民", "unit": "赤坎区住建局",
                   "address": address, "callback_number": NUMBER, "emergency": None, "due": "2026-03-20",
                   "summary": "小区夜间施工噪音"},
        "ivr_path": ["welcome", "3:complaint", "speech"],
        "transcript": "你好，我要投诉人民大道中一号工地夜里施工。",
        "history": {"calls": [{"call_id": "old-1", "started_at": "2026-02-11T02:00:00+00:00",
                               "request_type": "complaint", "outcome": "answered"}],
                    "tickets": [{"id": "2026021100003", "type": "complaint", "category": "噪音扰民",
                                 "status": "saved", "created_at": "2026-02-11T02:05:00+00:00"}],
                    "restrictions": []},
        "created_at": "2026-03-02T01:30:00+00:00",
    }


def wait_for(driver, condition: Callable, what: str):
    return WebDriverWait(driver, WAIT_S).until(lambda d: condition(d), message=f"timed out waiting for {what}")


def text(driver, css_id: str) -> str:
    return driver.find_element(By.ID, css_id).text


def value(driver, css_id: str) -> str:
    return driver.find_element(By.ID, css_id).get_attribute("value")


def sign_in(driver, url: str, agent: str, password: str) -> None:
    driver.get(url)
    driver.find_element(By.ID, "login-agent").send_keys(agent)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, lambda d: text(d, "status") == "已连接", "the console to connect to the broker")


def listed_pops(driver) -> list[str]:
    return [li.get_attribute("data-pop-id") for li in driver.find_elements(By.CSS_SELECTOR, "#pops li")]


def test_agent_gets_own_screenpop_saves_ticket_and_requests_restriction(server, broker, publish, browser, tmp_path):
    sign_in(browser, server.url, "agent1", mqtt_password(broker["state_dir"], "agent1"))

    other_ticket = make_ticket(server, "call-agent2", "麻章区瑞云路 99 号", answered_by="agent2", pop_id="pop-agent2")
    publish("agent2", screenpop("pop-agent2", "agent2", "call-agent2", other_ticket, "麻章区瑞云路 99 号"))
    ticket = make_ticket(server, "call-1", "赤坎区人民大道中 1 号", answered_by="agent1", pop_id="pop-1")
    publish("agent1", screenpop("pop-1", "agent1", "call-1", ticket, "赤坎区人民大道中 1 号"))

    wait_for(browser, lambda d: value(d, "ticket-address") == "赤坎区人民大道中 1 号", "the screen-pop's address")
    assert text(browser, "ticket-id") == ticket.number
    assert value(browser, "ticket-type") == "complaint"
    assert value(browser, "ticket-unit") == "赤坎区住建局"
    assert value(browser, "ticket-due") == "2026-03-20"
    assert text(browser, "caller-number") == "13800138000"
    assert value(browser, "ticket-callback") == "13800138000"
    assert "人民大道中一号工地" in text(browser, "transcript")
    assert "2026021100003" in text(browser, "history-tickets")

    address = browser.find_element(By.ID, "ticket-address")
    address.clear()
    address.send_keys("赤坎区人民大道中 3 号")
    browser.find_element(By.ID, "save").click()
    wait_for(browser, lambda d: text(d, "save-status") == "已保存", "已保存")
    saved = server.run(server.store.get_ticket_draft(ticket.number))
    assert (saved["address"], saved["status"], saved["agent"]) == ("赤坎区人民大道中 3 号", "saved", "agent1")
    assert saved["callback_number"] == NUMBER

    browser.find_element(By.ID, "abusive-reason").send_keys("辱骂坐席人员")
    browser.find_element(By.ID, "mark-abusive").click()
    wait_for(browser, lambda d: text(d, "abusive-status") == "已提交，待班长确认", "the pending-restriction notice")
    pending = server.run(server.store.list_pending_restrictions())
    assert [(p["number"], p["requested_by"], p["call_id"], p["reason"]) for p in pending] == [
        (NUMBER, "agent1", "call-1", "辱骂坐席人员")]
    browser.save_screenshot(str(tmp_path / "console.png"))

    # At-least-once delivery: the same pop again must not be listed twice; a later pop marks that it was handled.
    publish("agent1", screenpop("pop-1", "agent1", "call-1", ticket, "赤坎区人民大道中 1 号"))
    second_ticket = make_ticket(server, "call-2", "霞山区海滨大道 8 号", answered_by="agent1", pop_id="pop-2")
    publish("agent1", screenpop("pop-2", "agent1", "call-2", second_ticket, "霞山区海滨大道 8 号"))
    wait_for(browser, lambda d: "pop-2" in listed_pops(d), "the second screen-pop")
    assert listed_pops(browser) == ["pop-2", "pop-1"]
    page = browser.page_source
    assert "pop-agent2" not in page and other_ticket.number not in page and "麻章区" not in page


def test_low_confidence_fields_are_marked_for_the_agent_and_editing_clears_the_mark(server, broker, publish,
                                                                                   browser):
    sign_in(browser, server.url, "agent1", mqtt_password(broker["state_dir"], "agent1"))
    ticket = make_ticket(server, "call-unsure", "赤坎区人民大道中 1 号", answered_by="agent1", pop_id="pop-unsure")
    pop = screenpop("pop-unsure", "agent1", "call-unsure", ticket, "赤坎区人民大道中 1 号")
    pop["ticket"]["scores"] = {"type": {"score": 0.93}, "category": {"score": 0.41, "runner_up": "城市管理",
                                                                     "runner_up_score": 0.33}}
    pop["ticket"]["check"] = ["category"]
    publish("agent1", pop)
    wait_for(browser, lambda d: value(d, "ticket-address") == "赤坎区人民大道中 1 号", "the screen-pop")
    category = browser.find_element(By.ID, "ticket-category")
    assert "check" in category.get_attribute("class").split()
    assert category.get_attribute("title") == "识别把握 41%，请核对（次选：城市管理 33%）"
    assert "check" not in (browser.find_element(By.ID, "ticket-type").get_attribute("class") or "").split()
    category.send_keys("类")
    wait_for(browser, lambda d: "check" not in d.find_element(By.ID, "ticket-category").get_attribute("class"),
             "the mark to clear once the agent edits the field")


def test_wrong_password_shows_an_error_and_no_workspace(server, browser):
    browser.get(server.url)
    browser.find_element(By.ID, "login-agent").send_keys("agent1")
    browser.find_element(By.ID, "login-password").send_keys("wrong")
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, lambda d: text(d, "login-error") == "坐席工号或密码错误", "the sign-in error")
    assert not browser.find_element(By.ID, "workspace").is_displayed()
    assert text(browser, "status") == "未登录"


def test_console_reconnects_and_resubscribes_after_a_broker_restart(server, broker, publish, browser):
    sign_in(browser, server.url, "agent1", mqtt_password(broker["state_dir"], "agent1"))
    broker["process"].stop()
    wait_for(browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "reconnecting",
             "the console to notice the broker is gone")
    broker["process"].start()
    wait_port(broker["ws_port"])
    wait_for(browser, lambda d: text(d, "status") == "已连接", "the console to reconnect")

    ticket = make_ticket(server, "call-after", "坡头区官渡镇", answered_by="agent1", pop_id="pop-after")
    publish("agent1", screenpop("pop-after", "agent1", "call-after", ticket, "坡头区官渡镇"))
    wait_for(browser, lambda d: value(d, "ticket-address") == "坡头区官渡镇", "a screen-pop after the reconnect")


def test_the_vendored_mqtt_client_keeps_an_idle_connection_alive_with_pings(server, broker, browser):
    browser.get(server.url)
    # keepalive 1 s: mosquitto drops a client silent for 1.5 s, so four answered pings prove PINGREQ works (and
    # that the bundle runs under the page's Content-Security-Policy).
    browser.execute_script("""
        window.pongs = 0; window.closes = 0;
        window.probe = mqtt.connect(arguments[0], {protocolVersion: 4, clientId: "keepalive-probe",
          username: "agent1", password: arguments[1], keepalive: 1, reconnectPeriod: 0});
        window.probe.on("packetreceive", (packet) => { if (packet.cmd === "pingresp") window.pongs += 1; });
        window.probe.on("close", () => { window.closes += 1; });
    """, broker["ws_url"], mqtt_password(broker["state_dir"], "agent1"))
    wait_for(browser, lambda d: d.execute_script("return window.pongs") >= 4, "four PINGRESPs")
    assert browser.execute_script("return window.closes") == 0
    browser.execute_script("window.probe.end(true)")


def test_a_console_the_broker_refuses_says_so_and_stops_retrying(server, broker, browser):
    # The agent's secret was rotated but the broker still has the old hash: the gateway accepts the new password,
    # the broker does not (mosquitto answers "not authorised", CONNACK 5).
    secret = Path(broker["state_dir"]) / "secrets" / "mqtt" / "agent1.secret"
    secret.write_text("rotated-but-broker-not-reloaded\n")
    browser.get(server.url)
    browser.find_element(By.ID, "login-agent").send_keys("agent1")
    browser.find_element(By.ID, "login-password").send_keys("rotated-but-broker-not-reloaded")
    browser.find_element(By.ID, "login-submit").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "refused",
             "the refusal")
    assert text(browser, "status") == "连接被拒绝：未授权"
    time.sleep(3)   # longer than the reconnect period: a retry would show "connecting" again
    assert text(browser, "status") == "连接被拒绝：未授权"


class CuttableRelay:
    """A TCP relay in front of the broker's websockets port that the test can cut: open connections are closed and
    new ones refused until it is restored (a console whose network drops, while the broker stays up)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                conn.close()
                continue
            upstream = socket.create_connection((HOST, self.target_port))
            with self.lock:
                self.sockets |= {conn, upstream}
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


class PahoOutbox:
    """The gateway's outbox as the ScreenPopper sees it, publishing at once as the gateway's broker user."""

    def __init__(self, send: Callable[[str, dict], None]) -> None:
        self.send = send

    async def put(self, topic: str, payload: dict, *, message_id: str) -> int:
        await asyncio.to_thread(self.send, topic.split("/")[2], payload)
        return 1


@pytest.fixture
def relay(broker):
    r = CuttableRelay(broker["ws_port"])
    yield r
    r.close()


@pytest.fixture
def relayed_server(tmp_path, broker, relay):
    s = ConsoleServer(tmp_path / "db" / "hotline.sqlite", broker["state_dir"], f"ws://{HOST}:{relay.port}/mqtt")
    yield s
    s.close()


def answer(server: ConsoleServer, publish, agent: str, call_id: str, address: str) -> Ticket:
    """A queued call's ticket, then the AgentConnect that puts ``agent`` on it: the gateway's own ScreenPopper
    records the pop and publishes it (QoS 1, PUBACKed by the broker whether or not the console listens)."""
    ticket = make_ticket(server, call_id, address)
    popper = ScreenPopper(server.store, PahoOutbox(publish), clock=lambda: datetime.now(UTC))
    event = {"Event": "AgentConnect", "Queue": "hotline", "MemberName": f"PJSIP/{agent}",
             "Interface": f"PJSIP/{agent}", "CallerIDNum": "13800138000",
             "ChanVariable": [f"HOTLINE_CALL_ID={call_id}", f"HOTLINE_TICKET_ID={ticket.number}"]}
    server.run(popper.handle(event))
    assert popper.popped == 1, "the ScreenPopper did not pop"
    return ticket


def test_a_console_whose_websocket_was_cut_shows_the_pop_published_while_it_was_away(relayed_server, relay, broker,
                                                                                     publish, browser):
    server = relayed_server
    sign_in(browser, server.url, "agent1", mqtt_password(broker["state_dir"], "agent1"))
    relay.cut()
    wait_for(browser, lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "reconnecting",
             "the console to notice its connection is gone")
    ticket = answer(server, publish, "agent1", "call-away", "遂溪县遂城镇")
    time.sleep(1)   # the broker has PUBACKed and dropped the pop: nobody was subscribed
    assert value(browser, "ticket-address") in ("", None) and listed_pops(browser) == []

    restored = time.monotonic()
    relay.restore()
    wait_for(browser, lambda d: value(d, "ticket-address") == "遂溪县遂城镇", "the pop published while away")
    shown_after = time.monotonic() - restored
    assert text(browser, "ticket-id") == ticket.number and text(browser, "status") == "已连接"
    print(f"pop published while the console was cut off: shown {shown_after:.2f} s after the network came back")

    # Live pops still come over MQTT after the reconnect, and the fetched one is not listed twice.
    answer(server, publish, "agent1", "call-live", "廉江市罗州街道")
    wait_for(browser, lambda d: value(d, "ticket-address") == "廉江市罗州街道", "a live pop after the reconnect")
    assert len(listed_pops(browser)) == 2


def test_a_console_that_loads_or_reloads_after_the_answer_shows_the_pop(server, broker, publish, browser):
    ticket = answer(server, publish, "agent1", "call-early", "吴川市梅录街道")   # before any console is open
    sign_in(browser, server.url, "agent1", mqtt_password(broker["state_dir"], "agent1"))
    wait_for(browser, lambda d: value(d, "ticket-address") == "吴川市梅录街道", "the pop of the call answered before")
    assert text(browser, "ticket-id") == ticket.number

    browser.refresh()
    # The session survives the reload: the pop is back at once, the broker waits for the password.
    wait_for(browser, lambda d: value(d, "ticket-address") == "吴川市梅录街道", "the pop after a reload")
    assert browser.find_element(By.ID, "workspace").is_displayed()
    assert browser.find_element(By.ID, "status").get_attribute("data-state") == "password-needed"
    browser.find_element(By.ID, "reconnect-password").send_keys(mqtt_password(broker["state_dir"], "agent1"))
    browser.find_element(By.ID, "reconnect-submit").click()
    wait_for(browser, lambda d: text(d, "status") == "已连接", "the broker connection after the reload")
    assert not browser.find_element(By.ID, "reconnect-form").is_displayed()
    assert listed_pops(browser) == [server.run(server.store.latest_screenpop("agent1"))["message_id"]]


def test_another_agents_console_never_gets_the_pop_of_a_call_it_did_not_answer(server, broker, publish, browser):
    answer(server, publish, "agent1", "call-a1", "赤坎区北桥街道")
    sign_in(browser, server.url, "agent2", mqtt_password(broker["state_dir"], "agent2"))
    time.sleep(1)   # the fetch after subscribing has answered
    assert listed_pops(browser) == [] and "赤坎区北桥街道" not in browser.page_source


def test_a_supervisor_opens_an_agents_ticket_by_its_number_and_saves_it_audited(server, broker, publish, browser):
    ticket = answer(server, publish, "agent1", "call-sup", "雷州市雷城街道")
    sign_in(browser, server.url, "lead1", mqtt_password(broker["state_dir"], "lead1"))
    assert text(browser, "signed-in-agent") == "班长 lead1"
    assert listed_pops(browser) == []   # agent1's pop is agent1's
    browser.find_element(By.ID, "lookup-number").send_keys(ticket.number)
    browser.find_element(By.ID, "lookup-submit").click()
    wait_for(browser, lambda d: value(d, "ticket-address") == "雷州市雷城街道", "the ticket looked up")
    assert text(browser, "ticket-id") == ticket.number and text(browser, "caller-number") == "13800138000"
    category = browser.find_element(By.ID, "ticket-category")
    category.clear()
    category.send_keys("市政设施")
    browser.find_element(By.ID, "save").click()
    wait_for(browser, lambda d: text(d, "save-status") == "已保存", "已保存")
    saved = server.run(server.store.get_ticket_draft(ticket.number))
    assert (saved["category"], saved["agent"]) == ("市政设施", "agent1")
    audit = server.run(server.store.ticket_access_audit(ticket.number))
    assert [(r["viewer"], r["role"], r["action"]) for r in audit] == [
        ("lead1", "supervisor", "lookup"), ("lead1", "supervisor", "save")]


def test_the_aftercall_panel_lists_call_backs_and_plays_the_agents_recording(server, broker, browser, tmp_path):
    """The agent sees their call-back task and the recording of a call they answered and plays it in the page (the
    browser fetches it with Range); a supervisor also sees the pending restriction with its evidence."""
    from ivr.survey import SurveyKind
    from recordings.call_files import file_call_recording, spool_path
    from tests.audio_files import mixmonitor_wav, tone_pcm

    ticket = make_ticket(server, "1764554400.9", "赤坎区人民大道中 1 号", answered_by="agent1")

    async def prepare():
        store = server.store
        await store.update_call("1764554400.9", outcome="answered", agent="agent1", answered_at=NOW)
        rating = await store.open_survey(SurveyKind.INTAKE, call_id="1764554400.9", ticket_id=ticket.number,
                                         number=NUMBER, at=NOW)
        task = await store.record_rating(rating, 4, at=NOW, callback_due=date(2026, 3, 4))
        await store.assign_callback(task, agent="agent1")
        source = mixmonitor_wav(spool_path(tmp_path / "spool", "1764554400.9"), tone_pcm(3.0))
        filed = file_call_recording(source, tmp_path / "rec", "1764554400.9", NOW, fmt="wav")
        await store.file_call_recording(call_id="1764554400.9", path=str(filed.path), format=filed.format,
                                        duration_s=filed.duration_s, size=filed.size, sha256=filed.sha256,
                                        state=filed.state, note=None, recorded_at=NOW)
        await store.add_pending_restriction(number=NUMBER, reason="辱骂坐席", requested_by="agent1",
                                            call_id="1764554400.9", at=NOW)
        return task

    task = server.run(prepare())
    sign_in(browser, server.url, "agent1", mqtt_password(broker["state_dir"], "agent1"))
    wait_for(browser, lambda d: "受理评价：不满意" in text(d, "callbacks"), "the call-back task")
    assert f"#{task}" in text(browser, "callbacks") and "138****8000" in text(browser, "callbacks")
    assert "13800138000" not in text(browser, "callbacks")
    wait_for(browser, lambda d: "3 秒" in text(d, "recordings"), "the recording")
    assert not browser.find_element(By.ID, "pending-section").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#recordings button").click()
    wait_for(browser, lambda d: d.execute_script("return document.getElementById('player').duration || 0") > 2.5,
             "the player to load the recording")
    audit = server.run(server.store.recording_access_audit("1764554400.9"))
    assert audit and all(a["viewer"] == "agent1" and a["allowed"] for a in audit)
    browser.find_element(By.ID, "logout").click()
    sign_in(browser, server.url, "lead1", mqtt_password(broker["state_dir"], "lead1"))
    wait_for(browser, lambda d: "辱骂坐席" in text(d, "pending"), "the pending request")
    assert "听取录音" in text(browser, "pending")
