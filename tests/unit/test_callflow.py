import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.callflow import CallFlow, CallFlowSettings
from gateway.agi.replies import AGIError, AGIHangup, AGIReply, AGITimeout
from gateway.store import calls as store_calls
from gateway.store.database import Store
from ivr.menu import load_menu

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=SHANGHAI)
CALL_ID = "1772330400.42"
MOBILE = "13800138000"
MOBILE_E164 = "+8613800138000"
MENU = load_menu()


class GatewayKilled(BaseException):
    """kill -9 of the gateway: nothing after it runs, no handler sees it; the channel keeps what was set."""


class FakeAGI:
    """The AGISession surface CallFlow and the IVR runner use, scripted per prompt.

    ``keys`` maps a prompt name to the key pressed while it plays; ``hang_up_at`` is the prompt during which the
    caller hangs up (AGIHangup, as the real session raises it). A prompt not in ``keys`` plays to the end and the
    following WAIT FOR DIGIT times out, unless ``waits`` gives the digits pressed after each prompt in turn.
    """

    def __init__(self, callerid: str | None = MOBILE, *, keys=None, waits=(), hang_up_at=None, stall_at=None,
                 uniqueid=CALL_ID, missing_prompt=None, die_at=None, time_out_at=None):
        self.env = {"agi_network_script": "entry", "agi_uniqueid": uniqueid, "agi_channel": "PJSIP/hotline-trunk-1"}
        if callerid is not None:
            self.env["agi_callerid"] = callerid
        self.hungup = False
        self.keys = dict(keys or {})
        self.waits = list(waits)
        self.hang_up_at = hang_up_at
        self.stall_at = stall_at
        self.missing_prompt = missing_prompt
        self.commands: list[str] = []
        self.played: list[str] = []
        self.escapes: list[str] = []
        self.variables: dict[str, str] = {}
        self.set_order: list[str] = []
        # every AGI command in order, as ("play", prompt) / ("set", name, value) / ("wait",) / ("command", line)
        self.trace: list[tuple] = []
        self.die_at = die_at            # the gateway is killed as it sends its die_at-th command (0-based)
        self.time_out_at = time_out_at  # the prompt whose STREAM FILE gets no reply in time (AGITimeout)
        self.broken = False

    def _send(self, *entry):
        """One AGI command leaving the gateway: a kill stops everything here; a failed session refuses it."""
        if self.die_at is not None and len(self.trace) == self.die_at:
            raise GatewayKilled(f"killed before {entry}")
        if self.broken:
            raise AGIError("session already failed")
        self.trace.append(entry)

    def _hang_up(self, what):
        self.hungup = True
        raise AGIHangup(f"caller hung up during {what}")

    async def stream_file(self, name, escape_digits=""):
        prompt = name.rsplit("/", 1)[1]
        self._send("play", prompt)
        if self.hungup:
            self._hang_up(name)
        if prompt == self.time_out_at:
            self.broken = True
            raise AGITimeout(f"no reply to STREAM FILE {prompt}")
        assert name == f"/p/{prompt}"
        self.played.append(prompt)
        self.escapes.append(escape_digits)
        if prompt == self.stall_at:
            await asyncio.sleep(30)
        if prompt == self.hang_up_at:
            self._hang_up(prompt)
        if prompt == self.missing_prompt:
            # Asterisk answers STREAM FILE of a missing file with result=-1, as for a hangup; the channel lives on
            raise AGIHangup(f"result=-1 playing {prompt}")
        key = self.keys.get(prompt)
        return key if key and key in escape_digits else None

    async def wait_for_digit(self, timeout_ms):
        self._send("wait")
        if self.hungup:
            self._hang_up("wait")
        return self.waits.pop(0) if self.waits else None

    async def get_data(self, name, timeout_ms, max_digits):
        self._send("get_data", name.rsplit("/", 1)[1])
        if self.hungup:
            self._hang_up(name)
        self.played.append(name.rsplit("/", 1)[1])
        return "", True

    async def set_variable(self, name, value):
        self._send("set", name, value)
        if self.hungup or self.hang_up_at == f"set {name}":
            self._hang_up(f"SET VARIABLE {name}")
        self.variables[name] = value
        self.set_order.append(name)

    async def get_variable(self, name):
        return self.variables.get(name)

    async def command(self, line, *, timeout=None):
        self._send("command", line)
        self.commands.append(line)
        if self.hungup:
            self._hang_up(line)
        return AGIReply(code=200, result="6", data=None, extra={})


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.db")
    yield s
    try:
        await s.close()
    except ValueError:
        pass  # closed by the test


