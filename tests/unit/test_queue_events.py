"""Queue/agent AMI events -> call record updates."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st
from panoramisk.message import Message

from ami_handlers.queue_events import QUEUE_EVENTS, QueueEventRecorder, agent_name, channel_vars

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=timezone.utc)
CALLER_VARS = ["HOTLINE_CALL_ID=1764222222.12", "HOTLINE_REQUEST_TYPE=complaint", "HOTLINE_TICKET_ID="]


def event(name: str, **headers) -> Message:
    """As panoramisk hands it over: parsed from the wire, repeated keys as lists."""
    lines = [f"Event: {name}"]
    for key, value in headers.items():
        lines += [f"{key}: {v}" for v in (value if isinstance(value, list) else [value])]
    return Message.from_line("\r\n".join(lines))


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.updates: list[tuple[str, dict]] = []
        self.fail = fail

    async def update_call(self, call_id: str, **fields) -> None:
        if self.fail:
            raise RuntimeError("database is locked")
        self.updates.append((call_id, fields))


@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def recorder(store):
    return QueueEventRecorder(store, clock=lambda: NOW)


# ---- channel_vars -----------------------------------------------------------------------------------------

def test_channel_vars_from_a_single_string():
    assert channel_vars({"ChanVariable": "HOTLINE_CALL_ID=1764222222.12"}) == {"HOTLINE_CALL_ID": "1764222222.12"}


def test_channel_vars_from_a_list_keeps_empty_values():
    assert channel_vars({"ChanVariable": CALLER_VARS}) == {
        "HOTLINE_CALL_ID": "1764222222.12", "HOTLINE_REQUEST_TYPE": "complaint", "HOTLINE_TICKET_ID": ""}


def test_channel_vars_of_the_agent_leg():
    parsed = event("AgentConnect", ChanVariable=CALLER_VARS, DestChanVariable="HOTLINE_CALL_ID=1764222222.12")
    assert channel_vars(parsed, "DestChanVariable") == {"HOTLINE_CALL_ID": "1764222222.12"}
    assert channel_vars(parsed, "destchanvariable") == {"HOTLINE_CALL_ID": "1764222222.12"}  # Message ignores case


def test_channel_vars_value_may_contain_equals_signs():
    assert channel_vars({"ChanVariable": "URL=a=b"}) == {"URL": "a=b"}


@pytest.mark.parametrize("raw", [None, "", "no-equals-sign", "=value-without-name", 42, [None, 3, ["x=1"]], {}])
def test_channel_vars_skips_malformed_entries(raw):
    assert channel_vars({"ChanVariable": raw}) == {}


def test_channel_vars_when_the_header_is_missing():
    assert channel_vars({}) == {}
    assert channel_vars(Message({"Event": "QueueCallerJoin"})) == {}


@given(st.one_of(
    st.none(), st.integers(), st.text(),
    st.lists(st.one_of(st.text(), st.none(), st.integers(), st.binary())),
    st.dictionaries(st.text(), st.text()),
))
def test_channel_vars_never_raises(raw):
    result = channel_vars({"ChanVariable": raw})
    assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in result.items())


@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True), st.text(alphabet=st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\r\n")), min_size=1, max_size=5))
def test_channel_vars_round_trips_what_asterisk_would_send(variables):
    entries = [f"{k}={v}" for k, v in variables.items()]
    assert channel_vars({"ChanVariable": entries if len(entries) > 1 else entries[0]}) == variables


@pytest.mark.parametrize(("headers", "expected"), [
    ({"MemberName": "Agent Li", "Interface": "PJSIP/agent1"}, "Agent Li"),
    ({"MemberName": "PJSIP/agent1", "Interface": "PJSIP/agent1"}, "agent1"),  # no membername in queues.conf
    ({"Interface": "PJSIP/agent2"}, "agent2"),
    ({"Interface": "Local/agent3@agents/n"}, "agent3"),
    ({"MemberName": "", "Interface": "PJSIP/agent4"}, "agent4"),
    ({}, None),
])
def test_agent_name(headers, expected):
    assert agent_name(headers) == expected


# ---- QueueEventRecorder -----------------------------------------------------------------------------------

async def test_queued_then_answered_then_completed(recorder, store):
    await recorder.handle(event("QueueCallerJoin", Queue="hotline", ChanVariable=CALLER_VARS,
                                CallerIDNum="13800138000"))
    await recorder.handle(event("AgentConnect", Queue="hotline", MemberName="PJSIP/agent1",
                                Interface="PJSIP/agent1", ChanVariable=CALLER_VARS,
                                DestChanVariable=CALLER_VARS, HoldTime="12", RingTime="3"))
    await recorder.handle(event("AgentComplete", Queue="hotline", ChanVariable=CALLER_VARS, TalkTime="95"))
    assert store.updates == [
        ("1764222222.12", {"outcome": "queued", "queued_at": NOW}),
        ("1764222222.12", {"outcome": "answered", "answered_at": NOW, "agent": "agent1"}),
        ("1764222222.12", {"ended_at": NOW}),
    ]
    assert recorder.processed == 3


async def test_caller_hanging_up_in_the_queue_is_abandoned(recorder, store):
    await recorder.handle(event("QueueCallerAbandon", Queue="hotline",
                                ChanVariable="HOTLINE_CALL_ID=1764222222.13", HoldTime="40"))
    assert store.updates == [("1764222222.13", {"outcome": "abandoned", "ended_at": NOW})]


async def test_agent_event_falls_back_to_the_agent_leg_call_id(recorder, store):
    await recorder.handle(event("AgentConnect", Interface="PJSIP/agent2",
                                DestChanVariable=["HOTLINE_CALL_ID=1764222222.14", "HOTLINE_TICKET_ID="]))
    assert store.updates == [("1764222222.14", {"outcome": "answered", "answered_at": NOW, "agent": "agent2"})]


async def test_answer_without_member_headers_leaves_agent_unset(recorder, store):
    await recorder.handle(event("AgentConnect", ChanVariable=CALLER_VARS))
    assert store.updates == [("1764222222.12", {"outcome": "answered", "answered_at": NOW})]


@pytest.mark.parametrize("chan_variable", [None, "HOTLINE_TICKET_ID=", "HOTLINE_CALL_ID=", ["HOTLINE_CALL_ID= "],
                                           "HOTLINE_CALL_ID=1764222222.1\x00", "HOTLINE_CALL_ID=1764 222222.1",
                                           "HOTLINE_CALL_ID=\u202e1764222222.1", "HOTLINE_CALL_ID=" + "9" * 151])
async def test_events_without_our_call_id_are_ignored(recorder, store, caplog, chan_variable):
    headers = {"Queue": "hotline", "CallerIDNum": "13800138000"}
    if chan_variable is not None:
        headers["ChanVariable"] = chan_variable
    with caplog.at_level(logging.DEBUG, logger="ami_handlers.queue_events"):
        await recorder.handle(event("QueueCallerJoin", **headers))
    assert store.updates == []
    assert recorder.processed == 1
    assert "queue_event_without_call_id" in caplog.text
    assert "13800138000" not in caplog.text


async def test_other_events_are_not_recorded(recorder, store):
    await recorder.handle(event("QueueCallerLeave", ChanVariable=CALLER_VARS))
    assert store.updates == []


async def test_store_failure_is_logged_and_does_not_propagate(caplog):
    recorder = QueueEventRecorder(FakeStore(fail=True), clock=lambda: NOW)
    with caplog.at_level(logging.ERROR, logger="ami_handlers.queue_events"):
        await recorder.handle(event("QueueCallerJoin", ChanVariable=CALLER_VARS))
    assert "event=call_update_failed call_id=1764222222.12" in caplog.text
    assert recorder.processed == 1


async def test_wait_processed(recorder):
    assert await recorder.wait_processed(1, 0.05) is False
    await recorder.handle(event("QueueCallerJoin", ChanVariable=CALLER_VARS))
    assert await recorder.wait_processed(1, 0.05) is True


def test_attach_registers_the_four_queue_events_on_one_callback(recorder):
    class Source:
        def __init__(self):
            self.registered = []

        def on_event(self, name, callback):
            self.registered.append((name, callback))

    source = Source()
    recorder.attach(source)
    assert [name for name, _ in source.registered] == list(QUEUE_EVENTS)
    assert len({callback for _, callback in source.registered}) == 1


