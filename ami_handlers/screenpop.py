"""Screen-pop: when an agent is connected to a caller (AMI ``AgentConnect``), put the call's ticket draft, IVR
path, transcript and the caller's history in front of that agent.

The pop goes through the durable outbox (store first, then the MQTT publisher) to the agent's own topic
``hotline/agents/<agent>/screenpop``; the broker's ACL lets only that agent read it (art. 20), which is why the
full caller number may travel in it: the agent needs it to call back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any, Protocol

from ami_handlers.queue_events import EventSource, agent_name, call_id_of, channel_vars
from gateway.contract import CALL_ID_VAR, LINKAGE_FAILED_VAR, TICKET_ID_VAR, new_message_id, screenpop_topic
from gateway.basics.phone import mask, normalise
from gateway.basics.waiting import wait_for_condition
from gateway.basics.write_health import log_write_failure, unless_disk_fails

log = logging.getLogger(__name__)

SCREENPOP_EVENT = "AgentConnect"
LINKAGE_FAILED_REASON = "linkage_no_answer"
# The draft fields an agent sees and edits (gateway.store.rows.TICKET_FIELDS without the agent and transcript,
# which travel at the top level).
# Pre-filled fields scored below this are marked for the agent to check (config triage.low_confidence).
DEFAULT_LOW_CONFIDENCE = 0.6
SCREENPOP_TICKET_FIELDS = (
    "type", "category", "unit", "address", "callback_number", "emergency", "emergency_situation",
    "due", "summary", "status", "scores",
)


class ScreenPopStore(Protocol):
    async def get_call(self, call_id: str) -> dict | None: ...
    async def get_ticket_draft(self, ticket_id: str) -> dict | None: ...
    async def ticket_draft_for_call(self, call_id: str) -> dict | None: ...
    async def caller_history(self, number_e164: str | None, *, now: datetime, days: int = 90) -> dict: ...
    async def record_screenpop(self, *, message_id: str, agent: str, call_id: str, ticket_id: str | None,
                               reason: str | None, at: datetime) -> None: ...


class ScreenPopOutbox(Protocol):
    async def put(self, topic: str, payload: dict, *, message_id: str) -> int: ...


def build_screenpop(
    *,
    message_id: str,
    agent: str,
    call: Mapping[str, Any],
    ticket: Mapping[str, Any] | None,
    history: Mapping[str, Any],
    transcript: str | None,
    created_at: datetime,
    reason: str | None = None,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
) -> dict:
    """The screen-pop message: plain JSON-ready data (datetimes and dates as ISO text). `ticket.check` lists the
    pre-filled fields scored below `low_confidence`, for the console to mark."""
    ticket_part = None
    if ticket is not None:
        # On the wire the ticket's id is "id" (the agent console's contract); the store calls it ticket_id.
        # "public_id" is the console's name for the ticket (its API takes no other); "id", the ticket number
        # read to the caller and held by the HOTLINE_TICKET_ID channel variable, is shown.
        ticket_part = {"id": ticket.get("ticket_id"), "public_id": ticket.get("public_id"),
                       **{name: _json_value(ticket.get(name)) for name in SCREENPOP_TICKET_FIELDS}}
        scores = ticket.get("scores") or {}
        ticket_part["scores"] = scores
        ticket_part["check"] = sorted(name for name, s in scores.items() if ticket.get(name) is not None
                                      and isinstance(s, Mapping) and float(s.get("score", 0)) < low_confidence)
    return {
        "id": message_id,
        "agent": agent,
        "call_id": call.get("call_id"),
        "caller_number": call.get("number"),
        "request_type": call.get("request_type"),
        "emergency": call.get("emergency"),
        "priority": call.get("priority"),
        "started_at": _json_value(call.get("started_at")),
        "ivr_path": list(call.get("ivr_path") or []),
        "reason": reason,
        "ticket": ticket_part,
        "transcript": transcript,
        "history": _json_value(history),
        "created_at": _json_value(created_at),
    }


def event_var(event: Mapping[str, Any], name: str) -> str | None:
    """A channel variable from the caller leg, else from the agent leg; None if unset or empty on both."""
    for key in ("ChanVariable", "DestChanVariable"):
        value = channel_vars(event, key).get(name, "").strip()
        if value:
            return value
    return None


class ScreenPopper:
    def __init__(
        self, store: ScreenPopStore, outbox: ScreenPopOutbox, *, clock: Callable[[], datetime],
        history_days: int = 90, low_confidence: float = DEFAULT_LOW_CONFIDENCE,
    ) -> None:
        self._store = store
        self._low_confidence = low_confidence
        self._outbox = outbox
        self._clock = clock
        self._history_days = history_days
        self.popped = 0
        self.processed = 0
        self._progress = asyncio.Condition()

    def attach(self, ami: EventSource) -> None:
        ami.on_event(SCREENPOP_EVENT, self.handle)

    async def handle(self, event: Mapping[str, Any]) -> None:
        """Never raises: a failure here must not disturb the AMI reader or the other event handlers."""
        try:
            await self._pop(event)
        except Exception as exc:
            log_write_failure(log, exc, "screenpop_failed", call_id=event_var(event, CALL_ID_VAR))
        finally:
            async with self._progress:
                self.processed += 1
                self._progress.notify_all()

    async def wait_processed(self, count: int, timeout: float) -> bool:
        return await wait_for_condition(self._progress, lambda: self.processed >= count, timeout)

    async def _pop(self, event: Mapping[str, Any]) -> None:
        if str(event.get("Event", SCREENPOP_EVENT)).lower() != SCREENPOP_EVENT.lower():
            return
        call_id = call_id_of(event)
        if call_id is None:
            # Not one of ours (queued while the gateway was down, or a call that bypassed it).
            log.debug("event=screenpop_skipped reason=no_call_id queue=%s", event.get("Queue"))
            return
        agent = agent_name(event)
        if agent is None:
            log.warning("event=screenpop_skipped reason=no_agent call_id=%s", call_id)
            return
        topic = screenpop_topic(agent)  # ValueError for a name that cannot be a topic level: logged by handle()
        now = self._clock()
        # The store may be unreachable (a full disk, the database away): the agent still gets the caller's number
        # from the event, at once, and the pop goes through the outbox's memory.
        call = await _read(self._store.get_call(call_id), call_id) or _call_from_event(event, call_id)
        ticket_id = event_var(event, TICKET_ID_VAR)
        ticket = await _read(self._store.get_ticket_draft(ticket_id), call_id) if ticket_id else None
        if ticket is None:
            ticket = await _read(self._store.ticket_draft_for_call(call_id), call_id)
        message_id = new_message_id()
        # the caller came back from a linked centre that did not answer: the agent must know
        reason = LINKAGE_FAILED_REASON if event_var(event, LINKAGE_FAILED_VAR) else None
        # Recorded before it is queued: the answering agent may work on the ticket from now on, and a console that
        # connects later is sent this pop again (gateway.console.app, /api/screenpop).
        # the state disk may refuse it: the pop goes all the same (the agent needs the caller's data now)
        await unless_disk_fails(self._store.record_screenpop(
            message_id=message_id, agent=agent, call_id=call_id, ticket_id=ticket["ticket_id"] if ticket else None,
            reason=reason, at=now), log, "screenpop_not_recorded", call_id=call_id)
        if ticket is not None:
            ticket = {**ticket, "agent": agent}
        payload = await assemble_screenpop(
            self._store, message_id=message_id, agent=agent, call=call, ticket=ticket, reason=reason,
            created_at=now, now=now, history_days=self._history_days, low_confidence=self._low_confidence)
        seq = await self._outbox.put(topic, payload, message_id=message_id)
        self.popped += 1
        log.info("event=screenpop_queued call_id=%s agent=%s ticket=%s seq=%s message_id=%s caller=%s", call_id,
                 agent, ticket["ticket_id"] if ticket else "-", seq, message_id, mask(call.get("number")))


async def assemble_screenpop(
    store: ScreenPopStore, *, message_id: str, agent: str, call: Mapping[str, Any], ticket: Mapping[str, Any] | None,
    reason: str | None, created_at: datetime, now: datetime, history_days: int = 90,
    low_confidence: float = DEFAULT_LOW_CONFIDENCE,
) -> dict:
    """The screen-pop for a call and its ticket, with the caller's history as the store has it ``now``."""
    history = await _read(store.caller_history(call.get("number"), now=now, days=history_days),
                          str(call.get("call_id"))) or NO_HISTORY
    history = _without_current(history, str(call.get("call_id")), ticket["ticket_id"] if ticket else None)
    return build_screenpop(
        message_id=message_id, agent=agent, call=call, ticket=ticket, history=history,
        transcript=ticket.get("transcript") if ticket else None, created_at=created_at, reason=reason,
        low_confidence=low_confidence,
    )


NO_HISTORY = {"calls": [], "tickets": [], "restrictions": [], "calls_total": 0, "tickets_total": 0}


async def _read(read: Awaitable[Any], call_id: str) -> Any:
    return await unless_disk_fails(read, log, "screenpop_store_unreadable", call_id=call_id)


def _call_from_event(event: Mapping[str, Any], call_id: str) -> dict:
    # AMI can overtake the FastAGI entry that opens the call record: the agent still gets the number.
    raw = event.get("CallerIDNum")
    number = normalise(raw if isinstance(raw, str) else None).e164
    return {"call_id": call_id, "number": number, "ivr_path": []}


def _without_current(history: Mapping[str, Any], call_id: str, ticket_id: str | None) -> dict:
    return {
        **history,
        "calls": [c for c in history.get("calls", []) if c.get("call_id") != call_id],
        "tickets": [t for t in history.get("tickets", []) if t.get("id") != ticket_id],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value
