"""Fault drill: Asterisk stops mid-run and is started again after a while. The gateway logs back in to AMI within
3 s of Asterisk being fully booted, and calls answered before and after each reach their agent with their
screen-pop. (An immediate `core restart now` is tested in test_fail_open.py.)"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from gateway.contract import screenpop_topic
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.processes import wait_until
from gateway.sandbox.testcall import place_call

pytestmark = pytest.mark.integration

AMI_BACK_WITHIN_S = 3.0
OUTAGE_S = 7.0   # then the reconnect delays of an uncapped doubling (8 s, 16 s) would land well after the boot
CALLS_EACH_SIDE = 2   # one per simulated agent, placed together
REPO = Path(__file__).resolve().parents[2]
_AMI_READY_TS = re.compile(r"^ts=(\S+) .*event=ami_ready\b", re.MULTILINE)


class PopListener:
    """Every screen-pop the broker delivers to the given agents, each signed in as that agent (the ACL lets an
    agent read only its own topic), collected by call id."""

    def __init__(self, config, agents: list[str]) -> None:
        self.pops: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._clients = []
        for agent in agents:
            client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=agent, protocol=paho.MQTTv311)
            client.username_pw_set(agent, mqtt_password(config.state_dir, agent))
            client.on_message = self._on_message
            client.on_subscribe = lambda *_: self._subscribed.set()
            client.connect(config.mqtt.host, config.mqtt.port)
            client.loop_start()
            self._subscribed.clear()
            client.subscribe(screenpop_topic(agent), qos=1)
            assert self._subscribed.wait(5), f"the broker did not confirm {agent}'s subscription"
            self._clients.append(client)

    def _on_message(self, _client, _userdata, message) -> None:
        pop = json.loads(message.payload)
        with self._lock:
            self.pops.setdefault(pop.get("call_id"), []).append(pop)

    def popped(self, call_id: str, agent: str) -> bool:
        with self._lock:
            return any(p.get("agent") == agent for p in self.pops.get(call_id, []))

    def close(self) -> None:
        for client in self._clients:
            client.loop_stop()
            client.disconnect()


def place_calls_together(config, numbers: list[str]) -> list[dict]:
    async def run():
        return await asyncio.gather(*(place_call(config, n, "1", hold_s=6, full=True) for n in numbers))
    return asyncio.run(run())


def last_ami_login_at(log_text: str) -> float:
    """Wall-clock time of the gateway's latest ``event=ami_ready`` line (its ``ts`` is local time, ms)."""
    stamps = _AMI_READY_TS.findall(log_text)
    assert stamps, "the gateway never logged event=ami_ready"
    whole, _, millis = stamps[-1].partition(".")
    return time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(millis or 0) / 1000


def assert_answered_with_pop(calls: list[dict], pops: PopListener, when: str) -> None:
    for call in calls:
        assert call["sipp_ok"] and call["answered_by"] in {"agent1", "agent2"}, f"{when}: not answered: {call}"
        call_id, agent = call["call_id"], call["answered_by"]
        assert wait_until(lambda c=call_id, a=agent: pops.popped(c, a), 10), \
            f"{when}: call {call_id} answered by {agent} got no screen-pop"


def test_asterisk_restart_mid_run_loses_no_call_nor_screen_pop(sandbox, agents):
    stack, cfg = sandbox.stack, sandbox.config
    if not stack.gateway.pid():
        sandbox.hotline("stack", "up")
    pops = PopListener(cfg, [a.name for a in cfg.agents])
    try:
        before = place_calls_together(cfg, [f"1380013810{i}" for i in range(CALLS_EACH_SIDE)])
        assert_answered_with_pop(before, pops, "before the restart")
        reconnects = stack.gateway_status()["ami_reconnects"]

        stopped = stack.root.cli("core stop now")
        assert stopped.returncode == 0, stopped.stderr
        assert wait_until(lambda: stack.asterisk.pid() is None, 15), "Asterisk did not stop"
        down_at = time.monotonic()
        assert wait_until(lambda: not stack.gateway_status().get("ami_ready"), 15), "AMI loss not noticed"
        # Asterisk stays away a while, as when a supervisor restarts it after a crash: long enough for the
        # gateway's reconnect delay to reach its cap.
        wait_until(lambda: False, OUTAGE_S - (time.monotonic() - down_at))
        starting = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "--config", str(sandbox.config_path),
                                     "stack", "up"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    cwd=REPO)
        # `core waitfullybooted` blocks until the boot ends, so the moment it answers is the moment of booting
        assert wait_until(stack.root.fully_booted, 60, 0.05), "Asterisk did not come back"
        booted_at = time.time()
        output, _ = starting.communicate(timeout=120)
        assert starting.returncode == 0, output
        assert wait_until(lambda: stack.gateway_status().get("ami_ready"), 30), "gateway did not log in again"
        ami_back_s = last_ami_login_at(sandbox.gateway_log()) - booted_at
        assert stack.gateway_status()["ami_reconnects"] == reconnects + 1

        after = place_calls_together(cfg, [f"1380013811{i}" for i in range(CALLS_EACH_SIDE)])
        assert_answered_with_pop(after, pops, "after the restart")
        received = sum(len(p) for p in pops.pops.values())
        print(f"\nasterisk restart drill: Asterisk away {OUTAGE_S:.0f} s;"
              f" AMI logged in again {ami_back_s:+.2f} s after it was fully booted"
              f" (bound {AMI_BACK_WITHIN_S} s); calls before {len(before)} answered {len(before)},"
              f" after {len(after)} answered {len(after)}; screen-pops received {received}")
        assert ami_back_s <= AMI_BACK_WITHIN_S, \
            f"AMI back {ami_back_s:.2f} s after Asterisk booted, over {AMI_BACK_WITHIN_S} s"
    finally:
        pops.close()
        if stack.asterisk.pid() is None:
            sandbox.hotline("stack", "up", check=False)
