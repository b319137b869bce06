"""The agent console's one-key transfer over AMI (linkage/agent_transfer.py), against a fake AMI and a real Store."""

from datetime import datetime

import pytest

from ami_handlers.client.errors import AMIError
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from linkage.agent_transfer import AgentTransfer, TransferError, centre_choices, conference_name
from linkage.emergency_list import Centre, EmergencyList, Situation

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=SHANGHAI)
CALL_ID = "1764222222.12"
NUMBER = "+8613800138000"
CALLER = "PJSIP/trunk-00000007"
AGENT_CHANNEL = "PJSIP/agent1-00000008"
CENTRES = (Centre("119", "PJSIP/centre-119", 20.0, "mqtt", label="消防 119"),
           Centre("120", "PJSIP/centre-120&PJSIP/centre-120b", 15.5, "none"))
EMERGENCIES = EmergencyList((Situation("fire", "火灾", ("119",), "1", ("着火",), ()),), "test", CENTRES)


class FakeAMI:
    def __init__(self, fail_on: str | None = None) -> None:
        self.actions: list[dict] = []
        self.handlers: dict[str, list] = {}
        self.fail_on = fail_on

    def on_event(self, name, callback) -> None:
        self.handlers.setdefault(name, []).append(callback)

    async def action(self, action, *, timeout: float = 5.0):
        self.actions.append(dict(action))
        if action["Action"] == self.fail_on:
            raise AMIError(f"{action['Action']} failed: Channel does not exist", {"Response": "Error"})
        return {"Response": "Success"}

    async def emit(self, event: dict) -> None:
        for callback in self.handlers.get(event["Event"], []):
            result = callback(event)
            if result is not None:
                await result


class FakePusher:
    def __init__(self) -> None:
        self.spawned: list[tuple[Centre, dict]] = []

    def spawn(self, centre, **case):
        self.spawned.append((centre, case))


def agent_connect(call_id=CALL_ID, member="PJSIP/agent1") -> dict:
    return {"Event": "AgentConnect", "Channel": CALLER, "DestChannel": AGENT_CHANNEL, "MemberName": member,
            "Interface": member, "ChanVariable": [f"HOTLINE_CALL_ID={call_id}", "HOTLINE_REQUEST_TYPE=complaint"],
            "DestChanVariable": f"HOTLINE_CALL_ID={call_id}"}


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    await s.open_call(call_id=CALL_ID, number=NUMBER, channel=CALLER, started_at=T0)
    yield s
    await s.close()


@pytest.fixture
async def ticket(store):
    ticket_id = await store.create_ticket_draft(call_id=CALL_ID, request_type="help", created_at=T0)
    await store.update_ticket_draft(ticket_id, address="赤坎区人民大道中 1 号", transcript="我家厨房着火了")
    return ticket_id


@pytest.fixture
def ami():
    return FakeAMI()


@pytest.fixture
def pusher():
    return FakePusher()


@pytest.fixture
async def transfer(ami, store, pusher):
    t = AgentTransfer(ami, store, lambda: EMERGENCIES, pusher, clock=lambda: T0)
    t.attach(ami)
    await ami.emit(agent_connect())
    return t


async def test_blind_sets_the_handoff_and_target_then_redirects_the_caller_to_the_linkage_context(
        transfer, ami, store, ticket):
    handoff_id = await transfer.transfer(call_id=CALL_ID, centre="119", mode="blind", agent="agent1",
                                         ticket_id=ticket)
    assert ami.actions == [
        {"Action": "Setvar", "Channel": CALLER, "Variable": "__HOTLINE_HANDOFF_ID", "Value": str(handoff_id)},
        {"Action": "Setvar", "Channel": CALLER, "Variable": "HOTLINE_LINKAGE_TARGETS",
         "Value": "PJSIP/centre-119|20"},
        {"Action": "Redirect", "Channel": CALLER, "Context": "hotline-linkage", "Exten": "s", "Priority": "1"},
    ]
    h = await store.get_handoff(handoff_id)
    assert (h["call_id"], h["centre"], h["trigger"], h["mode"], h["ticket_id"], h["requested_at"], h["result"]) == (
        CALL_ID, "119", "agent", "blind", ticket, T0, None)
    # The agent leg is gone: a second click finds no call with this agent.
    with pytest.raises(TransferError, match="not connected"):
        await transfer.transfer(call_id=CALL_ID, centre="119", mode="blind", agent="agent1", ticket_id=ticket)


