"""Fault drill on two nodes: gateway A gets SIGKILL while callers arrive at node A's Asterisk, and the callers who
come after are still checked against the restrictions and led through the menu, by gateway B (Zhanjiang 12345
rules, art. 9 and art. 2).

Each Asterisk names the other node's gateway as its FastAGI backup (asterisk_conf/extensions.conf [globals]): a
FastAGI connection that gateway A's dead port refuses gives AGISTATUS=FAILURE at once and the entry runs on
gateway B. Half the callers are restricted numbers. The drill counts from the shared store: which callers' entry
was recorded (the restriction check ran), which restricted callers were refused, and how many arrived after the
kill. It prints callers placed, arriving while A was down, checked of those, refused of the restricted among them,
and the share checked (goal: all but those in the first 2 s after the kill).
"""
from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway.sandbox.processes import is_alive, wait_until
from gateway.sandbox.sipp_scenario import CallerScript
from tests.integration.cluster_support import Arrivals, bring_up, take_down

pytestmark = pytest.mark.integration

CALLERS = 24
ARRIVAL_GAP_S = 0.5
KILL_AFTER = 6               # gateway A dies once this many callers have dialled
NUMBERS = tuple(f"1390077{i:04d}" for i in range(1, CALLERS + 1))
RESTRICTED = NUMBERS[1::2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = bring_up(tmp_path_factory.mktemp("two-nodes-kill"))
    yield nodes
    take_down(nodes)


def script(number: str) -> CallerScript:
    # a restricted caller hears the announcement and is hung up; the others key 1 (consultation) in the menu,
    # wait in the queue and leave after 8 s
    restricted = number in RESTRICTED
    return CallerScript(from_number=number, dtmf="" if restricted else "1", hold_ms=25_000 if restricted else 8_000)


def test_callers_arriving_after_gateway_a_is_killed_are_checked_by_gateway_b(cluster):
    for number in RESTRICTED:
        cluster.hotline("restrict", "add", number, "--reason", "骚扰热线", "--operator", "lead1", node=2)
    node_a = cluster.stacks[0]
    pid = node_a.gateway.pid()
    began = datetime.now(UTC) - timedelta(seconds=1)
    arrivals = Arrivals(NUMBERS, gap_s=ARRIVAL_GAP_S, script=script, config=lambda i: cluster.nodes[0],
                        ports_from=33000, timeout_s=60)
    arrivals.thread.start()
    try:
        assert wait_until(lambda: len(arrivals.dialled_at) >= KILL_AFTER, 30, 0.05)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        assert wait_until(lambda: not is_alive(pid), 5)
        arrivals.thread.join(90)
        assert not arrivals.thread.is_alive(), "the callers' sipp did not finish"
    finally:
        cluster.hotline("stack", "up", node=1)

    async def entries(store):
        rows = await store._db.execute_fetchall(
            "SELECT call_id, number, outcome, ivr_path FROM calls WHERE started_at >= ?", (began.isoformat(),))
        return {row["number"]: dict(row) for row in rows if row["number"]}
    recorded = cluster.store_query(entries)
    after = [n for n in NUMBERS if arrivals.dialled_at.get(n, 0) > killed_at]
    after_2s = [n for n in after if arrivals.dialled_at[n] > killed_at + 2]
    checked = [n for n in after if f"+86{n}" in recorded]
    refused = [n for n in after if n in RESTRICTED and recorded.get(f"+86{n}", {}).get("outcome") == "blocked"]
    in_menu = [n for n in after if n not in RESTRICTED and "welcome" in recorded.get(f"+86{n}", {}).get("ivr_path", "")]
    by_b = [n for n in after if recorded.get(f"+86{n}", {}).get("call_id", "").startswith("node1-")]
    sipp_ok = [n for n in NUMBERS if arrivals.ended_well(n)]
    share = len(checked) / len(after) if after else 0.0
    figures = (f"callers_placed={len(arrivals.dialled_at)} arriving_after_kill={len(after)} "
               f"checked_after_kill={len(checked)} restricted_after_kill={len([n for n in after if n in RESTRICTED])} "
               f"refused_after_kill={len(refused)} menu_after_kill={len(in_menu)} on_node_a_asterisk={len(by_b)} "
               f"share_checked={share:.2f} sipp_ok={len(sipp_ok)}")
    print(f"\ngateway A SIGKILLed while {CALLERS} callers arrive at node A: {figures}")
    assert len(after) >= CALLERS - KILL_AFTER - 1, figures
    assert all(f"+86{n}" in recorded for n in after_2s), figures
    assert sorted(refused) == sorted(n for n in after if n in RESTRICTED), figures
    assert len(in_menu) == len([n for n in after if n not in RESTRICTED]), figures
    assert len(by_b) == len(after), figures         # every one was a call on node A's Asterisk
    assert wait_until(lambda: cluster.stacks[0].gateway_status().get("ami_ready"), 30), "gateway A is not back"
