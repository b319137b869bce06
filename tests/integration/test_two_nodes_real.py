"""Two Asterisk + gateway pairs on one PostgreSQL store and one broker, on the real stack (`stack up --nodes 2`):
a restriction decided through one node refuses the caller on the other, ticket numbers come from the database
across nodes, a caller's history spans both, and each screen-pop reaches the agent once although both gateways'
publishers run over the one outbox."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import aiomqtt
import pytest

from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.processes import ManagedProcess, udp_port_in_use, wait_until
from gateway.sandbox.sipp_scenario import agent_scenario
from tests.integration.cluster_support import bring_up, take_down

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = bring_up(tmp_path_factory.mktemp("two-nodes"))
    yield nodes
    take_down(nodes)


@pytest.fixture
def answering_agents(cluster):
    """agent1 and agent2 answer at once and hang up after 1.5 s (both nodes' Asterisks dial the same phones)."""
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


def test_a_restriction_added_through_node_1_refuses_the_caller_on_node_2(cluster):
    cluster.hotline("restrict", "add", "13900005555", "--reason", "辱骂话务员", "--operator", "lead1", node=1)
    refused = cluster.call(2, "13900005555", hold_s=20)
    assert refused["call_id"].startswith("node2-") and refused["blocked"], refused
    assert refused["hangup_by"] == "server"
    attempts = cluster.store_query(lambda s: s.blocked_attempts("+8613900005555"))
    assert [a["call_id"] for a in attempts] == [refused["call_id"]]


def test_tickets_are_numbered_by_the_database_and_a_callers_history_spans_both_nodes(cluster, answering_agents):
    first = cluster.call(1, "13800007777", dtmf="3", hold_s=6)
    second = cluster.call(2, "13800007777", dtmf="1", hold_s=6)
    assert first["call_id"].startswith("node1-") and second["call_id"].startswith("node2-")
    a, b = first["ticket"]["id"], second["ticket"]["id"]
    assert a[:8] == b[:8] and int(b[8:]) == int(a[8:]) + 1, (a, b)

    async def history(store):
        from datetime import datetime, UTC
        return await store.caller_history("+8613800007777", now=datetime.now(UTC))
    seen = {c["call_id"] for c in cluster.store_query(history)["calls"]}
    assert {first["call_id"], second["call_id"]} <= seen


def test_each_screen_pop_reaches_its_agent_once_with_both_publishers_running(cluster, answering_agents):
    with PopWatcher(cluster.nodes[0]) as pops:
        calls = [cluster.call(node, f"1380000{8000 + i}", dtmf="1", hold_s=5) for i, node in
                 enumerate((1, 2, 2, 1, 2, 1))]
        answered = [c for c in calls if c["answered_by"]]
        assert wait_until(lambda: len({m["call_id"] for _, m in pops.messages}) >= len(answered), 15)
        time.sleep(3)       # time for a second copy to arrive, were one sent
    assert len(answered) >= 4, calls
    ids = [m["id"] for _, m in pops.messages]
    print(f"\ntwo nodes: {len(calls)} calls, {len(answered)} answered, {len(ids)} pops delivered,"
          f" {len(set(ids))} distinct")
    assert len(ids) == len(set(ids)), "a screen-pop was delivered twice"
    rows = cluster.store_query(lambda s: s._db.execute_fetchall("SELECT message_id FROM screenpops"))
    assert set(ids) <= {r[0] for r in rows}
    pending = cluster.store_query(lambda s: s.outbox_pending(10))
    assert pending == []
