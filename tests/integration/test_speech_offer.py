"""A spoken-emergency offer acts only while Asterisk lists the caller as waiting in the queue (a fake AMI peer on a
real loopback socket stands in for Asterisk; the store is a real SQLite file). No stack needed."""
from __future__ import annotations

import logging
from datetime import datetime

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from linkage.emergency_list import load_emergency_list
from linkage.handoff import LinkageHandoff
from tests.integration.test_ami_connection import FakeAMIServer, make_client

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
CALLER = "PJSIP/hotline-trunk-00000007"
QUEUE = "hotline"


class Pushes:
    def __init__(self) -> None:
        self.spawned: list[dict] = []

    def spawn(self, centre, **case):
        self.spawned.append({"centre": centre.name, **case})


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    await s.open_call(call_id="c7", number="+8613800138000", channel=CALLER, started_at=T0)
    await s.update_call("c7", outcome="queued")
    yield s
    await s.close()


@pytest.fixture
async def asterisk():
    fake = await FakeAMIServer().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def linkage(store, asterisk):
    ami = make_client(asterisk.port)
    await ami.connect()
    assert await ami.wait_ready(2)
    emergencies = load_emergency_list(require_centres=True)
    yield LinkageHandoff(store, lambda: emergencies, Pushes(), clock=lambda: T0, ami=ami, queue=QUEUE)
    await ami.close()


def entry(channel: str, position: int = 1, queue: str = QUEUE) -> dict:
    return {"Event": "QueueEntry", "Queue": queue, "Position": str(position), "Channel": channel,
            "CallerIDNum": "13800138000", "Wait": "12"}


def sent(asterisk) -> list[tuple[str, str | None]]:
    return [(a["Action"], a.get("Variable") or a.get("Context")) for a in asterisk.actions if a["Action"] != "Login"]


async def test_a_caller_still_waiting_in_the_queue_is_taken_to_the_confirmation(store, asterisk, linkage):
    asterisk.lists["QueueStatus"] = [{"Event": "QueueParams", "Queue": QUEUE}, entry("PJSIP/other-1"), entry(CALLER, 2)]
    handoff_id = await linkage.offer_from_speech(call_id="c7", ticket_id=None, situation_id="fire")
    assert handoff_id is not None
    assert sent(asterisk) == [("Setvar", "__HOTLINE_HANDOFF_ID"), ("Setvar", "HOTLINE_LINKAGE_TARGETS"),
                              ("Setvar", "HOTLINE_CAPTURE"), ("QueueStatus", None),
                              ("Redirect", "hotline-linkage-confirm")], "the Redirect follows the check at once"
    assert asterisk.actions[-1]["Channel"] == CALLER
    handoff = await store.get_handoff(handoff_id)
    assert handoff["trigger"] == "speech" and handoff["result"] is None


async def test_a_caller_an_agent_answered_is_left_in_the_bridge_although_the_store_still_says_queued(
        store, asterisk, linkage, caplog):
    asterisk.lists["QueueStatus"] = [{"Event": "QueueParams", "Queue": QUEUE}, entry("PJSIP/other-1")]
    with caplog.at_level(logging.INFO, logger="linkage.handoff"):
        assert await linkage.offer_from_speech(call_id="c7", ticket_id=None, situation_id="fire") is None
    assert "Redirect" not in [a for a, _ in sent(asterisk)]
    [handoff] = await store.list_handoffs(call_id="c7")
    assert handoff["result"] == "cancelled" and "no longer waiting in the queue" in handoff["detail"]
    assert "event=linkage_offer_skipped" in caplog.text and "reason=not_waiting_in_queue" in caplog.text
    # the offer's variables are taken off the caller's channel again
    assert [(a["Variable"], a["Value"]) for a in asterisk.actions[-2:]] == [
        ("__HOTLINE_HANDOFF_ID", ""), ("HOTLINE_LINKAGE_TARGETS", "")]


async def test_no_offer_when_asterisk_cannot_say_whether_the_caller_waits(store, asterisk, linkage):
    asterisk.responses["QueueStatus"] = "Response: Error\r\nMessage: Permission denied"
    assert await linkage.offer_from_speech(call_id="c7", ticket_id=None, situation_id="fire") is None
    assert "Redirect" not in [a for a, _ in sent(asterisk)]
    [handoff] = await store.list_handoffs(call_id="c7")
    assert handoff["result"] == "failed" and "AMIError" in handoff["detail"]


async def test_no_offer_when_asterisk_does_not_finish_its_answer(store, asterisk, linkage):
    asterisk.lists["QueueStatus"] = [entry(CALLER)]
    asterisk.unfinished_lists.add("QueueStatus")
    assert await linkage.offer_from_speech(call_id="c7", ticket_id=None, situation_id="fire") is None
    assert "Redirect" not in [a for a, _ in sent(asterisk)]


async def test_a_call_the_store_already_knows_answered_costs_no_question_to_asterisk(store, asterisk, linkage):
    await store.update_call("c7", outcome="answered")
    assert await linkage.offer_from_speech(call_id="c7", ticket_id=None, situation_id="fire") is None
    assert sent(asterisk) == [] and await store.list_handoffs(call_id="c7") == []
