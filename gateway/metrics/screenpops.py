"""Screen-pop latency: from the AgentConnect event reaching the gateway to the broker's PUBACK of that call's first
screen-pop (the moment the agent's console can have it).

``agent_connected`` is an AMI callback of its own (registered for AgentConnect, so it runs as the event is read,
not behind the store writes of the other handlers); ``published`` is the MQTT publisher's ``on_published``. Later
pops of the same call (the update once a recorded description is recognised) are not counted. With gateways
sharing one outbox, a pop another gateway's publisher sent is not seen here; its start is forgotten after
``keep_s``.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import Histogram

from ami_handlers.queue_events import call_id_of
from gateway.contract import screenpop_topic

__all__ = ["ScreenPopLatency"]

KEEP_S = 300.0
LIMIT = 10_000


class ScreenPopLatency:
    def __init__(self, histogram: Histogram, *, clock: Callable[[], float] = time.monotonic,
                 keep_s: float = KEEP_S, limit: int = LIMIT) -> None:
        self._histogram = histogram
        self._clock = clock
        self._keep_s = keep_s
        self._limit = limit
        self._started: OrderedDict[str, float] = OrderedDict()   # call id -> when its AgentConnect arrived

    @property
    def waiting(self) -> int:
        """Answered calls whose first pop has not been published (by this gateway) yet."""
        return len(self._started)

    def agent_connected(self, event: Mapping[str, Any]) -> None:
        now = self._clock()
        call_id = call_id_of(event)
        if call_id is None or call_id in self._started:
            return
        self._started[call_id] = now
        while self._started and (len(self._started) > self._limit
                                 or next(iter(self._started.values())) < now - self._keep_s):
            self._started.popitem(last=False)

    def published(self, row: Mapping[str, Any]) -> None:
        """An outbox row the broker acknowledged: a screen-pop's first copy ends its call's wait."""
        payload = row.get("payload")
        if not isinstance(payload, Mapping) or not isinstance(payload.get("call_id"), str):
            return
        try:
            if row.get("topic") != screenpop_topic(str(payload.get("agent"))):
                return      # a linked centre's case data, or another kind of message
        except ValueError:
            return
        started = self._started.pop(payload["call_id"], None)
        if started is not None:
            self._histogram.observe(max(0.0, self._clock() - started))
