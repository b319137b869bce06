"""Fault drills on the real stack: a restricted caller who keyed 9 for emergency help (Zhanjiang 12345 rules, art. 9
and 14) meets a gateway killed with SIGKILL, or stopped with SIGTERM, in the emergency sub-menu. The caller must
reach that sub-menu's fallback, an agent at top priority, and is never hung up. Each drill prints what it measured:
the time from the signal to the agents' INVITE, the priority Asterisk queued the call with (``queue show``), and
the AGISTATUS the dialplan saw (its ``HOTLINE_FALLBACK``).
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from gateway.sandbox.processes import ManagedProcess, is_alive, wait_until
from gateway.sandbox.sipp_scenario import agent_scenario

pytestmark = pytest.mark.integration

# Agents ring this long before answering: the caller waits in the queue long enough for `queue show` to be read.
RING_MS = 4000
ASKS_FOR_HELP = "event=restricted_caller_asks_for_emergency_help"
_QUEUE_ENTRY = re.compile(r"^\s*\d+\.\s+(\S+)\s+\(wait: [^,]+, prio: (\d+)\)", re.MULTILINE)
_STAMP = re.compile(r"^-+ (\d{4}-\d\d-\d\d[ \t]\d\d:\d\d:\d\d\.\d+)$", re.MULTILINE)


@pytest.fixture
def traced_agents(sandbox):
    """agent1 and agent2 as sipp UAS that log every SIP message with its time (the INVITE is what we time)."""
    logs = sandbox.config.state_dir / "logs"
    scenario = logs / f"drill-agent-{RING_MS}.xml"
    scenario.write_text(agent_scenario(answer_after_ms=RING_MS))
    procs, traces = [], []
    assert all(p.pid() is None for p in sandbox.stack.agents), "the stack's own simulated agents are running"
    for i, agent in enumerate(sandbox.config.agents):
        host, port = agent.host_port
        trace = logs / f"drill-{agent.name}-messages.log"
        trace.unlink(missing_ok=True)
        proc = ManagedProcess(f"drill-{agent.name}", logs / f"drill-{agent.name}.pid", logs / f"drill-{agent.name}.out")
        proc.start(["sipp", "-sf", str(scenario), "-i", host, "-p", str(port), "-mp", str(30010 + 10 * i),
                    "-nostdin", "-trace_msg", "-message_file", str(trace)], cwd=logs)
        procs.append(proc)
        traces.append(trace)
    time.sleep(0.3)
    yield traces
    for proc in procs:
        proc.stop(timeout=3)


def first_invite_at(traces: list[Path], number: str) -> float | None:
    """Wall-clock time of the first INVITE any agent received from the caller ``number`` (sipp's own stamp)."""
    times = []
    for trace in traces:
        text = trace.read_text(errors="replace") if trace.exists() else ""
        stamps = list(_STAMP.finditer(text))
        for i, stamp in enumerate(stamps):
            block = text[stamp.end():stamps[i + 1].start() if i + 1 < len(stamps) else len(text)]
            head, _, message = block.lstrip("\n").partition("\n")
            if "received" in head and message.lstrip().startswith("INVITE ") and f"From: <sip:{number}@" in message:
                when = datetime.strptime(stamp.group(1).replace("\t", " "), "%Y-%m-%d %H:%M:%S.%f")
                times.append(when.timestamp())
    return min(times) if times else None


def queue_entry(sandbox) -> tuple[str, int] | None:
    """(channel, priority) of the first caller waiting in the hotline queue, from Asterisk itself."""
    out = sandbox.stack.root.cli(f"queue show {sandbox.config.queue.name}").stdout
    found = _QUEUE_ENTRY.search(out)
    return (found.group(1), int(found.group(2))) if found else None


def channel_variable(sandbox, channel: str, name: str) -> str | None:
    out = sandbox.stack.root.cli(f"core show channel {channel}").stdout
    found = re.search(rf"^\s*(?:__?)?{name}=(.*)$", out, re.MULTILINE)
    return found.group(1).strip() if found else None


def drill(sandbox, traces, number: str, sig: signal.Signals, *, dtmf: str = "9", strike_after: str = ASKS_FOR_HELP,
          delay_s: float = 0.5) -> dict:
    """Restricted ``number`` calls and keys ``dtmf`` (9: during the announcement, then silence in the emergency
    sub-menu); ``delay_s`` after the gateway logs ``strike_after`` (by default: half a second into the emergency
    sub-menu) the gateway gets ``sig``. Returns what was measured; restarts the gateway."""
    stack = sandbox.stack
    if not stack.gateway.pid():
        sandbox.hotline("stack", "up")
    pid = stack.gateway.pid()
    sandbox.hotline("restrict", "add", number, "--reason", "骚扰话务员", "--operator", "drill")
    log_from = stack.gateway.log_file.stat().st_size
    completed_before = sandbox.queue_completed()
    call: dict = {}
    caller = threading.Thread(target=lambda: call.update(sandbox.call(number, dtmf=dtmf, hold_s=25)), daemon=True)
    measured: dict = {"signal": sig.name}
    caller.start()
    try:
        def log_since() -> str:
            with open(stack.gateway.log_file, "rb") as f:
                f.seek(log_from)
                return f.read().decode(errors="replace")

        assert wait_until(lambda: strike_after in log_since(), 30), f"the gateway never logged {strike_after}"
        time.sleep(delay_s)
        signalled_at = time.time()
        os.kill(pid, sig)
        entry = None

        def queued() -> bool:
            nonlocal entry
            entry = queue_entry(sandbox)
            return entry is not None

        measured["queued"] = wait_until(queued, 15, 0.05)
        measured["queued_after_s"] = round(time.time() - signalled_at, 2)
        if entry:
            measured["channel"], measured["queue_priority"] = entry
            measured["agistatus_seen"] = channel_variable(sandbox, entry[0], "HOTLINE_FALLBACK")
        measured["gateway_exited"] = wait_until(lambda: not is_alive(pid), 15)
        measured["gateway_exit_s"] = round(time.time() - signalled_at, 2)
        caller.join(90)
        assert not caller.is_alive(), "the caller's sipp did not finish"
        invite_at = None

        def invited() -> bool:
            nonlocal invite_at
            invite_at = first_invite_at(traces, number)
            return invite_at is not None

        wait_until(invited, 5)
        measured["invite_after_s"] = round(invite_at - signalled_at, 2) if invite_at else None
        measured["answered"] = sandbox.queue_completed() - completed_before
        measured["gateway_log"] = log_since()
    finally:
        caller.join(60)
        sandbox.hotline("stack", "up")
    measured["call"] = call
    return measured


def report(measured: dict) -> str:
    figures = {k: v for k, v in measured.items() if k not in {"gateway_log", "call"}}
    return " ".join(f"{k}={v}" for k, v in figures.items())


def test_a_restricted_caller_in_the_emergency_menu_reaches_an_agent_at_top_priority_when_the_gateway_is_killed(
        sandbox, traced_agents):
    number = "13911114444"
    m = drill(sandbox, traced_agents, number, signal.SIGKILL)
    print(f"\nSIGKILL drill: {report(m)}")
    call = m["call"]
    assert call.get("sipp_ok"), call
    assert call.get("hangup_by") == "caller", f"the caller was hung up: {call} ({report(m)})"
    assert m["queued"] and m["queue_priority"] == 10, report(m)
    assert m["invite_after_s"] is not None and m["answered"] == 1, report(m)
    # generous: the sub-menu's own fallback (prompt + 5 s timeout + retry) would take far longer than this
    assert m["invite_after_s"] < 3.0, report(m)
    attempts = sandbox.store_query(lambda s: s.blocked_attempts("+86" + number))
    assert len(attempts) == 1, "the restriction stands and the attempt is on record"
    assert number not in m["gateway_log"], "the full caller number must never reach a log line"


def test_a_restricted_caller_in_the_emergency_menu_reaches_an_agent_at_top_priority_when_the_gateway_stops(
        sandbox, traced_agents):
    number = "13911115555"
    m = drill(sandbox, traced_agents, number, signal.SIGTERM)
    print(f"\nSIGTERM drill: {report(m)}")
    call = m["call"]
    assert call.get("sipp_ok"), call
    assert call.get("hangup_by") == "caller", f"the caller was hung up: {call} ({report(m)})"
    assert m["queued"] and m["queue_priority"] == 10, report(m)
    assert m["invite_after_s"] is not None and m["answered"] == 1, report(m)
    assert m["gateway_exited"], "the gateway did not stop on SIGTERM"
    assert "event=released_to_dialplan" in m["gateway_log"], "the open session was not released to the dialplan"
    record = sandbox.store_query(lambda s: s.get_call(call["call_id"]))
    assert record["outcome"] in {"failed", "queued", "answered"}, record


def test_a_restricted_caller_whose_announcement_is_cut_by_a_kill_reaches_an_agent_at_normal_priority(
        sandbox, traced_agents):
    # The announcement not heard to its end is no refusal: the gateway's failure is no decision against the caller
    # (art. 2), who may have been about to key 9; an agent hears them and can still end the call.
    number = "13911116666"
    m = drill(sandbox, traced_agents, number, signal.SIGKILL, dtmf="", strike_after="event=blocked", delay_s=1.5)
    print(f"\nSIGKILL during the announcement: {report(m)}")
    call = m["call"]
    assert call.get("hangup_by") == "caller", f"the caller was hung up: {call} ({report(m)})"
    assert m["queued"] and m["queue_priority"] == 0, report(m)
    assert m["invite_after_s"] is not None and m["answered"] == 1, report(m)
