"""Every metric the gateway exposes, defined once, on a registry of the service's own (never the process-global
one: two services in one process, as in the tests, keep apart). docs/metrics.md lists them.

Some figures are counted as things happen, through the hooks the other modules offer (an observer or a callback;
the decision code knows nothing of Prometheus); the others are read from the running parts when the page is asked
for (``watch``, ``refresh``): AMI state, the speech pool, the event loop's recent lag, the outbox depth.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.metrics.calls import OUTCOMES, CallTracker
from gateway.metrics.screenpops import ScreenPopLatency

__all__ = ["CALLS_IN_PROGRESS", "CALLS", "REFUSED", "OUTBOX_DEPTH", "AMI_CONNECTED", "LOOP_LAG_RECENT",
           "HotlineMetrics"]

log = logging.getLogger(__name__)

# The names ``hotline stack status`` reads back (gateway.metrics.headline).
CALLS_IN_PROGRESS = "hotline_calls_in_progress"
CALLS = "hotline_calls"
REFUSED = "hotline_refused_calls"
OUTBOX_DEPTH = "hotline_outbox_depth"
AMI_CONNECTED = "hotline_ami_connected"
LOOP_LAG_RECENT = "hotline_event_loop_lag_recent_max_seconds"

# 15 s is the timely answer of GB/T 33358 (office.timely_answer_s); the rest spread a busy hotline's waits.
QUEUE_WAIT_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
SCREENPOP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
# vosk decodes at RTF 0.2-0.25 per stream on the 2-core rig; at 1 it no longer keeps up with the caller
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 4)
# a wake-up later than 0.1 s is a stall (gateway.basics.loop_lag.STALL_S)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# A scrape does not wait longer than this for the store's outbox count (a database away: the depth is NaN).
REFRESH_TIMEOUT_S = 1.0


class AMIEvents(Protocol):
    def on_event(self, name: str, callback: Callable[[Any], Any]) -> None: ...


class AMIState(AMIEvents, Protocol):
    @property
    def ready(self) -> bool: ...
    reconnects: int


class LoopLagState(Protocol):
    def status(self) -> dict[str, float | int]: ...


class OutboxCount(Protocol):
    async def outbox_depth(self) -> int: ...


class OutboxSpill(Protocol):
    @property
    def spilled(self) -> int: ...


class SpeechState(Protocol):
    """The speech parts of the service (``gateway.service.SpeechParts``)."""
    capture: Any        # .open_sessions
    recogniser: Any     # .open_streams, .max_streams, .waiting_recordings, .on_finished; None without a model


class _ReadCounter(Collector):
    """A counter the running part keeps itself (an int attribute), read when the page is asked for."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.read: Callable[[], float] = lambda: 0

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation)
        family.add_metric([], float(self.read()))
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation)


