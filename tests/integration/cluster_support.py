"""Two nodes of the sandbox hotline on this machine (`hotline stack up --nodes 2`): two Asterisk instances and two
gateways on the sandbox's own PostgreSQL cluster and one broker, on ports apart from the session's sandbox stack
(which may run at the same time), for the tests and drills of the shared store."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from gateway.config import Config, load_config
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.processes import ManagedProcess, udp_port_in_use, wait_until
from gateway.sandbox.sipp_scenario import CallerScript, agent_scenario
from gateway.sandbox.cluster import node_files, sandbox_postgres_dir
from gateway.sandbox.postgres_cluster import PostgresCluster
from gateway.sandbox.stack import Stack
from gateway.sandbox.testcall import SippResult, place_call, run_sipp_caller
from gateway.store.database import Store
from tests.integration.test_gateway_kill_under_arrivals import media_ports

REPO = Path(__file__).resolve().parents[2]
# The session's sandbox uses the defaults (SIP 5060, AMI 5038, FastAGI 4573, MQTT 1883, agents 5071/5075): these
# nodes start 1000 above, and node 2 a further 100 (gateway/sandbox/cluster.py).
CLUSTER_CONFIG = """\
[gateway]
state_dir = "{state}"
log_level = "DEBUG"
[fastagi]
port = 5573
[ami]
port = 6038
[sip]
port = 6060
rtp_start = 20000
rtp_end = 29999
[speech]
audiosocket_port = 5574
[console]
port = 9088
[workorder]
port = 9089
[mqtt]
port = 2883
ws_port = 10001
[aftercall]
calling_from = "00:00"
calling_until = "24:00"
outbound_contact = "sip:127.0.0.1:6095"

[[agents]]
name = "agent1"
contact = "sip:agent1@127.0.0.1:6071"

[[agents]]
name = "agent2"
contact = "sip:agent2@127.0.0.1:6075"
"""


@dataclass
class TwoNodes:
    base_path: Path
    nodes: list[Config]
    paths: list[Path]

    @property
    def stacks(self) -> list[Stack]:
        return [Stack(cfg, str(path)) for cfg, path in zip(self.nodes, self.paths)]

    def hotline(self, *args: str, node: int = 1, check: bool = True, timeout: float = 300
                ) -> subprocess.CompletedProcess:
        config = self.base_path if node == 0 else self.paths[node - 1]
        result = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(config), *args],
                                capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"hotline {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n"
                                 f"{result.stderr}")
        return result

    def call(self, node: int, number: str, dtmf: str = "", hold_s: float = 6.0) -> dict:
        return asyncio.run(place_call(self.nodes[node - 1], number, dtmf, hold_s=hold_s, full=True))

    def store_query(self, fn):
        async def run():
            async with await Store.open(self.nodes[0].store.location) as store:
                return await fn(store)
        return asyncio.run(run())

    @property
    def postgres(self) -> PostgresCluster:
        return PostgresCluster.attach(sandbox_postgres_dir(self.nodes[0]))


def bring_up(state: Path) -> TwoNodes:
    base = state / "hotline.toml"
    base.write_text(CLUSTER_CONFIG.format(state=state / "state"), encoding="utf-8")
    up = subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(base), "stack", "up", "--nodes",
                         "2"], capture_output=True, text=True, timeout=600, cwd=REPO)
    office = load_config(base)
    paths, _ = node_files(office)
    nodes = TwoNodes(base, [load_config(p) for p in paths], paths)
    if up.returncode != 0:
        take_down(nodes)
        raise AssertionError(f"stack up --nodes 2 failed:\n{up.stdout}\n{up.stderr}")
    return nodes


def take_down(nodes: TwoNodes) -> None:
    """Stop both nodes and remove the sandbox's PostgreSQL cluster (data directory and all)."""
    nodes.hotline("stack", "down", node=0, check=False)
    if nodes.nodes:
        directory = sandbox_postgres_dir(nodes.nodes[0])
        if (directory / "port").exists():
            PostgresCluster.attach(directory).remove()


@pytest.fixture
def answering_agents(cluster):
    """agent1 and agent2 answer at once and hang up after 1.5 s (both nodes' Asterisks dial the same phones); a
    test module names its two-node stack ``cluster``."""
    cfg = cluster.nodes[0]
    logs = cfg.state_dir / "logs"
    scenario = logs / "two-nodes-agent.xml"
    scenario.write_text(agent_scenario(answer_after_ms=0, hang_up_after_ms=1500))
    procs = []
    for i, agent in enumerate(cfg.agents):
        host, port = agent.host_port
        proc = ManagedProcess(f"two-{agent.name}", logs / f"two-{agent.name}.pid", logs / f"two-{agent.name}.out")
        proc.start(["sipp", "-sf", str(scenario), "-i", host, "-p", str(port), "-mp", str(31010 + 10 * i),
                    "-nostdin"], cwd=logs)
        procs.append(proc)
    for agent in cfg.agents:
        assert wait_until(lambda a=agent: udp_port_in_use(*a.host_port), 5)
    yield
    for proc in procs:
        proc.stop(timeout=3)


class PopWatcher:
    """The agents' consoles: every screen-pop message the broker delivers to agent1 and agent2."""

    def __init__(self, cfg) -> None:
        self.cfg, self.messages, self._stop = cfg, [], threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.ready = threading.Event()

    async def _run(self) -> None:
        async def watch(agent: str) -> None:
            async with aiomqtt.Client("127.0.0.1", self.cfg.mqtt.port, username=agent, timeout=5,
                                      password=mqtt_password(self.cfg.state_dir, agent)) as client:
                await client.subscribe(f"hotline/agents/{agent}/#", qos=1)
                self.ready.set()
                async for message in client.messages:
                    self.messages.append((agent, json.loads(message.payload)))

        tasks = [asyncio.create_task(watch(a.name)) for a in self.cfg.agents]
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()

    def __enter__(self):
        self._thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


class Arrivals:
    """Callers dialling ``gap_s`` apart, each in its own sipp process, on a thread of their own: ``script(number)``
    is what a caller does, ``config(i)`` the node configuration whose Asterisk caller ``i`` dials."""

    def __init__(self, numbers: tuple[str, ...], *, gap_s: float, script: Callable[[str], CallerScript],
                 config: Callable[[int], Config], ports_from: int, timeout_s: float) -> None:
        self.numbers, self.gap_s, self.script, self.config = numbers, gap_s, script, config
        self.timeout_s = timeout_s
        self.dialled_at: dict[str, float] = {}
        self.results: dict[str, SippResult] = {}
        self.ports = media_ports(len(numbers), start=ports_from)
        self.thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)

    async def _all(self) -> None:
        await asyncio.gather(*(self._one(i, n) for i, n in enumerate(self.numbers)))

    async def _one(self, i: int, number: str) -> None:
        await asyncio.sleep(i * self.gap_s)
        self.dialled_at[number] = time.time()
        self.results[number] = await run_sipp_caller(self.config(i), self.script(number), timeout_s=self.timeout_s,
                                                     media_port=self.ports[i])

    def ended_well(self, number: str) -> bool:
        result = self.results.get(number, SippResult(-1, None, ""))
        return result.returncode == 0

