"""The calls as the metrics follow them: which are in progress, what each reached (counted once per call and
outcome), refusals (art. 9), the queue wait, and the emergency hand-offs (art. 14).

``CallTracker`` is the observer the call flow (``entered``, ``outcome``), the queue-event recorder (``queue_event``)
and the linkage (``handoff``) are given. It keeps a small record per call in memory, so a repeated event (a caller
who goes round the queue again) is not counted twice; a call with no event for ``stale_s`` is forgotten (its end was
never seen: the FastAGI entry ran on this gateway but the call was queued on another node's Asterisk, or Asterisk
restarted), and at most ``remembered`` calls are kept.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram

__all__ = ["ENDING_OUTCOMES", "OUTCOMES", "CallTracker"]

OUTCOMES = ("blocked", "queued", "answered", "abandoned", "failed", "handed_off")
# After these the hotline's part of the call is over (a refused caller who keys 9 comes back with "queued")
ENDING_OUTCOMES = frozenset({"blocked", "abandoned", "handed_off"})
STALE_S = 4 * 3600.0
REMEMBERED = 20_000


@dataclass
class _Call:
    seen: float
    active: bool = True
    outcomes: set[str] = field(default_factory=set)
    joined: float | None = None     # monotonic time of the first QueueCallerJoin


class CallTracker:
    """Counts calls into the metrics it is given; every method is cheap and never raises on odd input."""

    def __init__(self, *, calls: Counter, refused: Counter, queue_wait: Histogram, handoffs: Counter,
                 clock: Callable[[], float] = time.monotonic, stale_s: float = STALE_S,
                 remembered: int = REMEMBERED) -> None:
        self._counter = calls
        self._refused = refused
        self._queue_wait = queue_wait
        self._handoffs = handoffs
        self._clock = clock
        self._stale_s = stale_s
        self._remembered = remembered
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    @property
    def in_progress(self) -> int:
        self._forget_stale(self._clock())
        return sum(1 for call in self._calls.values() if call.active)

    # -- the call flow ----------------------------------------------------------------------------------------------

    def entered(self, call_id: str) -> None:
        """The FastAGI entry took the call in."""
        self._touch(call_id).active = True

    def outcome(self, call_id: str, outcome: str) -> bool:
        """The call reached ``outcome``; True when this is the first time for this call (it was counted). Outcomes
        the metrics do not count ("ivr") only keep the call in progress."""
        if not isinstance(call_id, str) or not call_id:
            return False
        call = self._touch(call_id)
        call.active = outcome not in ENDING_OUTCOMES
        if outcome not in OUTCOMES or outcome in call.outcomes:
            return False
        call.outcomes.add(outcome)
        self._counter.labels(outcome=outcome).inc()
        if outcome == "blocked":
            self._refused.inc()
        return True

    def ended(self, call_id: str) -> None:
        if (call := self._calls.get(call_id)) is not None:
            call.active = False
            call.seen = self._clock()

    # -- AMI queue events (ami_handlers.queue_events.QueueObserver) ----------------------------------------------------

    def queue_event(self, name: str, call_id: str, event: Mapping[str, Any]) -> None:
        if name == "QueueCallerJoin":
            call = self._touch(call_id)
            if call.joined is None:
                call.joined = call.seen
            self.outcome(call_id, "queued")
        elif name == "AgentConnect":
            joined = self._touch(call_id).joined
            if self.outcome(call_id, "answered"):
                wait = self._clock() - joined if joined is not None else _hold_time(event)
                if wait is not None:
                    self._queue_wait.observe(wait)
        elif name == "QueueCallerAbandon":
            self.outcome(call_id, "abandoned")
        elif name == "AgentComplete":
            self.ended(call_id)

    # -- linkage (linkage.handoff.HandoffObserver) ------------------------------------------------------------------

    def handoff(self, call_id: str | None, centre: str | None, result: str) -> None:
        """One result of a hand-off to a centre; a centre that answered takes the call off the hotline."""
        self._handoffs.labels(centre=centre or "unknown", result=result).inc()
        if result == "answered" and call_id:
            self.outcome(call_id, "handed_off")

    # -- bookkeeping ----------------------------------------------------------------------------------------------

    def _touch(self, call_id: str) -> _Call:
        now = self._clock()
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call(seen=now)
        else:
            call.seen = now
            self._calls.move_to_end(call_id)
        self._forget_stale(now)
        return call

    def _forget_stale(self, now: float) -> None:
        while self._calls:
            oldest = next(iter(self._calls.values()))
            if oldest.seen >= now - self._stale_s and len(self._calls) <= self._remembered:
                return
            self._calls.popitem(last=False)


def _hold_time(event: Mapping[str, Any]) -> float | None:
    """Asterisk's ``HoldTime`` (whole seconds in the queue) of an AgentConnect, or None if missing or odd."""
    try:
        value = float(event.get("HoldTime"))
    except (TypeError, ValueError):     # absent, or a repeated header (a list)
        return None
    return value if 0 <= value < 86_400 else None