class HotlineMetrics:
    """The registry and its metrics; ``calls`` and ``screenpops`` are the observers handed to the other parts."""

    def __init__(self) -> None:
        # no "<name>_created" series beside each counter and histogram: a scraper knows when it first saw them, and
        # they would double the page (a process-wide switch of prometheus_client; the gateway is its only user)
        disable_created_metrics()
        self.registry = r = CollectorRegistry()
        self.calls_in_progress = Gauge(
            CALLS_IN_PROGRESS, "Calls this gateway took in (FastAGI entry or a queue event carrying their call id) "
            "whose end it has not seen yet: not refused (art. 9), abandoned, ended after the agent (AgentComplete) or "
            "answered by a linked centre; a call with no event for 4 hours is no longer counted", registry=r)
        self.calls = Counter(
            CALLS, "Calls by what happened to them, one count per call and outcome reached (a call queued and then "
            "answered counts under both): blocked (refused under art. 9), queued (joined the agent queue), answered "
            "(an agent answered), abandoned (the caller hung up in the menu or in the queue), failed (a gateway fault "
            "sent the caller to the queue), handed_off (a linked centre answered, art. 14)", ["outcome"], registry=r)
        self.refused = Counter(
            REFUSED, "Calls refused because the caller's number is restricted (Zhanjiang 12345 rules, art. 9), "
            "counted when the refusal is decided, before the announcement of why and until when; a refused caller "
            "who then keys the emergency key still counts", registry=r)
        self.queue_wait = Histogram(
            "hotline_queue_wait_seconds", "Seconds from a caller's first QueueCallerJoin to the AgentConnect of the "
            "agent who answered (Asterisk's HoldTime when the join was not seen), once per answered call",
            buckets=QUEUE_WAIT_BUCKETS, registry=r)
        self.screenpop_latency = Histogram(
            "hotline_screenpop_latency_seconds", "Seconds from the AgentConnect event reaching the gateway to the "
            "broker's PUBACK of that call's first screen-pop, for pops this gateway's publisher sent",
            buckets=SCREENPOP_BUCKETS, registry=r)
        self.outbox_depth = Gauge(
            OUTBOX_DEPTH, "Messages waiting for the MQTT broker: the store's outbox rows (shared by every gateway on "
            "one database) plus those held in memory while the state disk refuses writes; NaN when the store could "
            "not be read", registry=r)
        self.ami_connected = Gauge(AMI_CONNECTED, "1 while the AMI connection is logged in to Asterisk, else 0",
                                   registry=r)
        self.ami_reconnects = _ReadCounter(
            "hotline_ami_reconnects", "AMI logins after the first since the gateway started (each one a lost "
            "and re-established connection)")
        r.register(self.ami_reconnects)
        self.capture_sessions = Gauge(
            "hotline_speech_capture_sessions", "Speech captures registered now: queued callers being spied on or "
            "about to be, or recorded by Asterisk instead", registry=r)
        self.speech_streams = Gauge(
            "hotline_speech_streams_in_use", "vosk recognition streams open now (each a caller being recognised)",
            registry=r)
        self.speech_streams_max = Gauge(
            "hotline_speech_streams_max", "Recognition streams the pool allows at once ([speech] streams)",
            registry=r)
        self.speech_waiting = Gauge(
            "hotline_speech_waiting_recordings", "Recorded captures waiting for a free recognition stream",
            registry=r)
        self.speech_rtf = Histogram(
            "hotline_speech_real_time_factor", "Per finished recognition: decoder processing time divided by the "
            "seconds of audio it decoded (below 1: faster than the caller speaks)", buckets=RTF_BUCKETS, registry=r)
        self.loop_lag = Histogram(
            "hotline_event_loop_lag_seconds", "How late each of the loop-lag monitor's wake-ups (every 50 ms) came: "
            "time the event loop could not run what was due", buckets=LOOP_LAG_BUCKETS, registry=r)
        self.loop_lag_recent = Gauge(
            LOOP_LAG_RECENT, "The largest event-loop lag of the last 60 seconds, in seconds", registry=r)
        self.loop_stalls = _ReadCounter(
            "hotline_event_loop_stalls", "Event-loop wake-ups more than 0.1 s late since the gateway started")
        r.register(self.loop_stalls)
        self.handoffs = Counter(
            "hotline_emergency_handoffs", "Emergency hand-offs to linked centres (art. 14) by centre and result, from "
            "the dialplan's hand-off events: one count per centre rung (answered, no_answer, busy, failed, "
            "caller_hangup), fallback_queue when no centre answered and the caller went to an agent, cancelled when "
            "the caller declined (both under the hand-off's first centre)", ["centre", "result"], registry=r)
        for gauge in (self.calls_in_progress, self.ami_connected, self.capture_sessions, self.speech_streams,
                      self.speech_streams_max, self.speech_waiting, self.loop_lag_recent):
            gauge.set(0)
        for outcome in OUTCOMES:      # every outcome on the page from the start, at 0
            self.calls.labels(outcome=outcome)
        self.tracker = CallTracker(calls=self.calls, refused=self.refused, queue_wait=self.queue_wait,
                                   handoffs=self.handoffs)
        self.calls_in_progress.set_function(lambda: self.tracker.in_progress)
        self.screenpops = ScreenPopLatency(self.screenpop_latency)
        self._outbox_depth: Callable[[], Awaitable[int]] | None = None

    # -- hooks ----------------------------------------------------------------------------------------------------

    def observe_loop_lag(self, lag_s: float) -> None:
        """``LoopLagMonitor(on_lag=...)``: one wake-up's lateness."""
        self.loop_lag.observe(max(0.0, lag_s))

    def observe_recognition(self, audio_s: float, decode_s: float) -> None:
        """``Recogniser.on_finished``: one finished stream's audio and decoding seconds."""
        if audio_s > 0:
            self.speech_rtf.observe(max(0.0, decode_s) / audio_s)

    # -- figures read from the running parts ---------------------------------------------------------------------

    def watch(self, *, ami: AMIState | None = None, loop_lag: LoopLagState | None = None,
              store: OutboxCount | None = None, spill: OutboxSpill | None = None,
              speech: SpeechState | None = None) -> None:
        """Read these parts when the page is asked for (a part not given reads as 0), and time the screen-pops
        from the AMI connection's AgentConnect events."""
        if ami is not None:
            self.ami_connected.set_function(lambda: 1 if ami.ready else 0)
            self.ami_reconnects.read = lambda: ami.reconnects
            ami.on_event("AgentConnect", self.screenpops.agent_connected)
        if loop_lag is not None:
            self.loop_lag_recent.set_function(lambda: float(loop_lag.status()["loop_lag_recent_ms"]) / 1000)
            self.loop_stalls.read = lambda: loop_lag.status()["loop_stalls"]
        if store is not None:
            async def outbox_depth() -> int:
                return await store.outbox_depth() + (spill.spilled if spill is not None else 0)
            self._outbox_depth = outbox_depth
        if speech is not None:
            self.capture_sessions.set_function(lambda: speech.capture.open_sessions)
            if (recogniser := speech.recogniser) is not None:
                self.speech_streams.set_function(lambda: recogniser.open_streams)
                self.speech_streams_max.set(recogniser.max_streams)
                self.speech_waiting.set_function(lambda: recogniser.waiting_recordings)
                recogniser.on_finished = self.observe_recognition

    async def refresh(self) -> None:
        """Before a scrape: the figures that need a store read (the outbox depth, one COUNT)."""
        if self._outbox_depth is None:
            return
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_S):
                depth = await self._outbox_depth()
        except Exception as exc:  # noqa: BLE001 - the page still serves the other figures
            log.debug("event=metrics_outbox_depth_unknown error=%s", type(exc).__name__)
            self.outbox_depth.set(float("nan"))
            return
        self.outbox_depth.set(depth)
