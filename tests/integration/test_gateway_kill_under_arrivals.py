"""Fault drill on the real stack: the gateway gets SIGKILL while 30 callers are arriving, and every one of them
reaches an agent (Zhanjiang 12345 rules, art. 2: 7x24 human service).

The dialplan fails open (asterisk_conf/extensions.conf): a caller in the IVR when the gateway dies falls through to
the agent queue once Asterisk finds the FastAGI connection closed; a caller arriving while the gateway is down finds
the FastAGI port refusing connections (AGISTATUS=FAILURE) and is queued straight away. The drill counts from
Asterisk's own facts: which callers were in AGI or already in Queue() at the kill (``core show channels``), which
of them an agent took (the queue log's CONNECT, keyed by the caller id of ENTERQUEUE, and the queue's completed
count), when each agent answered (the agents' SIP traces), and how each caller's sipp ended. It prints callers
placed, in the IVR at the kill, arriving while the gateway was down, reached an agent, failed, the time from the
kill to the last agent's answer and the median wait from dialling to an agent.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from gateway.sandbox.processes import (
    ManagedProcess,
    is_alive,
    udp_port_in_use,
    wait_until,
)
from gateway.sandbox.sipp_scenario import CallerScript, agent_scenario
from gateway.sandbox.testcall import SippResult, run_sipp_caller

pytestmark = pytest.mark.integration

CALLERS = 30
ARRIVAL_GAP_S = 0.2          # 30 callers over 6 s
KILL_AFTER_SESSIONS = 10     # the gateway dies once this many callers have entered its IVR
# Agents answer at once and end each call after this much talk: two agent phones (agent1, agent2; the queue
# rings no agent already on a call, ringinuse=no) then get through 30 callers in well under a minute.
TALK_MS = 800
CALLER_PATIENCE_S = 75       # a caller whose call no agent has ended by then counts as failed
# Every third caller keys 1 (consultation), every third 3 (complaint), the rest key nothing and sit through the
# welcome's timeout: callers are in every part of the IVR when the gateway dies.
KEYS = ("1", "3", "")
NUMBERS = tuple(f"1390023{i:04d}" for i in range(1, CALLERS + 1))
_STAMP = re.compile(r"^-+ (\d{4}-\d\d-\d\d[ \t]\d\d:\d\d:\d\d\.\d+)$", re.MULTILINE)
_FROM_USER = re.compile(r"^From:[^\n]*<sip:([^@>]+)@", re.MULTILINE)
_CSEQ_INVITE = re.compile(r"^CSeq:\s*\d+\s+INVITE", re.MULTILINE)
# Apps a hotline channel runs before its FastAGI session opens (hotline-in: Answer, the Set()s).
_BEFORE_GATEWAY = {"NoOp", "Answer", "Set"}


@pytest.fixture
def hanging_up_agents(sandbox):
    """agent1 and agent2 as sipp UAS that answer at once, end the call after TALK_MS and log every SIP message."""
    logs = sandbox.config.state_dir / "logs"
    scenario = logs / f"drill-agent-hangs-up-{TALK_MS}.xml"
    scenario.write_text(agent_scenario(answer_after_ms=0, hang_up_after_ms=TALK_MS))
    assert all(p.pid() is None for p in sandbox.stack.agents), "the stack's own simulated agents are running"
    procs, traces = [], []
    for i, agent in enumerate(sandbox.config.agents):
        host, port = agent.host_port
        trace = logs / f"drill-kill-{agent.name}-messages.log"
        trace.unlink(missing_ok=True)
        proc = ManagedProcess(f"drill-kill-{agent.name}", logs / f"drill-kill-{agent.name}.pid",
                              logs / f"drill-kill-{agent.name}.out")
        proc.start(["sipp", "-sf", str(scenario), "-i", host, "-p", str(port), "-mp", str(30010 + 10 * i),
                    "-nostdin", "-trace_msg", "-message_file", str(trace)], cwd=logs)
        procs.append(proc)
        traces.append(trace)
    try:
        for agent in sandbox.config.agents:
            assert wait_until(lambda a=agent: udp_port_in_use(*a.host_port), 5), f"{agent.name} is not listening"
        yield traces
    finally:
        for proc in procs:
            proc.stop(timeout=3)


def media_ports(count: int, start: int = 32000) -> list[int]:
    """``count`` first RTP ports, each with its three neighbours free (sipp takes mp..mp+3), 10 apart."""
    ports = []
    for port in range(start, 40000, 10):
        if not any(udp_port_in_use("127.0.0.1", port + k) for k in range(4)):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise AssertionError(f"not {count} free RTP port ranges above {start}")


def agent_answers(traces: list[Path]) -> dict[str, float]:
    """Caller number -> wall-clock time an agent sent its 200 OK to the INVITE for that caller (sipp's stamp)."""
    answers: dict[str, float] = {}
    for trace in traces:
        text = trace.read_text(errors="replace") if trace.exists() else ""
        stamps = list(_STAMP.finditer(text))
        for i, stamp in enumerate(stamps):
            block = text[stamp.end():stamps[i + 1].start() if i + 1 < len(stamps) else len(text)]
            head, _, message = block.lstrip("\n").partition("\n")
            message = message.lstrip()
            if "sent" not in head or not message.startswith("SIP/2.0 200") or not _CSEQ_INVITE.search(message):
                continue
            if user := _FROM_USER.search(message):
                when = datetime.strptime(stamp.group(1).replace("\t", " "), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                answers[user.group(1)] = min(when, answers.get(user.group(1), when))
    return answers


def channels_by_caller(sandbox) -> dict[str, str]:
    """Caller id -> the application its channel runs now, from ``core show channels concise``."""
    out = sandbox.stack.root.cli("core show channels concise").stdout
    apps = {}
    for line in out.splitlines():
        fields = line.split("!")
        if len(fields) > 7 and fields[0].startswith("PJSIP/hotline-trunk"):
            apps[fields[7]] = fields[5]
    return apps


@dataclass(frozen=True)
class QueueVisit:
    """One caller's stay in the agent queue, from Asterisk's queue log."""

    entered_at: int
    agent: str | None = None
    hold_s: int | None = None


def queue_visits(queue_log: Path, offset: int, queue: str) -> dict[str, QueueVisit]:
    """Caller id -> the queue visit that began after byte ``offset`` of the queue log (ENTERQUEUE, CONNECT)."""
    with open(queue_log, "rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    caller_of: dict[str, str] = {}
    visits: dict[str, QueueVisit] = {}
    for line in lines:
        fields = line.split("|")
        if len(fields) < 5 or fields[2] != queue:
            continue
        stamp, uniqueid, _, agent, event, *data = fields
        if event == "ENTERQUEUE" and len(data) >= 2:
            caller_of[uniqueid] = data[1]
            visits.setdefault(data[1], QueueVisit(entered_at=int(stamp)))
        elif event == "CONNECT" and uniqueid in caller_of and data:
            caller = caller_of[uniqueid]
            visits[caller] = QueueVisit(visits[caller].entered_at, agent=agent, hold_s=int(data[0]))
    return visits


class Arrivals:
    """30 sipp callers dialling the hotline ARRIVAL_GAP_S apart, each in its own sipp process, on a thread."""

    def __init__(self, sandbox) -> None:
        self.config = sandbox.config
        self.dialled_at: dict[str, float] = {}
        self.results: dict[str, SippResult] = {}
        self.thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)
        self.ports = media_ports(CALLERS)

    def start(self) -> None:
        self.thread.start()

    async def _all(self) -> None:
        await asyncio.gather(*(self._one(i, number) for i, number in enumerate(NUMBERS)))

    async def _one(self, i: int, number: str) -> None:
        await asyncio.sleep(i * ARRIVAL_GAP_S)
        script = CallerScript(from_number=number, dtmf=KEYS[i % len(KEYS)], hold_ms=CALLER_PATIENCE_S * 1000,
                              expect_server_hangup=True)
        self.dialled_at[number] = time.time()
        self.results[number] = await run_sipp_caller(self.config, script, timeout_s=CALLER_PATIENCE_S + 15,
                                                     media_port=self.ports[i])


def test_every_caller_reaches_an_agent_when_the_gateway_is_killed_while_thirty_arrive(sandbox, hanging_up_agents):
    stack = sandbox.stack
    if not stack.gateway.pid():
        sandbox.hotline("stack", "up")
    pid = stack.gateway.pid()
    queue_log = stack.root.path("/var/log/asterisk/queue_log")
    queue_log_from = queue_log.stat().st_size if queue_log.exists() else 0
    gateway_log_from = stack.gateway.log_file.stat().st_size
    completed_before = sandbox.queue_completed()

    def gateway_log() -> str:
        with open(stack.gateway.log_file, "rb") as f:
            f.seek(gateway_log_from)
            return f.read().decode(errors="replace")

    arrivals = Arrivals(sandbox)
    began = time.time()
    arrivals.start()
    try:
        assert wait_until(lambda: gateway_log().count("event=entry ") >= KILL_AFTER_SESSIONS, 30, 0.05), \
            "the gateway never opened sessions for the first callers"
        at_kill = channels_by_caller(sandbox)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        sessions_before_kill = gateway_log().count("event=entry ")
        assert wait_until(lambda: not is_alive(pid), 5), "the gateway outlived SIGKILL"
        arrivals.thread.join(CALLER_PATIENCE_S + 20)
        assert not arrivals.thread.is_alive(), "the callers' sipp did not finish"
        wait_until(lambda: sandbox.queue_completed() >= completed_before + CALLERS, 10)
        completed = sandbox.queue_completed() - completed_before
        visits = queue_visits(queue_log, queue_log_from, sandbox.config.queue.name)
        answered_at = agent_answers(hanging_up_agents)
    finally:
        arrivals.thread.join(5)
        sandbox.hotline("stack", "up")
    drill_s = time.time() - began

    in_ivr = [n for n in NUMBERS if at_kill.get(n) == "AGI"]
    down = [n for n in NUMBERS if at_kill.get(n) is None or at_kill[n] in _BEFORE_GATEWAY]
    queued_before = [n for n in NUMBERS if n not in in_ivr and n not in down]
    ended_by_agent = [n for n in NUMBERS if arrivals.results.get(n, SippResult(-1, None, "")).returncode == 0
                      and arrivals.results[n].hangup_by == "server"]
    reached = [n for n in NUMBERS if visits.get(n) and visits[n].agent and n in answered_at and n in ended_by_agent]
    failed = [n for n in NUMBERS if n not in reached]
    waits = [answered_at[n] - arrivals.dialled_at[n] for n in NUMBERS if n in answered_at and n in arrivals.dialled_at]
    holds = [visits[n].hold_s for n in reached]
    last_answer_after_kill = max(answered_at.values()) - killed_at if answered_at else None
    figures = (f"callers_placed={len(arrivals.dialled_at)} gateway_sessions_at_kill={sessions_before_kill} "
               f"in_ivr_at_kill={len(in_ivr)} queued_before_kill={len(queued_before)} "
               f"arriving_while_down={len(down)} reached_an_agent={len(reached)} failed={len(failed)} "
               f"queue_completed={completed} "
               f"kill_to_last_agent_answer_s={last_answer_after_kill and round(last_answer_after_kill, 2)} "
               f"median_wait_s={waits and round(statistics.median(waits), 2)} "
               f"max_wait_s={waits and round(max(waits), 2)} "
               f"median_queue_hold_s={holds and statistics.median(holds)} drill_s={round(drill_s, 1)}")
    print(f"\nSIGKILL while {CALLERS} callers arrive: {figures}")
    problems = {n: (arrivals.results.get(n), visits.get(n), at_kill.get(n)) for n in failed}

    assert len(arrivals.dialled_at) == CALLERS, figures
    assert not failed, f"{figures}\nnot reached: {problems}"
    assert completed == CALLERS, figures
    assert in_ivr and down, f"the kill did not fall among the arrivals: {figures}"
    assert stack.gateway.pid() and stack.gateway.pid() != pid, "the gateway is not back up"
    assert wait_until(lambda: stack.gateway_status().get("ami_ready"), 30), "the restarted gateway has no AMI"
    assert not [n for n in NUMBERS if n in gateway_log()], "a full caller number reached the gateway log"