def flow(store, *, deadline_s=5):
    settings = CallFlowSettings(prompt_dir="/p", deadline_s=deadline_s, tz=SHANGHAI)
    return CallFlow(store, MENU, settings, clock=lambda: NOW)


async def restrict(store, number=MOBILE, days=30):
    # decided on 1 March: in force through 31 March (the decision day is not counted)
    return await store.add_restriction(number, reason="harassing agents", operator="op7", days=days,
                                       decided_at=NOW - timedelta(hours=1))


SAYS_31_MARCH_2026 = ["digit_2", "digit_0", "digit_2", "digit_6", "year", "digit_3", "month",
                      "digit_3", "ten", "digit_1", "day"]


# -- restricted numbers (article 9) ---------------------------------------------------------------------------------

async def test_restricted_caller_hears_end_date_and_is_hung_up(store):
    restriction = await restrict(store)
    agi = FakeAGI(MOBILE)
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "hangup"
    assert agi.variables["__HOTLINE_CALL_ID"] == CALL_ID
    assert agi.played == ["restricted_intro", *SAYS_31_MARCH_2026, "restricted_outro"]
    assert "welcome" not in agi.played
    [attempt] = await store.blocked_attempts(MOBILE_E164)
    assert (attempt["call_id"], attempt["number"], attempt["restriction_id"]) == (CALL_ID, MOBILE_E164,
                                                                                  restriction.id)
    assert attempt["at"] == NOW
    call = await store.get_call(CALL_ID)
    assert (call["outcome"], call["number"], call["ended_at"]) == ("blocked", MOBILE_E164, NOW)
    assert call["ivr_path"] == []
    assert "__HOTLINE_REQUEST_TYPE" not in agi.variables
    # the hang-up is the session's last command, after the whole announcement: nothing said "hang up" before
    assert agi.trace[-2:] == [("play", "restricted_outro"), ("set", "HOTLINE_ACTION", "hangup")]


@pytest.mark.parametrize("callerid", ["+8613800138000", "008613800138000", '"Zhang" <sip:13800138000@10.0.0.1>'])
async def test_restriction_applies_to_every_form_of_the_number(store, callerid):
    await restrict(store)
    agi = FakeAGI(callerid)
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "hangup"
    assert agi.played[0] == "restricted_intro"


async def test_caller_hanging_up_during_the_announcement_stays_blocked(store):
    await restrict(store)
    agi = FakeAGI(MOBILE, hang_up_at="month")
    await flow(store).entry(agi)  # nothing propagates
    assert agi.played == ["restricted_intro", *SAYS_31_MARCH_2026[:SAYS_31_MARCH_2026.index("month") + 1]]
    call = await store.get_call(CALL_ID)
    assert call["outcome"] == "blocked"
    assert len(await store.blocked_attempts(MOBILE_E164)) == 1
    assert "HOTLINE_ACTION" not in agi.variables, "nothing is decided for a caller who left mid-announcement"


async def test_caller_gone_as_the_hang_up_is_decided_stays_blocked(store):
    await restrict(store)
    agi = FakeAGI(MOBILE, hang_up_at="set HOTLINE_ACTION")
    await flow(store).entry(agi)
    assert agi.played == ["restricted_intro", *SAYS_31_MARCH_2026, "restricted_outro"]
    assert (await store.get_call(CALL_ID))["outcome"] == "blocked"
    assert len(await store.blocked_attempts(MOBILE_E164)) == 1