async def test_the_centre_gets_the_case_with_the_callers_number_the_ticket_and_the_agent(
        transfer, pusher, ticket):
    handoff_id = await transfer.transfer(call_id=CALL_ID, centre="119", mode="blind", agent="agent1",
                                         ticket_id=ticket)
    [(centre, case)] = pusher.spawned
    assert centre is CENTRES[0]
    assert case == {"call_id": CALL_ID, "ticket_id": ticket, "caller_number": NUMBER,
                    "address": "赤坎区人民大道中 1 号", "situation": None, "situation_name": None,
                    "transcript": "我家厨房着火了", "agent": "agent1", "at": T0, "handoff_id": handoff_id}


async def test_threeway_moves_caller_and_agent_into_the_case_conference_then_originates_the_centre(
        transfer, ami, store, ticket):
    handoff_id = await transfer.transfer(call_id=CALL_ID, centre="120", mode="threeway", agent="agent1",
                                         ticket_id=ticket)
    conf = "case-1764222222-12"
    setvars = [a for a in ami.actions if a["Action"] == "Setvar"]
    assert {(a["Channel"], a["Variable"], a["Value"]) for a in setvars} >= {
        (CALLER, "HOTLINE_CONF", conf), (AGENT_CHANNEL, "HOTLINE_CONF", conf),
        (CALLER, "HOTLINE_CONF_USER", "hotline_user"), (AGENT_CHANNEL, "HOTLINE_CONF_USER", "hotline_user")}
    assert [a["Action"] for a in ami.actions] == ["Setvar"] * len(setvars) + ["Redirect", "Originate"]
    assert ami.actions[-2] == {
        "Action": "Redirect", "Channel": CALLER, "ExtraChannel": AGENT_CHANNEL,
        "Context": "hotline-threeway", "Exten": "s", "Priority": "1",
        "ExtraContext": "hotline-threeway", "ExtraExten": "s", "ExtraPriority": "1"}
    originate = dict(ami.actions[-1])
    action_id = originate.pop("ActionID")
    assert originate.pop("ChannelId").startswith(action_id)
    assert originate == {
        "Action": "Originate", "Channel": "PJSIP/centre-120",
        "Context": "hotline-threeway-centre", "Exten": "s", "Priority": "1", "Async": "true", "Timeout": "15500",
        "Variable": f"HOTLINE_CALL_ID={CALL_ID},HOTLINE_HANDOFF_ID={handoff_id},HOTLINE_CONF={conf},"
                    "HOTLINE_CONF_USER=hotline_user"}
    h = await store.get_handoff(handoff_id)
    assert (h["centre"], h["trigger"], h["mode"]) == ("120", "agent", "threeway")

    # The centre answers: the hand-off log says so.
    await ami.emit({"Event": "OriginateResponse", "ActionID": action_id, "Response": "Success", "Reason": "4"})
    h = await store.get_handoff(handoff_id)
    assert (h["result"], h["answered_at"]) == ("answered", T0)
    assert transfer.pending_originates == 0


async def test_threeway_centre_that_does_not_answer_is_logged_no_answer(transfer, ami, store):
    handoff_id = await transfer.transfer(call_id=CALL_ID, centre="119", mode="threeway", agent="agent1",
                                         ticket_id=None)
    action_id = ami.actions[-1]["ActionID"]
    await ami.emit({"Event": "OriginateResponse", "ActionID": "someone-else", "Response": "Failure", "Reason": "5"})
    assert (await store.get_handoff(handoff_id))["result"] is None
    await ami.emit({"Event": "OriginateResponse", "ActionID": action_id, "Response": "Failure", "Reason": "3"})
    h = await store.get_handoff(handoff_id)
    assert (h["result"], h["ended_at"]) == ("no_answer", T0)


