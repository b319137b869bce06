"""The metrics (gateway/metrics/): the real handlers feed them (the call flow, the queue-event recorder, the screen-pop
and its outbox, the hand-off log, the loop-lag monitor), and the page's text, parsed back with prometheus_client's
own parser, holds the values and bucket counts. Serving the page over HTTP is tests/integration/test_metrics_page.py.
"""
from __future__ import annotations

import asyncio
import math

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ami_handlers.queue_events import QueueEventRecorder
from ami_handlers.screenpop import ScreenPopper
from gateway.basics.loop_lag import LoopLagMonitor
from gateway.callflow import CallFlow, CallFlowSettings
from gateway.config import load_config
from gateway.metrics.headline import headline
from gateway.metrics.registry import HotlineMetrics
from gateway.sandbox.cluster import node_overrides
from gateway.store.database import Store
from gateway.store.outbox import Outbox, SpillingOutboxStore
from ivr.speech.recogniser import Recogniser
from linkage.handoff import LinkageHandoff
from tests.unit.test_callflow import CALL_ID, MENU, MOBILE, NOW, SHANGHAI, FakeAGI, restrict
from tests.unit.test_queue_events import event


class Clock:
    """Monotonic seconds the test moves on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.db")
    yield s
    await s.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def metrics(clock):
    m = HotlineMetrics()
    m.tracker._clock = clock            # noqa: SLF001 - the waits in whole test seconds
    m.screenpops._clock = clock         # noqa: SLF001
    return m


def page(metrics: HotlineMetrics) -> dict[tuple[str, tuple], float]:
    """The page as a scraper reads it: {(sample name, labels): value}."""
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def bucket(samples, name, le: str) -> float:
    return value(samples, f"{name}_bucket", le=le)


def flow(store, metrics) -> CallFlow:
    settings = CallFlowSettings(prompt_dir="/p", deadline_s=5, tz=SHANGHAI)
    return CallFlow(store, MENU, settings, clock=lambda: NOW, calls=metrics.tracker)


def caller_vars(call_id: str = CALL_ID) -> list[str]:
    return [f"HOTLINE_CALL_ID={call_id}", "HOTLINE_REQUEST_TYPE=complaint"]


# -- calls ---------------------------------------------------------------------------------------------------------

async def test_a_call_answered_after_7_s_in_the_queue_counts_once_per_outcome_and_its_wait(store, metrics, clock):
    await flow(store, metrics).entry(FakeAGI(MOBILE, keys={"welcome": "3"}))
    assert value(page(metrics), "hotline_calls_in_progress") == 1
    recorder = QueueEventRecorder(store, clock=lambda: NOW, observer=metrics.tracker)
    await recorder.handle(event("QueueCallerJoin", Queue="hotline", ChanVariable=caller_vars()))
    clock.now += 7
    await recorder.handle(event("AgentConnect", MemberName="PJSIP/agent1", HoldTime="7",
                                ChanVariable=caller_vars()))
    # the same call round the queue again (Queue() returned, the dialplan re-entered it): no second count
    await recorder.handle(event("QueueCallerJoin", Queue="hotline", ChanVariable=caller_vars()))
    await recorder.handle(event("AgentConnect", MemberName="PJSIP/agent1", ChanVariable=caller_vars()))
    samples = page(metrics)
    assert value(samples, "hotline_calls_total", outcome="queued") == 1
    assert value(samples, "hotline_calls_total", outcome="answered") == 1
    assert value(samples, "hotline_calls_in_progress") == 1
    assert value(samples, "hotline_queue_wait_seconds_count") == 1
    assert value(samples, "hotline_queue_wait_seconds_sum") == 7
    assert bucket(samples, "hotline_queue_wait_seconds", "5.0") == 0
    assert bucket(samples, "hotline_queue_wait_seconds", "10.0") == 1
    assert bucket(samples, "hotline_queue_wait_seconds", "+Inf") == 1
    await recorder.handle(event("AgentComplete", MemberName="PJSIP/agent1", ChanVariable=caller_vars()))
    assert value(page(metrics), "hotline_calls_in_progress") == 0
    assert (await store.get_call(CALL_ID))["outcome"] == "answered"     # the record as before


async def test_a_restricted_caller_is_refused_and_blocked_and_no_longer_in_progress(store, metrics):
    await restrict(store)
    await flow(store, metrics).entry(FakeAGI(MOBILE))
    samples = page(metrics)
    assert value(samples, "hotline_refused_calls_total") == 1
    assert value(samples, "hotline_calls_total", outcome="blocked") == 1
    assert value(samples, "hotline_calls_in_progress") == 0
    assert headline(generate_latest(metrics.registry).decode())["refused"] == 1


async def test_a_refused_caller_keying_9_is_in_progress_again_once_queued(store, metrics):
    await restrict(store)
    await flow(store, metrics).entry(FakeAGI(MOBILE, keys={"restricted_intro": "9"}, waits=["1"]))
    recorder = QueueEventRecorder(store, clock=lambda: NOW, observer=metrics.tracker)
    await recorder.handle(event("QueueCallerJoin", Queue="hotline", ChanVariable=caller_vars()))
    samples = page(metrics)
    assert value(samples, "hotline_refused_calls_total") == 1
    assert value(samples, "hotline_calls_total", outcome="queued") == 1
    assert value(samples, "hotline_calls_in_progress") == 1


async def test_hang_ups_in_the_menu_and_in_the_queue_are_abandoned_and_a_fault_is_failed(store, metrics):
    await flow(store, metrics).entry(FakeAGI(MOBILE, hang_up_at="welcome", uniqueid="c-menu"))
    await flow(store, metrics).entry(FakeAGI(MOBILE, missing_prompt="welcome", uniqueid="c-fault"))
    recorder = QueueEventRecorder(store, clock=lambda: NOW, observer=metrics.tracker)
    await recorder.handle(event("QueueCallerJoin", ChanVariable=caller_vars("c-queue")))
    await recorder.handle(event("QueueCallerAbandon", ChanVariable=caller_vars("c-queue")))
    samples = page(metrics)
    assert value(samples, "hotline_calls_total", outcome="abandoned") == 2
    assert value(samples, "hotline_calls_total", outcome="failed") == 1
    assert value(samples, "hotline_calls_total", outcome="answered") == 0
    assert value(samples, "hotline_calls_in_progress") == 1          # the failed one, queued by the dialplan


async def test_an_answer_whose_join_was_not_seen_waits_asterisks_hold_time(store, metrics):
    recorder = QueueEventRecorder(store, clock=lambda: NOW, observer=metrics.tracker)
    await recorder.handle(event("AgentConnect", MemberName="PJSIP/agent2", HoldTime="25",
                                ChanVariable=caller_vars("c-late")))
    await recorder.handle(event("AgentConnect", MemberName="PJSIP/agent2", HoldTime=["3", "4"],
                                ChanVariable=caller_vars("c-odd")))     # a repeated header: no wait to observe
    samples = page(metrics)
    assert value(samples, "hotline_calls_total", outcome="answered") == 2
    assert value(samples, "hotline_queue_wait_seconds_count") == 1
    assert bucket(samples, "hotline_queue_wait_seconds", "20.0") == 0
    assert bucket(samples, "hotline_queue_wait_seconds", "30.0") == 1


async def test_queue_events_of_calls_not_ours_are_not_counted(store, metrics):
    recorder = QueueEventRecorder(store, clock=lambda: NOW, observer=metrics.tracker)
    await recorder.handle(event("QueueCallerJoin", Queue="hotline"))
    assert value(page(metrics), "hotline_calls_total", outcome="queued") == 0


def test_a_call_whose_end_never_comes_is_forgotten_after_four_hours(metrics, clock):
    metrics.tracker.entered("c-1")
    clock.now += 4 * 3600 - 1
    assert metrics.tracker.in_progress == 1
    clock.now += 2
    assert metrics.tracker.in_progress == 0


# -- screen-pop latency ------------------------------------------------------------------------------------------

async def test_screenpop_latency_runs_from_agent_connect_to_the_first_pop_acknowledged(store, metrics, clock):
    await store.open_call(call_id=CALL_ID, number="+8613800138000", channel="PJSIP/x", started_at=NOW)
    outbox_store = SpillingOutboxStore(store)
    popper = ScreenPopper(store, Outbox(outbox_store, clock=lambda: NOW), clock=lambda: NOW)
    connect = event("AgentConnect", MemberName="PJSIP/agent1", ChanVariable=caller_vars())
    metrics.screenpops.agent_connected(connect)
    await popper.handle(connect)
    clock.now += 0.3
    [row] = await outbox_store.outbox_pending()
    metrics.screenpops.published({**row, "topic": "hotline/linkage/119"})   # a centre's case data: not a pop
    metrics.screenpops.published(row)
    metrics.screenpops.published(row)                                     # a second copy: not counted again
    samples = page(metrics)
    assert value(samples, "hotline_screenpop_latency_seconds_count") == 1
    assert value(samples, "hotline_screenpop_latency_seconds_sum") == pytest.approx(0.3)
    assert bucket(samples, "hotline_screenpop_latency_seconds", "0.25") == 0
    assert bucket(samples, "hotline_screenpop_latency_seconds", "0.5") == 1
    assert metrics.screenpops.waiting == 0


def test_a_pop_nobody_waits_for_and_odd_rows_are_ignored(metrics):
    for row in ({}, {"payload": None}, {"payload": {"call_id": 5}}, {"topic": "x", "payload": {"call_id": "c"}},
                {"topic": "hotline/agents/agent1/screenpop", "payload": {"call_id": "c", "agent": "../x"}},
                {"topic": "hotline/agents/agent1/screenpop", "payload": {"call_id": "c", "agent": "agent1"}}):
        metrics.screenpops.published(row)
    metrics.screenpops.agent_connected(event("AgentConnect"))         # no call id
    assert value(page(metrics), "hotline_screenpop_latency_seconds_count") == 0


# -- emergency hand-offs -----------------------------------------------------------------------------------------

async def test_handoffs_count_by_the_centre_rung_and_its_result(store, metrics):
    await store.open_call(call_id=CALL_ID, number="+8613800138000", channel="PJSIP/x", started_at=NOW)
    metrics.tracker.entered(CALL_ID)
    handoffs = LinkageHandoff(store, lambda: None, pusher=None, clock=lambda: NOW, observer=metrics.tracker)
    first = await store.add_handoff(call_id=CALL_ID, centre="119", trigger="menu", mode="blind", requested_at=NOW)

    def stage(handoff: int, name: str, target: str = "") -> dict:
        return {"Event": "UserEvent", "UserEvent": "HotlineLinkage", "Call": CALL_ID, "Handoff": str(handoff),
                "Stage": name, **({"Target": target} if target else {})}

    for item in (stage(first, "ring", "PJSIP/centre-119"), stage(first, "NOANSWER", "PJSIP/centre-119"),
                 stage(first, "ring", "PJSIP/centre-110"), stage(first, "answered"),
                 stage(first, "ANSWER", "PJSIP/centre-110")):
        await handoffs.on_event(item)
    second = await store.add_handoff(call_id=CALL_ID, centre="water", trigger="speech", mode="blind",
                                     requested_at=NOW)
    for item in (stage(second, "ring", "PJSIP/centre-water"), stage(second, "BUSY", "PJSIP/centre-water"),
                 stage(second, "fallback")):
        await handoffs.on_event(item)
    samples = page(metrics)
    name = "hotline_emergency_handoffs_total"
    assert value(samples, name, centre="119", result="no_answer") == 1
    assert value(samples, name, centre="110", result="answered") == 1
    assert value(samples, name, centre="water", result="busy") == 1
    assert value(samples, name, centre="water", result="fallback_queue") == 1
    assert sum(v for (n, _), v in samples.items() if n == name) == 4
    assert value(samples, "hotline_calls_total", outcome="handed_off") == 1
    assert value(samples, "hotline_calls_in_progress") == 0
    assert (await store.get_handoff(first))["result"] == "answered"     # the log as before


# -- figures read at the scrape ----------------------------------------------------------------------------------

class FakeAMI:
    def __init__(self) -> None:
        self.ready, self.reconnects, self.callbacks = True, 3, []

    def on_event(self, name, callback) -> None:
        self.callbacks.append((name, callback))


class Speech:
    def __init__(self, recogniser) -> None:
        self.capture = type("Capture", (), {"open_sessions": 2})()
        self.recogniser = recogniser


async def test_the_scrape_reads_the_outbox_ami_speech_pool_and_loop_lag(store, metrics):
    for n in range(2):
        await store.outbox_add("hotline/agents/agent1/screenpop", {"n": n}, message_id=f"m{n}", at=NOW)
    ami = FakeAMI()
    recogniser = Recogniser("/nonexistent", max_streams=4)
    lag = LoopLagMonitor()
    lag.record.add(lag._clock(), 0.25)                                  # noqa: SLF001 - one stall just now
    metrics.watch(ami=ami, loop_lag=lag, store=store, spill=SpillingOutboxStore(store), speech=Speech(recogniser))
    recogniser.on_finished(10.0, 2.5)                                  # as RecognitionStream.finish reports
    await metrics.refresh()
    samples = page(metrics)
    assert value(samples, "hotline_outbox_depth") == 2
    assert (value(samples, "hotline_ami_connected"), value(samples, "hotline_ami_reconnects_total")) == (1, 3)
    assert ami.callbacks == [("AgentConnect", metrics.screenpops.agent_connected)]
    assert value(samples, "hotline_speech_capture_sessions") == 2
    assert (value(samples, "hotline_speech_streams_in_use"), value(samples, "hotline_speech_streams_max")) == (0, 4)
    assert bucket(samples, "hotline_speech_real_time_factor", "0.2") == 0
    assert bucket(samples, "hotline_speech_real_time_factor", "0.3") == 1
    assert value(samples, "hotline_event_loop_lag_recent_max_seconds") == 0.25
    assert value(samples, "hotline_event_loop_stalls_total") == 1
    ami.ready = False
    figures = headline(generate_latest(metrics.registry).decode())
    assert figures == {"calls_in_progress": 0, "answered": 0, "abandoned": 0, "refused": 0, "outbox_depth": 2,
                       "ami_connected": False, "loop_lag_ms": 250.0}
    recogniser.close()


async def test_an_unreadable_store_makes_the_outbox_depth_unknown(metrics):
    class Away:
        async def outbox_depth(self) -> int:
            raise OSError("connection refused")

    metrics.watch(store=Away())
    await metrics.refresh()
    assert math.isnan(value(page(metrics), "hotline_outbox_depth"))
    assert headline(generate_latest(metrics.registry).decode())["outbox_depth"] is None


async def test_the_loop_lag_monitor_feeds_every_wake_up_into_the_histogram(metrics):
    monitor = LoopLagMonitor(interval_s=0.01, on_lag=metrics.observe_loop_lag)
    await monitor.start()
    try:
        await asyncio.sleep(0.2)
    finally:
        await monitor.close()
    samples = page(metrics)
    assert value(samples, "hotline_event_loop_lag_seconds_count") == monitor.record.samples >= 5
    assert bucket(samples, "hotline_event_loop_lag_seconds", "+Inf") == monitor.record.samples


def test_every_metric_is_named_hotline_and_says_what_it_counts(metrics):
    families = list(text_string_to_metric_families(generate_latest(metrics.registry).decode()))
    assert len(families) == 17
    for family in families:
        assert family.name.startswith("hotline_"), family.name
        assert len(family.documentation) > 40, family.name
    assert not [f for f in families if f.name.endswith("_created")]


def test_a_page_that_is_not_prometheus_text_is_refused():
    with pytest.raises(ValueError):
        headline("<html>not metrics</html>\n{")


# -- the per-node port ---------------------------------------------------------------------------------------------

def test_each_node_shifts_the_metrics_port_and_an_off_page_stays_off(tmp_path):
    config = load_config(None)
    assert node_overrides(config, 2, 2, "postgresql://x/y")["metrics"] == {"port": 9208}
    assert node_overrides(config, 1, 2, "postgresql://x/y")["metrics"] == {"port": 9108}
    off = tmp_path / "off.toml"
    off.write_text("[metrics]\nport = 0\n")
    assert node_overrides(load_config(off), 3, 3, "postgresql://x/y")["metrics"] == {"port": 0}