# -- a restricted caller asking for emergency help (art. 9 and 14): no fault ever hangs them up ----------------------

class NoCentre:
    """The linkage hand-off with no centre for the chosen situation: the caller goes to the agent queue."""

    def __init__(self):
        self.asked = []

    async def from_menu(self, agi, *, call_id, ticket_id, menu_key, caller_e164):
        self.asked.append(menu_key)
        return False


def restricted_flow(store, *, deadline_s=5):
    settings = CallFlowSettings(prompt_dir="/p", deadline_s=deadline_s, tz=SHANGHAI, restricted_emergency_key="9")
    return CallFlow(store, MENU, settings, clock=lambda: NOW, linkage=NoCentre())


def hangs_up(agi):
    """What the dialplan ([hotline-in]) does with the channel as the gateway left it: hang up, or queue."""
    return agi.variables.get("HOTLINE_ACTION") == "hangup"


KEYS_9_DURING_THE_DATE = {"month": "9"}
KEYS_9_THEN_FIRE = {**KEYS_9_DURING_THE_DATE, "emergency_menu": "2"}


async def test_restricted_caller_keying_9_gets_the_emergency_menu_and_is_queued_at_top_priority(store):
    await restrict(store)
    agi = FakeAGI(MOBILE, keys=KEYS_9_THEN_FIRE)
    await restricted_flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert (agi.variables["__HOTLINE_PRIORITY"], agi.variables["__HOTLINE_EMERGENCY"]) == ("10", "119")
    # the first thing after the key: the channel says "top priority", before the sub-menu plays
    after_key = agi.trace[agi.trace.index(("play", "month")) + 1]
    assert after_key == ("set", "__HOTLINE_PRIORITY", "10")
    assert "restricted_outro" not in agi.played and "emergency_menu" in agi.played
    assert len(await store.blocked_attempts(MOBILE_E164)) == 1, "the restriction stands and is on record"


async def test_restricted_caller_keying_9_then_nothing_reaches_an_agent_at_top_priority(store):
    await restrict(store)
    agi = FakeAGI(MOBILE, keys=KEYS_9_DURING_THE_DATE)
    await restricted_flow(store).entry(agi)
    assert (agi.variables["HOTLINE_ACTION"], agi.variables["__HOTLINE_PRIORITY"]) == ("queue", "10")
    assert (await store.get_call(CALL_ID))["priority"] == 10


# AGI commands of the undisturbed calls (checked below): the kill drills strike at each, and once after the last
EMERGENCY_CALL_COMMANDS = 16
REFUSAL_COMMANDS = 15


async def killed_at(store, die_at, **script):
    agi = FakeAGI(MOBILE, die_at=die_at, **script)
    with contextlib.suppress(GatewayKilled):
        await restricted_flow(store).entry(agi)
    return agi


async def test_the_kill_drills_strike_at_every_command_of_their_calls(store):
    await restrict(store)
    assert len((await killed_at(store, None, keys=KEYS_9_THEN_FIRE)).trace) == EMERGENCY_CALL_COMMANDS
    assert len((await killed_at(store, None)).trace) == REFUSAL_COMMANDS


@pytest.mark.parametrize("die_at", range(EMERGENCY_CALL_COMMANDS + 1))
async def test_a_kill_at_any_command_never_hangs_up_a_caller_who_keyed_9(store, die_at):
    await restrict(store)
    agi = await killed_at(store, die_at, keys=KEYS_9_THEN_FIRE)
    assert not hangs_up(agi), agi.trace
    if ("play", "emergency_menu") in agi.trace:
        # killed in the emergency sub-menu or later: the dialplan's fallback queues at the sub-menu's priority
        assert agi.variables["__HOTLINE_PRIORITY"] == "10", agi.trace


