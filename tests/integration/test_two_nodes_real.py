"""Two Asterisk + gateway pairs on one PostgreSQL store and one broker, on the real stack (`stack up --nodes 2`):
a restriction decided through one node refuses the caller on the other, ticket numbers come from the database
across nodes, a caller's history spans both, and each screen-pop reaches the agent once although both gateways'
publishers run over the one outbox."""
from __future__ import annotations

import time

import pytest

from gateway.sandbox.processes import wait_until
from tests.integration.cluster_support import PopWatcher, answering_agents, bring_up, take_down  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = bring_up(tmp_path_factory.mktemp("two-nodes"))
    yield nodes
    take_down(nodes)


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