async def test_a_marked_caller_profile_goes_to_the_caller_leg_only(ami, store, pusher):
    t = AgentTransfer(ami, store, lambda: EMERGENCIES, pusher, clock=lambda: T0, caller_profile="hotline_caller")
    t.attach(ami)
    await ami.emit(agent_connect())
    await t.transfer(call_id=CALL_ID, centre="119", mode="threeway", agent="agent1", ticket_id=None)
    profiles = {a["Channel"]: a["Value"] for a in ami.actions if a.get("Variable") == "HOTLINE_CONF_USER"}
    assert profiles == {CALLER: "hotline_caller", AGENT_CHANNEL: "hotline_user"}
    assert ami.actions[-1]["Variable"].endswith(",HOTLINE_CONF_USER=hotline_user")  # the centre is no caller


@pytest.mark.parametrize("kwargs, reason", [
    ({"call_id": "1764222222.99"}, "not connected"),
    ({"agent": "agent2"}, "another agent"),
    ({"centre": "999"}, "no linked centre"),
    ({"mode": "conference"}, "mode"),
])
async def test_what_cannot_be_transferred_is_refused_with_a_reason_and_no_ami_action(
        transfer, ami, store, pusher, kwargs, reason):
    args = {"call_id": CALL_ID, "centre": "119", "mode": "blind", "agent": "agent1", "ticket_id": None} | kwargs
    with pytest.raises(TransferError, match=reason):
        await transfer.transfer(**args)
    assert ami.actions == [] and pusher.spawned == [] and await store.list_handoffs() == []


async def test_a_finished_call_is_forgotten(transfer, ami):
    await ami.emit({"Event": "AgentComplete", "Channel": CALLER, "MemberName": "agent1",
                    "ChanVariable": f"HOTLINE_CALL_ID={CALL_ID}"})
    assert not transfer.in_progress(CALL_ID)
    with pytest.raises(TransferError, match="not connected"):
        await transfer.transfer(call_id=CALL_ID, centre="119", mode="blind", agent="agent1", ticket_id=None)


@pytest.mark.parametrize("mode, fail_on", [("blind", "Redirect"), ("blind", "Setvar"), ("threeway", "Originate")])
async def test_an_ami_failure_marks_the_handoff_failed_and_sends_no_case(store, pusher, mode, fail_on):
    ami = FakeAMI(fail_on=fail_on)
    t = AgentTransfer(ami, store, lambda: EMERGENCIES, pusher, clock=lambda: T0)
    t.on_agent_connect(agent_connect())
    with pytest.raises(TransferError, match="Channel does not exist"):
        await t.transfer(call_id=CALL_ID, centre="119", mode=mode, agent="agent1", ticket_id=None)
    [h] = await store.list_handoffs(call_id=CALL_ID)
    assert h["result"] == "failed" and fail_on in h["detail"] and h["ended_at"] == T0
    assert pusher.spawned == []


def test_conference_names_keep_uniqueids_apart():
    assert conference_name("1732690000.42") == "case-1732690000-42"
    assert conference_name("1732690000.42") != conference_name("1732690004.2")


def test_centre_choices_offer_name_and_label():
    assert centre_choices(lambda: EMERGENCIES)() == [{"name": "119", "label": "消防 119"},
                                                     {"name": "120", "label": "120"}]