@pytest.mark.parametrize("die_at", range(REFUSAL_COMMANDS + 1))
async def test_only_the_session_that_finished_the_announcement_hangs_up(store, die_at):
    await restrict(store)
    agi = await killed_at(store, die_at)
    finished = die_at == REFUSAL_COMMANDS
    assert hangs_up(agi) == finished, agi.trace
    if finished:
        assert agi.trace[-2:] == [("play", "restricted_outro"), ("set", "HOTLINE_ACTION", "hangup")]


async def test_deadline_in_the_emergency_menu_queues_the_restricted_caller_at_top_priority(store):
    await restrict(store)
    agi = FakeAGI(MOBILE, keys=KEYS_9_DURING_THE_DATE, stall_at="emergency_menu")
    await asyncio.wait_for(restricted_flow(store, deadline_s=0.2).entry(agi), timeout=5)
    assert (agi.variables["HOTLINE_ACTION"], agi.variables["__HOTLINE_PRIORITY"]) == ("queue", "10")
    assert (await store.get_call(CALL_ID))["outcome"] == "failed"


async def test_store_fault_after_the_emergency_menu_queues_the_restricted_caller_at_top_priority(store, monkeypatch):
    await restrict(store)

    async def broken(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(store, "queue_call", broken)
    agi = FakeAGI(MOBILE, keys=KEYS_9_THEN_FIRE)
    await restricted_flow(store).entry(agi)
    assert (agi.variables["HOTLINE_ACTION"], agi.variables["__HOTLINE_PRIORITY"]) == ("queue", "10")


async def test_agi_command_timeout_in_the_emergency_menu_leaves_top_priority_and_no_hang_up(store):
    await restrict(store)
    agi = FakeAGI(MOBILE, keys=KEYS_9_DURING_THE_DATE, time_out_at="emergency_menu")
    await restricted_flow(store).entry(agi)
    # the session is dead: nothing more can be set; the dialplan's fallback reads what is there
    assert "HOTLINE_ACTION" not in agi.variables and agi.variables["__HOTLINE_PRIORITY"] == "10"
    assert (await store.get_call(CALL_ID))["outcome"] == "failed"


async def test_cancelled_in_the_emergency_menu_the_call_is_released_at_top_priority(store):
    await restrict(store)
    agi = FakeAGI(MOBILE, keys=KEYS_9_DURING_THE_DATE, stall_at="emergency_menu")
    task = asyncio.create_task(restricted_flow(store).entry(agi))
    while "emergency_menu" not in agi.played:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not hangs_up(agi) and agi.variables["__HOTLINE_PRIORITY"] == "10"
    assert (await store.get_call(CALL_ID))["outcome"] == "failed"


@pytest.mark.parametrize("fault", ["missing_prompt", "deadline", "timeout", "cancel"])
async def test_a_fault_during_the_announcement_sends_the_restricted_caller_to_an_agent(store, fault):
    await restrict(store)
    if fault == "missing_prompt":
        agi = FakeAGI(MOBILE, missing_prompt="restricted_outro")
    elif fault == "timeout":
        agi = FakeAGI(MOBILE, time_out_at="month")
    else:
        agi = FakeAGI(MOBILE, stall_at="month")
    task = asyncio.create_task(restricted_flow(store, deadline_s=0.2 if fault == "deadline" else 5).entry(agi))
    if fault == "cancel":
        while "month" not in agi.played:
            await asyncio.sleep(0.01)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert not hangs_up(agi), agi.trace
    assert agi.variables.get("HOTLINE_ACTION") in {"queue", None}
    assert agi.variables.get("__HOTLINE_PRIORITY") is None, "no emergency was asked: normal priority"
    assert (await store.get_call(CALL_ID))["outcome"] == "failed"
    assert len(await store.blocked_attempts(MOBILE_E164)) == 1


async def test_a_fault_in_the_emergency_menu_of_an_unrestricted_caller_also_keeps_top_priority(store):
    agi = FakeAGI(MOBILE, keys={"welcome": "9"}, time_out_at="emergency_menu")
    await flow(store).entry(agi)
    assert agi.variables["__HOTLINE_PRIORITY"] == "10"
    assert "HOTLINE_ACTION" not in agi.variables


async def test_lifted_restriction_lets_the_caller_through_to_the_menu(store):
    await restrict(store)
    await store.lift_restriction(MOBILE, operator="op7", reason="appeal granted", at=NOW - timedelta(minutes=5))
    agi = FakeAGI(MOBILE, keys={"welcome": "1"})
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert agi.played[0] == "welcome"
    assert await store.blocked_attempts(MOBILE_E164) == []


async def test_restriction_of_another_number_does_not_touch_this_caller(store):
    await restrict(store, "13900139000")
    agi = FakeAGI(MOBILE, keys={"welcome": "2"})
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "help"


# -- the menu and the queue -----------------------------------------------------------------------------------------

async def test_caller_pressing_3_during_the_welcome_is_queued_as_a_complaint(store):
    agi = FakeAGI(MOBILE, keys={"welcome": "3"})
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert agi.variables["__HOTLINE_CALL_ID"] == CALL_ID
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "complaint"
    assert agi.variables["__HOTLINE_PRIORITY"] == "0"
    assert "__HOTLINE_EMERGENCY" not in agi.variables
    # the call id first (inherited by everything after), the decision last
    assert agi.set_order[0] == "__HOTLINE_CALL_ID" and agi.set_order[-1] == "HOTLINE_ACTION"
    assert agi.played == ["welcome", "transfer_agent"]
    assert "3" in agi.escapes[0]
    call = await store.get_call(CALL_ID)
    assert call["ivr_path"] == ["welcome", "3"]
    assert (call["request_type"], call["priority"], call["outcome"]) == ("complaint", 0, "ivr")
    assert (call["number"], call["channel"], call["started_at"]) == (MOBILE_E164, "PJSIP/hotline-trunk-1", NOW)
    assert await store.blocked_attempts() == []


async def test_emergency_choice_is_queued_at_top_priority_with_the_centre(store):
    agi = FakeAGI(MOBILE, keys={"welcome": "9", "emergency_menu": "2"})
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert (agi.variables["__HOTLINE_EMERGENCY"], agi.variables["__HOTLINE_PRIORITY"]) == ("119", "10")
    call = await store.get_call(CALL_ID)
    assert (call["emergency"], call["priority"], call["ivr_path"]) == ("119", 10, ["welcome", "9", "emergency", "2"])


async def test_silent_caller_is_queued_for_an_agent(store):
    agi = FakeAGI(MOBILE)
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "unspecified"
    assert (await store.get_call(CALL_ID))["ivr_path"] == ["welcome", "timeout"]


async def test_caller_hanging_up_during_the_menu_is_abandoned(store):
    agi = FakeAGI(MOBILE, hang_up_at="welcome")
    await flow(store).entry(agi)  # nothing propagates
    call = await store.get_call(CALL_ID)
    assert (call["outcome"], call["ended_at"]) == ("abandoned", NOW)
    assert "HOTLINE_ACTION" not in agi.variables


async def test_caller_hanging_up_at_the_transfer_prompt_is_abandoned(store):
    agi = FakeAGI(MOBILE, keys={"welcome": "5"}, hang_up_at="transfer_agent")
    await flow(store).entry(agi)
    assert (await store.get_call(CALL_ID))["outcome"] == "abandoned"


# -- fail-open: whatever goes wrong, the caller reaches an agent ---------------------------------------------------

async def test_store_that_fails_still_sends_the_caller_to_the_queue(store, caplog):
    await store.close()
    agi = FakeAGI(MOBILE, keys={"welcome": "3"})
    with caplog.at_level(logging.ERROR, logger="gateway.callflow"):
        await flow(store).entry(agi)  # nothing propagates
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert any("event=gateway_fault" in r.getMessage() for r in caplog.records)


async def test_restriction_lookup_failure_queues_the_caller_and_records_the_failure(store, monkeypatch):
    async def broken(db, number, now):
        raise RuntimeError("disk I/O error")

    # the lookup inside the call-entry transaction
    monkeypatch.setattr(store_calls, "restriction_in_force", broken)
    agi = FakeAGI(MOBILE)
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert "welcome" not in agi.played
    assert (await store.get_call(CALL_ID))["outcome"] == "failed"


async def test_call_past_its_deadline_is_queued_anyway(store):
    agi = FakeAGI(MOBILE, stall_at="welcome")
    await asyncio.wait_for(flow(store, deadline_s=0.2).entry(agi), timeout=5)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert (await store.get_call(CALL_ID))["outcome"] == "failed"


async def test_fault_after_the_caller_hung_up_sets_nothing(store, monkeypatch):
    agi = FakeAGI(MOBILE)

    async def broken(db, number, now):
        agi.hungup = True
        raise RuntimeError("fault while the channel went away")

    monkeypatch.setattr(store_calls, "restriction_in_force", broken)
    await flow(store).entry(agi)
    assert "HOTLINE_ACTION" not in agi.variables


# -- odd caller ids -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("callerid", ["", "anonymous", "<unknown>", "abc", "1" * 40, "张三", "\x00", "+", None,
                                      "sip:@", '"" <>'])
