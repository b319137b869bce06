"""The calls the hotline places itself, on the real stack (art. 15; 一事一评): a ticket reported done through the
live status API triggers an automated return call that reaches a sipp citizen, who keys 5; a dissatisfied
caller's call-back, started from the console, rings the sipp agent first and then the citizen, and its outcome is
recorded; the redo asked for on it sends the ticket back to its unit."""
from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from datetime import date, datetime

import aiohttp
import pytest

from gateway.basics.clock import SHANGHAI
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.dtmf_pcap import write_dtmf_pcaps
from gateway.sandbox.processes import ManagedProcess, udp_port_in_use, wait_until
from gateway.sandbox.sipp_scenario import agent_scenario
from ivr.survey import SurveyKind

pytestmark = pytest.mark.integration
CITIZEN = "13800138170"
_STAMP = re.compile(r"^-+ (\d{4}-\d\d-\d\d[ \t]\d\d:\d\d:\d\d\.\d+)$", re.MULTILINE)


def citizen_phone(sandbox, tmp_path, name: str, *, plays=(), hang_up_after_ms: int = 40_000):
    """A sipp UAS where the hotline's outbound trunk rings (aftercall.outbound_contact): the citizen's phone."""
    cfg = sandbox.config
    host, port = cfg.aftercall.outbound_contact.split(":", 1)[1].rsplit(":", 1)
    logs = cfg.state_dir / "logs"
    scenario = tmp_path / f"{name}.xml"
    scenario.write_text(agent_scenario(answer_after_ms=500, hang_up_after_ms=hang_up_after_ms, plays=plays))
    trace = logs / f"{name}-messages.log"
    trace.unlink(missing_ok=True)
    proc = ManagedProcess(name, logs / f"{name}.pid", logs / f"{name}.out")
    proc.start(["sipp", "-sf", str(scenario), "-i", host, "-p", port, "-mp", "30130", "-nostdin", "-trace_msg",
                "-message_file", str(trace)], cwd=logs)
    assert wait_until(lambda: udp_port_in_use(host, int(port)), 5), "the citizen's phone is not listening"
    return proc, trace


def report(cfg, ticket: str, body: dict) -> int:
    request = urllib.request.Request(
        f"http://{cfg.workorder.host}:{cfg.workorder.port}/api/v1/tickets/{ticket}/status",
        data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {cfg.workorder_token()}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def wait_for(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := fn():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_done_ticket_gets_a_return_call_and_the_citizen_keys_5(sandbox, tmp_path):
    cfg = sandbox.config
    now = datetime.now(SHANGHAI)

    async def a_ticket(store):
        ticket = await store.create_ticket_draft(call_id="return-call-earlier", request_type="complaint",
                                                 created_at=now)
        await store.update_ticket_draft(ticket, callback_number=CITIZEN)
        return ticket

    ticket = sandbox.store_query(a_ticket)
    # the return call's opening (about 6 s) plays without keys; 5 is pressed at 9 s and again at 15 s after answer
    pcaps = write_dtmf_pcaps([("5", 0), ("5", 6000)], tmp_path / "keys")
    proc, trace = citizen_phone(sandbox, tmp_path, "citizen-return", plays=[(9000, pcaps[0]), (5700, pcaps[1])])
    try:
        assert report(cfg, ticket, {"status": "transferred", "unit": "市住房和城乡建设局"}) == 200
        assert report(cfg, ticket, {"status": "done"}) == 200
        rated = wait_for(lambda: [r for r in sandbox.store_query(lambda s: s.ratings(ticket_id=ticket))
                                  if r["rating"] is not None], 60, "the handling rating")
        assert [(r["kind"], r["rating"]) for r in rated] == [("handling", 5)]
        [row] = sandbox.store_query(lambda s: s.return_calls(ticket_id=ticket))
        assert (row["state"], row["attempts"]) == ("answered", 1)
        tasks = [t for t in sandbox.store_query(lambda s: s.callback_tasks()) if t["ticket_id"] == ticket]
        assert [t["reason"] for t in tasks] == ["handling_rating_5_very_dissatisfied"]
        invite = trace.read_text(errors="replace").split("INVITE sip:", 1)[1]
        assert invite.startswith(f"{CITIZEN}@")                                   # the store's number, dialled
        assert re.search(rf"^From:[^\n]*<sip:{cfg.sip.hotline_number}@", invite, re.MULTILINE)   # as 12345
    finally:
        proc.stop(timeout=3)


async def console(cfg, agent: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    base = f"http://{cfg.console.host}:{cfg.console.port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        login = await http.post(f"{base}/api/login",
                                json={"agent": agent, "password": mqtt_password(cfg.state_dir, agent)})
        assert login.status == 200
        async with http.request(method, base + path, json=body) as response:
            return response.status, await response.json()


def test_a_call_back_rings_the_agent_then_the_caller_and_the_redo_reopens_the_ticket(sandbox, agents, tmp_path):
    cfg = sandbox.config
    now = datetime.now(SHANGHAI)

    async def a_task(store):
        ticket = await store.create_ticket_draft(call_id="callback-earlier", request_type="complaint",
                                                 created_at=now)
        await store.report_ticket_status(ticket, "transferred", unit="市住房和城乡建设局", at=now, source="test")
        await store.report_ticket_status(ticket, "done", at=now, source="test")
        rating = await store.open_survey(SurveyKind.HANDLING, call_id=f"rc-{time.time()}", ticket_id=ticket,
                                         number=f"+86{CITIZEN}", at=now)
        return ticket, await store.record_rating(rating, 4, at=now, callback_due=date.today())

    ticket, task = sandbox.store_query(a_task)
    sandbox.hotline("callbacks", "assign", str(task), "agent1")
    assert asyncio.run(console(cfg, "agent2", "POST", f"/api/callbacks/{task}/call", {}))[0] == 404  # not theirs
    proc, trace = citizen_phone(sandbox, tmp_path, "citizen-callback", hang_up_after_ms=3000)
    log_offset = len(sandbox.gateway_log())
    try:
        status, body = asyncio.run(console(cfg, "agent1", "POST", f"/api/callbacks/{task}/call", {}))
        assert status == 202, body
        attempts = wait_for(lambda: sandbox.store_query(lambda s: s.callback_attempts(task)), 30, "the outcome")
        assert [(a["agent"], a["outcome"]) for a in attempts] == [("agent1", "reached")]
        log = sandbox.gateway_log()[log_offset:]
        answered = re.search(rf"^ts=(\S+) .*event=callback_agent_answered task={task}\b", log, re.MULTILINE)
        assert answered, log[-2000:]
        agent_up = datetime.fromisoformat(answered.group(1))
        citizen_rung = datetime.fromisoformat(_STAMP.search(trace.read_text(errors="replace")).group(1)
                                              .replace("\t", " "))
        print(f"agent answered {agent_up.time()}, citizen rung {citizen_rung.time()}")
        assert agent_up <= citizen_rung                    # the agent first, then the caller
        status, body = asyncio.run(console(cfg, "agent1", "POST", f"/api/callbacks/{task}/done", {"redo": True}))
        assert status == 200 and body["redo"] is True
        handling = sandbox.store_query(lambda s: s.ticket_handling(ticket))
        assert handling.status == "transferred"            # back to its unit
        listed = asyncio.run(console(cfg, "lead1" if any(a.role == "supervisor" for a in cfg.agents) else "agent1",
                                     "GET", "/api/callbacks"))[1]["callbacks"]
        assert task not in [t["id"] for t in listed]       # done: off the list
    finally:
        proc.stop(timeout=3)
