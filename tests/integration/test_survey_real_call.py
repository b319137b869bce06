"""The satisfaction survey on the real stack: a sipp agent answers and hangs up, the sipp caller stays on the line
(Queue option c), hears the survey and keys 4 (不满意): the rating is stored with the call and its ticket, and a
call-back task exists (art. 15)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from gateway.sandbox.testcall import place_call

pytestmark = pytest.mark.integration
NUMBER = "13800138150"


@pytest.fixture
def agents_who_hang_up(sandbox):
    """Agents that answer at once and hang up 3 s later."""
    sandbox.stack.start_simulated_agents(log=lambda *_: None, answer_after_ms=0, hang_up_after_ms=3000)
    yield sandbox
    for proc in sandbox.stack.agents:
        proc.stop(timeout=3)


def test_the_caller_rates_4_after_the_agent_hangs_up_and_a_call_back_task_is_made(sandbox, agents_who_hang_up):
    offset = len(sandbox.gateway_log())
    # 0: straight to an agent; then 4 twice, far enough apart that one lands in the survey (the other is heard
    # by the agent or comes after the survey)
    result = asyncio.run(place_call(sandbox.config, NUMBER, "0", hold_s=30, full=True, keys_after_speech="4,,,4",
                                    keys_after_speech_ms=6000))
    assert result["answered_by"] in {"agent1", "agent2"}, result
    call_id = result["call_id"]
    deadline, ratings = time.monotonic() + 10, []
    while time.monotonic() < deadline:
        ratings = sandbox.store_query(lambda s: s.ratings(call_id=call_id))
        if ratings and ratings[0]["rating"] is not None:
            break
        time.sleep(0.3)
    log = sandbox.gateway_log()[offset:]
    assert [(r["kind"], r["rating"]) for r in ratings] == [("intake", 4)], (ratings, log[-3000:])
    assert ratings[0]["ticket_id"] == result["ticket"]["id"]
    assert result["hangup_by"] == "server"            # the survey thanked the caller and Asterisk hung up
    tasks = sandbox.store_query(lambda s: s.callback_tasks())
    mine = [t for t in tasks if t["call_id"] == call_id]
    assert len(mine) == 1 and mine[0]["ticket_id"] == result["ticket"]["id"], tasks
    assert mine[0]["reason"] == "intake_rating_4_dissatisfied" and mine[0]["state"] == "open"
    assert "13800138150" not in log
    listed = json.loads(sandbox.hotline("callbacks", "list", "--json").stdout)
    assert mine[0]["id"] in [t["id"] for t in listed]