async def test_odd_caller_ids_go_through_the_menu(store, callerid):
    agi = FakeAGI(callerid, keys={"welcome": "1"})
    await flow(store).entry(agi)
    assert agi.played == ["welcome", "transfer_agent"]
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "consultation"
    call = await store.get_call(CALL_ID)
    assert call["outcome"] == "ivr" and call["number"] is None


async def test_call_without_a_uniqueid_is_still_served(store):
    agi = FakeAGI(MOBILE, keys={"welcome": "4"}, uniqueid="")
    await flow(store).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert agi.variables["__HOTLINE_CALL_ID"] == "unknown"


async def test_a_missing_prompt_sends_the_caller_to_an_agent_not_to_abandoned(store):
    agi = FakeAGI(missing_prompt="welcome")

    await flow(store).entry(agi)

    assert agi.commands == ["CHANNEL STATUS"]
    assert agi.variables["HOTLINE_ACTION"] == "queue"
    assert (await store.get_call(CALL_ID))["outcome"] == "failed"


async def test_a_real_hangup_does_not_probe_a_dead_channel_into_the_queue(store):
    agi = FakeAGI(hang_up_at="welcome")

    await flow(store).entry(agi)

    assert "HOTLINE_ACTION" not in agi.variables
    assert (await store.get_call(CALL_ID))["outcome"] == "abandoned"


async def test_a_queued_caller_has_a_ticket_draft_with_type_and_due_date_on_the_channel(store):
    agi = FakeAGI(MOBILE, keys={"welcome": "3"})

    await flow(store).entry(agi)

    ticket_id = agi.variables["__HOTLINE_TICKET_ID"]
    assert agi.set_order.index("__HOTLINE_TICKET_ID") < agi.set_order.index("HOTLINE_ACTION")
    draft = await store.get_ticket_draft(ticket_id)
    assert draft["call_id"] == CALL_ID and draft["type"] == "complaint"
    # complaint: 15 working days (Zhanjiang 12345 rules, art. 11), counted from the day after receipt
    from ivr.triage.deadline import due_date
    assert draft["due"] == due_date("complaint", NOW)
    assert (NOW.date() < draft["due"])


async def test_a_silent_caller_gets_a_draft_without_type_or_due_date(store):
    agi = FakeAGI(MOBILE)

    await flow(store).entry(agi)

    draft = await store.get_ticket_draft(agi.variables["__HOTLINE_TICKET_ID"])
    assert draft["type"] is None and draft["due"] is None
