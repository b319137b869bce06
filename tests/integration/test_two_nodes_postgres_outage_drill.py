"""Fault drill on two nodes: the shared PostgreSQL server is stopped for 30 s while callers arrive at both nodes.

Callers keep reaching agents (the gateways cannot check restrictions without the store, so the entry fails open to
the agent queue, Zhanjiang 12345 rules, art. 2); screen-pops of calls answered meanwhile go out from the AMI event
through the outbox's memory; both gateways reconnect by themselves once the server is back; nothing acknowledged
before the stop is lost. The drill prints callers placed, placed during the outage, reached an agent, pops
delivered, gateways' store failures, and how long after the restart each gateway's store writes went through again.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.sandbox.processes import wait_until
from gateway.sandbox.sipp_scenario import CallerScript
from tests.integration.cluster_support import (  # noqa: F401 - answering_agents: a fixture
    Arrivals,
    PopWatcher,
    answering_agents,
    bring_up,
    take_down,
)

pytestmark = pytest.mark.integration

CALLERS = 24
ARRIVAL_GAP_S = 2.0          # 48 s of arrivals
STOP_AFTER_S = 8.0
OUTAGE_S = 30.0
NUMBERS = tuple(f"1370066{i:04d}" for i in range(1, CALLERS + 1))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = bring_up(tmp_path_factory.mktemp("two-nodes-pg"))
    yield nodes
    take_down(nodes)


def test_callers_reach_agents_while_the_database_is_stopped_and_the_gateways_recover(cluster, answering_agents):
    cluster.hotline("restrict", "add", "13900006666", "--reason", "威胁话务员", "--operator", "lead1")
    before = cluster.call(1, "13800006000", dtmf="1", hold_s=4)
    assert before["ticket"], before
    arrivals = Arrivals(NUMBERS, gap_s=ARRIVAL_GAP_S, config=lambda i: cluster.nodes[i % 2], ports_from=35000,
                        timeout_s=90, script=lambda number: CallerScript(from_number=number, dtmf="1", hold_ms=60_000,
                                                                         expect_server_hangup=True))
    with PopWatcher(cluster.nodes[0]) as pops:
        arrivals.thread.start()
        time.sleep(STOP_AFTER_S)
        cluster.postgres.stop()
        stopped_at = time.time()
        refused = cluster.hotline("restrict", "add", "13900007777", "--reason", "x", "--operator", "lead1",
                                  check=False, timeout=60)
        time.sleep(max(0.0, OUTAGE_S - (time.time() - stopped_at)))
        during = [s.gateway_status().get("state_writes", {}) for s in cluster.stacks]
        cluster.postgres.start()
        started_at = time.time()
        recovered: dict[str, float] = {}

        def both_recovered() -> bool:
            for stack in cluster.stacks:
                writes = stack.gateway_status().get("state_writes", {})
                if writes.get("ok") and writes.get("recoveries", 0) > 0 and stack.gateway.name not in recovered:
                    recovered[stack.gateway.name] = time.time() - started_at
            return len(recovered) == 2
        wait_until(both_recovered, 60, 0.2)       # the status file is rewritten every second
        arrivals.thread.join(120)
        assert not arrivals.thread.is_alive()
        time.sleep(3)
    in_outage = [n for n in NUMBERS if stopped_at <= arrivals.dialled_at.get(n, 0) <= started_at]
    reached = [n for n in NUMBERS if arrivals.ended_well(n) and arrivals.results[n].hangup_by == "server"]
    pop_calls = {m["call_id"] for _, m in pops.messages}
    pop_numbers = {m.get("caller_number") for _, m in pops.messages}

    async def after(store):
        since = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        restriction = await store.active_restriction("+8613900006666", datetime.now(UTC))
        first = await store.get_call(before["call_id"])
        recorded = await store._db.execute_fetchall("SELECT COUNT(*) FROM calls WHERE started_at >= ?", (since,))
        return restriction, first, int(list(recorded)[0][0]), await store.outbox_pending(10)
    restriction, first, recorded, pending = cluster.store_query(after)
    figures = (f"callers_placed={len(arrivals.dialled_at)} placed_during_outage={len(in_outage)} "
               f"reached_an_agent={len(reached)} pops_delivered={len(pops.messages)} "
               f"calls_popped={len(pop_calls)} gateways_failing_during={[w.get('failing') for w in during]} "
               f"recovered_after_s={ {k: round(v, 1) for k, v in recovered.items()} } "
               f"cli_add_during_outage_exit={refused.returncode} calls_recorded={recorded} "
               f"outbox_left={len(pending)}")
    print(f"\nPostgreSQL stopped {OUTAGE_S:.0f} s under load: {figures}")
    assert len(in_outage) >= 12, figures
    assert sorted(reached) == sorted(NUMBERS), figures                 # every caller reached an agent
    assert len(pop_calls) >= len(NUMBERS), figures                     # and each agent got the pop
    assert all(w.get("failing", {}).get("store", {}).get("kind") == "database_unreachable" for w in during), figures
    assert len(recovered) == 2 and max(recovered.values()) < 20, figures
    assert refused.returncode != 0 and restriction is not None and first is not None, figures
    assert pending == [], figures
    assert {f"+86{n}" for n in NUMBERS} <= pop_numbers, figures     # the agent had the number to call back
