"""Queue and agent AMI events -> updates of our call records.

The gateway sets the inherited channel variables ``__HOTLINE_CALL_ID`` and ``__HOTLINE_REQUEST_TYPE`` on the
caller channel before ``Queue()``; ``manager.conf`` ``channelvars = HOTLINE_CALL_ID,HOTLINE_REQUEST_TYPE,
HOTLINE_TICKET_ID`` makes Asterisk add them to every event as ``ChanVariable: NAME=value`` (caller leg) and
``DestChanVariable: NAME=value`` (agent leg, which inherited them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from gateway.contract import CALL_ID_VAR, is_call_id
from gateway.basics.waiting import wait_for_condition
from gateway.basics.write_health import log_write_failure

log = logging.getLogger(__name__)

QUEUE_EVENTS = ("QueueCallerJoin", "AgentConnect", "QueueCallerAbandon", "AgentComplete")


class CallStore(Protocol):
    async def update_call(self, call_id: str, **fields: Any) -> None: ...


class QueueObserver(Protocol):
    """Told of every queue event of one of our calls, before it is recorded (the metrics: gateway.metrics.calls)."""

    def queue_event(self, name: str, call_id: str, event: Mapping[str, Any]) -> None: ...


class EventSource(Protocol):
    def on_event(self, name: str, callback: Callable[[Mapping[str, Any]], Any]) -> None: ...


def channel_vars(event: Mapping[str, Any], key: str = "ChanVariable") -> dict[str, str]:
    """The ``NAME=value`` entries of ``event[key]`` as a dict.

    panoramisk gives one entry as a string and several as a list; an entry without ``=`` or with an empty
    name is skipped, an empty value is kept as "". Never raises on odd input: events come from outside.
    """
    try:
        raw = event.get(key)
    except Exception:
        return {}
    if isinstance(raw, str):
        entries: list[Any] = [raw]
    elif isinstance(raw, (list, tuple)):
        entries = list(raw)
    else:
        return {}
    result: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, str):
            continue
        name, found, value = entry.partition("=")
        name = name.strip()
        if found and name:
            result[name] = value
    return result


def call_id_of(event: Mapping[str, Any]) -> str | None:
    """Our call id from the caller leg, else from the agent leg (which inherited it); None if unset or not one
    of ours (`gateway.contract.is_call_id`)."""
    for key in ("ChanVariable", "DestChanVariable"):
        call_id = channel_vars(event, key).get(CALL_ID_VAR, "").strip()
        if call_id:
            return call_id if is_call_id(call_id) else None
    return None


def agent_name(event: Mapping[str, Any]) -> str | None:
    """``MemberName`` or else ``Interface``, without the channel technology: "PJSIP/agent1" -> "agent1".

    Asterisk sets MemberName to the interface when queues.conf gives no name, hence the same stripping.
    A Local member ("Local/agent1@agents/n") gives its extension.
    """
    for key in ("MemberName", "Interface"):
        value = event.get(key)
        if isinstance(value, str) and value.strip():
            value = value.strip()
            _, slash, rest = value.partition("/")
            if slash and rest:
                value = rest.partition("@")[0] or rest
            return value
    return None


def call_update(event: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The fields one queue event sets on its call record, or None for events we do not record."""
    name = str(event.get("Event", ""))
    if name == "QueueCallerJoin":
        return {"outcome": "queued", "queued_at": now}
    if name == "AgentConnect":
        fields: dict[str, Any] = {"outcome": "answered", "answered_at": now}
        if agent := agent_name(event):  # unknown agent: leave the column alone rather than write NULL
            fields["agent"] = agent
        return fields
    if name == "QueueCallerAbandon":
        return {"outcome": "abandoned", "ended_at": now}
    if name == "AgentComplete":
        return {"ended_at": now}
    return None


class QueueEventRecorder:
    """Writes queue progress (queued, answered by whom, abandoned, ended) to the call store."""

    def __init__(self, store: CallStore, *, clock: Callable[[], datetime],
                 observer: QueueObserver | None = None) -> None:
        self._store = store
        self._clock = clock
        self._observer = observer
        self.processed = 0
        self._progress = asyncio.Condition()

    def attach(self, ami: EventSource) -> None:
        # One callback for all four names: AMIConnection then delivers them to it in arrival order, so a
        # call's "queued" update cannot overtake its "answered" one.
        for name in QUEUE_EVENTS:
            ami.on_event(name, self.handle)

    async def handle(self, event: Mapping[str, Any]) -> None:
        try:
            await self._record(event)
        finally:
            async with self._progress:
                self.processed += 1
                self._progress.notify_all()

    async def wait_processed(self, count: int, timeout: float) -> bool:
        """True once ``count`` events have been handled (recorded, ignored or failed), False on timeout."""
        return await wait_for_condition(self._progress, lambda: self.processed >= count, timeout)

    async def _record(self, event: Mapping[str, Any]) -> None:
        name = event.get("Event")
        fields = call_update(event, self._clock())
        if fields is None:
            return
        call_id = call_id_of(event)
        if call_id is None:
            # Calls that entered the queue while the gateway was down carry no call id: nothing to update.
            log.debug("event=queue_event_without_call_id ami_event=%s queue=%s", name, event.get("Queue"))
            return
        if self._observer is not None:
            try:
                self._observer.queue_event(str(name), call_id, event)
            except Exception:  # noqa: BLE001 - a figure lost, not the call record
                log.exception("event=queue_observer_failed call_id=%s ami_event=%s", call_id, name)
        try:
            await self._store.update_call(call_id, **fields)
        except Exception as exc:
            log_write_failure(log, exc, "call_update_failed", call_id=call_id, ami_event=name)
            return
        log.info("event=call_updated call_id=%s ami_event=%s outcome=%s", call_id, name,
                 fields.get("outcome", "-"))
