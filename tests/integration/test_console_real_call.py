"""Speech pre-fill, end to end: a sipp caller keys 3 and speaks, a sipp agent answers, and the agent console in
headless Chromium (Debian's) shows the filled ticket, live over MQTT-over-websockets from the stack's broker; and a
console opened only after the answer, or reloaded, shows the pop of the call in progress."""
from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.testcall import place_call

pytestmark = pytest.mark.integration
KOREAN = "안녕하세요 저는 집 앞 도로에 문제가 있어서 전화했습니다 빨리 고쳐 주세요"


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def only_agent1(sandbox):
    """agent1 alone answers (after 12 s of ringing); agent2 is paused in the queue and its phone is off.

    Pausing matters: agent2's contact is static, so an unpaused agent2 would be rung for the whole ring timeout
    whenever the queue's round robin came to it first, and the call would outlast the caller's hold."""
    queue, member = sandbox.config.queue.name, f"PJSIP/{sandbox.config.agents[1].name}"
    sandbox.stack.start_simulated_agents(log=lambda *_: None, answer_after_ms=12000)
    sandbox.stack.agents[1].stop(timeout=3)
    paused = sandbox.stack.root.cli(f"queue pause member {member} queue {queue} reason test")
    assert paused.returncode == 0 and "paused" in paused.stdout.lower(), paused.stdout + paused.stderr
    yield sandbox
    sandbox.stack.root.cli(f"queue unpause member {member} queue {queue}")
    for proc in sandbox.stack.agents:
        proc.stop(timeout=3)


def test_the_agent_console_shows_the_ticket_of_a_real_call(sandbox, only_agent1, browser, tmp_path):
    cfg = sandbox.config
    raw, wav = tmp_path / "raw.wav", tmp_path / "say.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), KOREAN], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)

    wait = WebDriverWait(browser, 20)
    browser.get(f"http://{cfg.console.host}:{cfg.console.port}/")
    browser.find_element(By.ID, "login-agent").send_keys("agent1")
    browser.find_element(By.ID, "login-password").send_keys(mqtt_password(cfg.state_dir, "agent1"))
    browser.find_element(By.ID, "login-submit").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text == "已连接", "console connected to the broker")

    result = asyncio.run(place_call(cfg, "13800138011", "3", hold_s=24, full=True, say=wav, speak_after_ms=6000))
    assert result["answered_by"] == "agent1", result
    ticket = result["ticket"]

    wait.until(lambda d: d.find_element(By.ID, "ticket-id").text == ticket["id"], "the screen-pop on the page")
    value = lambda css_id: browser.find_element(By.ID, css_id).get_attribute("value")  # noqa: E731
    assert value("ticket-type") == "complaint"
    assert value("ticket-due") == ticket["due"]
    assert browser.find_element(By.ID, "transcript").text.strip() == ticket["transcript"]
    assert ticket["transcript"]
    browser.save_screenshot(str(tmp_path / "console.png"))
    Path(cfg.state_dir / "logs" / "console-real-call.png").write_bytes((tmp_path / "console.png").read_bytes())


def answered_call(sandbox, number: str, timeout: float = 60.0) -> dict:
    """The call from ``number`` once an agent has answered it and its pop is recorded."""
    e164 = "+86" + number
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async def look(store):
            calls = [c for c in await store.list_calls(limit=20) if c["number"] == e164 and c["agent"]]
            pop = await store.latest_screenpop(calls[0]["agent"]) if calls else None
            return {**calls[0], "pop": pop} if pop and pop["call_id"] == calls[0]["call_id"] else None
        if found := sandbox.store_query(look):
            return found
        time.sleep(0.3)
    raise AssertionError(f"no answered call from {number} within {timeout} s")


def test_a_console_opened_after_the_answer_shows_the_pop_and_again_after_a_reload(sandbox, only_agent1, browser):
    cfg = sandbox.config
    number = "13800138012"
    outcome: dict = {}
    # The queue's rrmemory strategy may ring agent2's dead phone first (15 s ring timeout): the caller holds 60 s.
    caller = threading.Thread(target=lambda: outcome.update(
        asyncio.run(place_call(cfg, number, "3", hold_s=60, full=True))), daemon=True)
    caller.start()
    try:
        call = answered_call(sandbox, number)
        assert call["agent"] == "agent1" and call["ended_at"] is None
        answered = time.monotonic()
        ticket = sandbox.store_query(lambda store: store.get_ticket_draft(call["pop"]["ticket_id"]))

        wait = WebDriverWait(browser, 20)
        browser.get(f"http://{cfg.console.host}:{cfg.console.port}/")
        browser.find_element(By.ID, "login-agent").send_keys("agent1")
        browser.find_element(By.ID, "login-password").send_keys(mqtt_password(cfg.state_dir, "agent1"))
        browser.find_element(By.ID, "login-submit").click()
        wait.until(lambda d: d.find_element(By.ID, "ticket-id").text == ticket["ticket_id"],
                   "the pop of the call answered before the console opened")
        shown = time.monotonic() - answered
        assert browser.find_element(By.ID, "caller-number").text == number

        browser.refresh()
        wait.until(lambda d: d.find_element(By.ID, "ticket-id").text == ticket["ticket_id"], "the pop after a reload")
        items = [li.get_attribute("data-pop-id") for li in browser.find_elements(By.CSS_SELECTOR, "#pops li")]
        assert items == [call["pop"]["message_id"]]
        print(f"console opened after the answer: pop on screen {shown:.2f} s after the answer was recorded")
    finally:
        caller.join(90)
    assert outcome.get("answered_by") == "agent1", outcome