async def test_a_double_click_starts_one_transfer(transfer, ami):
    import asyncio
    results = await asyncio.gather(
        *(transfer.transfer(call_id=CALL_ID, centre="119", mode="blind", agent="agent1", ticket_id=None)
          for _ in range(2)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert [str(r) for r in results if isinstance(r, TransferError)] == [
        "a transfer of this call is already under way"]
    assert [a["Action"] for a in ami.actions].count("Redirect") == 1


# -- the tracking of three-way originates: every way out forgets the entry -------------------------------------

QUICK = Centre("119", "PJSIP/centre-119", 0.05, "none")
QUICK_LIST = EmergencyList((Situation("fire", "火灾", ("119",), "1", ("着火",), ()),), "test", (QUICK,))


def linkage_event(handoff_id: int, stage: str) -> dict:
    return {"Event": "UserEvent", "UserEvent": "HotlineLinkage", "Call": CALL_ID, "Handoff": str(handoff_id),
            "Stage": stage}


async def threeway(t: AgentTransfer, ami: FakeAMI, call_id: str = CALL_ID) -> int:
    await ami.emit(agent_connect(call_id))
    return await t.transfer(call_id=call_id, centre="119", mode="threeway", agent="agent1", ticket_id=None)


@pytest.mark.parametrize("stage", ["answered", "NOANSWER"])
async def test_the_centres_answer_or_failure_from_the_dialplan_forgets_the_originate(transfer, ami, stage):
    handoff_id = await threeway(transfer, ami)
    assert transfer.pending_originates == 1
    await ami.emit(linkage_event(handoff_id + 1, stage))       # another hand-off's event
    assert transfer.pending_originates == 1
    await ami.emit(linkage_event(handoff_id, stage))
    assert transfer.pending_originates == 0
    assert [a["Action"] for a in ami.actions].count("Hangup") == 0


@pytest.mark.parametrize("handoff", [["7", "8"], "x", "", "-1", str(2**63)])
async def test_an_event_naming_no_handoff_of_ours_changes_nothing_and_raises_nothing(transfer, ami, handoff):
    await threeway(transfer, ami)
    await transfer.on_linkage_event({"Event": "UserEvent", "UserEvent": "HotlineLinkage", "Handoff": handoff,
                                     "Stage": "answered"})
    assert transfer.pending_originates == 1


async def test_a_caller_who_hangs_up_while_the_centre_rings_is_forgotten_and_the_centre_hung_up(
        transfer, ami, store):
    handoff_id = await threeway(transfer, ami)
    channel_id = ami.actions[-1]["ChannelId"]
    await ami.emit(linkage_event(handoff_id, "left"))
    assert transfer.pending_originates == 0
    assert ami.actions[-1] == {"Action": "Hangup", "Channel": channel_id}
    assert (await store.get_handoff(handoff_id))["detail"] == "the caller hung up before the centre answered"
    # the caller leaving after the centre answered hangs nobody up
    handoff_id = await threeway(transfer, ami)
    await ami.emit(linkage_event(handoff_id, "answered"))
    await ami.emit(linkage_event(handoff_id, "left"))
    assert [a["Action"] for a in ami.actions].count("Hangup") == 1


async def test_an_originate_asterisk_never_reports_on_is_given_up_and_its_handoff_marked_failed(ami, store, pusher):
    import asyncio
    t = AgentTransfer(ami, store, lambda: QUICK_LIST, pusher, clock=lambda: T0, originate_grace_s=0.05)
    t.attach(ami)
    handoff_id = await threeway(t, ami)
    assert t.pending_originates == 1
    await asyncio.sleep(0.3)
    await t.close()
    assert t.pending_originates == 0
    h = await store.get_handoff(handoff_id)
    assert (h["result"], h["ended_at"], h["detail"]) == ("failed", T0, "Asterisk did not report on the centre's leg")


async def test_a_late_report_after_giving_up_changes_nothing(ami, store, pusher):
    import asyncio
    t = AgentTransfer(ami, store, lambda: QUICK_LIST, pusher, clock=lambda: T0, originate_grace_s=0.01)
    t.attach(ami)
    handoff_id = await threeway(t, ami)
    await asyncio.sleep(0.2)
    await t.close()
    await ami.emit(linkage_event(handoff_id, "left"))
    assert [a["Action"] for a in ami.actions].count("Hangup") == 0 and t.pending_originates == 0


async def test_a_thousand_threeway_transfers_ending_every_way_leave_nothing_tracked(ami, store, pusher):
    import asyncio
    t = AgentTransfer(ami, store, lambda: QUICK_LIST, pusher, clock=lambda: T0, originate_grace_s=0.2)
    t.attach(ami)
    endings = ["answered", "NOANSWER", "left", "originate_refused", "unreported"]
    for i in range(1000):
        ending = endings[i % len(endings)]
        ami.fail_on = "Originate" if ending == "originate_refused" else None
        call_id = f"1764222222.{1000 + i}"
        try:
            handoff_id = await threeway(t, ami, call_id)
        except TransferError:
            continue
        if ending in ("answered", "NOANSWER", "left"):
            await ami.emit(linkage_event(handoff_id, ending))
    assert 0 < t.pending_originates <= 200        # only the unreported ones, until their time is up
    async with asyncio.timeout(10):
        while t.pending_originates or t._tasks:
            await asyncio.sleep(0.05)
    await t.close()
    failed = [h for h in await store.list_handoffs(limit=2000) if h["result"] == "failed"]
    assert len(failed) == 400                     # 200 refused by Asterisk, 200 never reported on
