"""Voice hand-off to the linked centres (Zhanjiang 12345 rules, art. 14), and its log.

From the IVR's emergency sub-menu the call is still in the gateway's hands (FastAGI), so the hand-off is a
dialplan jump: the gateway sets the centres to try, in order, and ``HOTLINE_ACTION=linkage``; the dialplan
(``[hotline-linkage]``) rings each for its answer timeout and, when none answers, queues the caller for an agent at
top priority. Each stage comes back as ``UserEvent: HotlineLinkage`` and lands in the hand-off log. The case data
goes to the centre beside the call (``Pusher.spawn``): a slow or failed push never holds up the voice.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Protocol

from gateway.basics.row_ids import row_id
from gateway.basics.write_health import unless_disk_fails
from gateway.contract import (
    ACTION_LINKAGE,
    ACTION_VAR,
    CAPTURE_DONE,
    CAPTURE_VAR,
    HANDOFF_ID_VAR,
    LINKAGE_CONFIRM_CONTEXT,
    LINKAGE_CONTEXT,
    LINKAGE_EVENT,
    LINKAGE_TARGETS_VAR,
    inherited,
)
from ami_handlers.queue_status import caller_waiting
from linkage.emergency_list import Centre, EmergencyList, Situation

log = logging.getLogger("linkage.handoff")

# What Dial() reports for a centre that did not take the call.
_NOT_ANSWERED = {"NOANSWER": "no_answer", "BUSY": "busy", "CONGESTION": "failed", "CHANUNAVAIL": "failed",
                 "CANCEL": "caller_hangup", "DONTCALL": "failed", "TORTURE": "failed", "INVALIDARGS": "failed"}


# What each dialplan stage means for the metrics' count of hand-offs by centre and result (gateway.metrics).
_STAGE_RESULTS = {"answered": "answered", "fallback": "fallback_queue", "declined": "cancelled", **_NOT_ANSWERED}
_RINGING_KEPT = 1000


class HandoffObserver(Protocol):
    """Told of each result of a hand-off to a centre (the metrics: gateway.metrics.calls)."""

    def handoff(self, call_id: str | None, centre: str | None, result: str) -> None: ...


def dial_targets(centres: Iterable[Centre]) -> str:
    """``HOTLINE_LINKAGE_TARGETS``: "dial|timeout" per centre, in order, joined by "^" (dial may hold '&')."""
    return "^".join(f"{c.dial}|{max(1, round(c.answer_timeout_s))}" for c in centres)


def situation_for_menu_key(emergencies: EmergencyList, key: str | None) -> Situation | None:
    """The situation the emergency sub-menu's key stands for (situations sharing a key share their centre)."""
    if not key:
        return None
    found = emergencies.by_menu_key(key)
    return found[0] if found else None


def event_handoff_id(event: Mapping[str, Any]) -> int | None:
    """The hand-off row id an AMI event names in its ``Handoff`` header; None when it names none of ours (missing,
    not a number, repeated: a repeated header comes as a list, out of SQLite's signed 64-bit row ids)."""
    return row_id(event.get("Handoff"))


class LinkageHandoff:
    """Starts hand-offs from the menu and keeps their log from the dialplan's events."""

    def __init__(self, store: Any, emergencies: Callable[[], EmergencyList], pusher: Any,
                 *, clock: Callable[[], datetime], ami: Any | None = None, queue: str | None = None,
                 observer: HandoffObserver | None = None) -> None:
        self.observer = observer
        self._ringing: dict[int, str] = {}     # hand-off id -> the centre ringing now (for the observer)
        self.store = store
        self.emergencies = emergencies
        self.pusher = pusher
        self.clock = clock
        self.ami = ami
        self.queue = queue      # the agent queue (queues.conf), where a spoken emergency finds the caller

    async def from_menu(self, agi: Any, *, call_id: str, ticket_id: str | None, menu_key: str | None,
                        caller_e164: str | None) -> bool:
        """Hand the caller to the centres of the chosen situation; False when there is nothing to hand to."""
        emergencies = self.emergencies()
        situation = situation_for_menu_key(emergencies, menu_key)
        centres = emergencies.targets(situation.id) if situation else ()
        if not centres:
            return False
        now = self.clock()
        # the state disk may refuse the hand-off log: the caller still goes to the centre, without the log
        handoff_id = await unless_disk_fails(
            self.store.add_handoff(call_id=call_id, centre=centres[0].name, trigger="menu", mode="blind",
                                   requested_at=now, ticket_id=ticket_id, situation=situation.id),
            log, "handoff_log_skipped", call=call_id)
        if handoff_id is not None:
            await agi.set_variable(inherited(HANDOFF_ID_VAR), str(handoff_id))
        await agi.set_variable(LINKAGE_TARGETS_VAR, dial_targets(centres))
        await agi.set_variable(ACTION_VAR, ACTION_LINKAGE)
        await self._push(handoff_id, centres[0], situation, call_id=call_id, ticket_id=ticket_id)
        log.info("call=%s event=linkage_requested handoff=%s situation=%s centres=%s trigger=menu", call_id,
                 handoff_id, situation.id, ">".join(c.name for c in centres))
        return True

    async def offer_from_speech(self, *, call_id: str, ticket_id: str | None, situation_id: str) -> int | None:
        """A spoken emergency while the caller waits in the queue: take them out to confirm (or, for a situation
        configured without confirmation, straight to the centre). None when it is too late or not possible: an
        agent already has the call (the screen-pop shows the emergency), or nothing to hand to.

        The store's outcome trails Asterisk (the AgentConnect that records an answer may still be on its way), so
        Asterisk is asked right before the Redirect whether the caller is still waiting in the queue; a caller
        an agent answered is never pulled out of the bridge. What remains between that answer and the Redirect
        is the gateway's turnaround on one AMI exchange (logged as check_to_redirect_ms): an agent answering
        inside it loses the caller to the confirmation, which sends them back to the queue at top priority."""
        emergencies = self.emergencies()
        situation = emergencies.get(situation_id)
        centres = emergencies.targets(situation_id) if situation else ()
        call = await self.store.get_call(call_id)
        if self.ami is None or not self.queue or not centres or not call \
                or call.get("outcome") not in ("queued", "ivr"):
            return None
        channel = call.get("channel")
        if not channel:
            return None
        handoff_id = await self.store.add_handoff(call_id=call_id, centre=centres[0].name, trigger="speech",
                                                  mode="blind", requested_at=self.clock(), ticket_id=ticket_id,
                                                  situation=situation.id)
        variables = ((inherited(HANDOFF_ID_VAR), str(handoff_id)), (LINKAGE_TARGETS_VAR, dial_targets(centres)),
                     (CAPTURE_VAR, CAPTURE_DONE))
        context = LINKAGE_CONFIRM_CONTEXT if situation.confirm else LINKAGE_CONTEXT
        loop = asyncio.get_running_loop()
        try:
            # The variables first: they do not move the caller, and the Redirect then follows the check at once.
            await self.ami.actions([{"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}
                                    for name, value in variables])
            asked_at = loop.time()
            waiting = await caller_waiting(self.ami, queue=self.queue, channel=channel)
            if waiting:
                await self.ami.action({"Action": "Redirect", "Channel": channel, "Context": context, "Exten": "s",
                                       "Priority": "1"})
            window_ms = (loop.time() - asked_at) * 1000
        except Exception as exc:  # noqa: BLE001 - the caller simply stays where they are
            await self.store.update_handoff(handoff_id, result="failed", detail=f"redirect: {type(exc).__name__}")
            log.warning("call=%s event=linkage_offer_failed handoff=%s error=%s", call_id, handoff_id,
                        type(exc).__name__)
            return None
        if not waiting:
            await self._withdraw_offer(call_id, handoff_id, channel)
            return None
        if not situation.confirm:
            await self._push(handoff_id, centres[0], situation)
        log.info("call=%s event=linkage_offered handoff=%s situation=%s confirm=%s trigger=speech "
                 "check_to_redirect_ms=%.1f", call_id, handoff_id, situation.id, situation.confirm, window_ms)
        return handoff_id

    async def _withdraw_offer(self, call_id: str, handoff_id: int, channel: str) -> None:
        """Asterisk no longer has the caller waiting (an agent answered, or they left): no offer; the hand-off
        log says why, and the offer's variables are taken off the channel again (best effort)."""
        await self.store.update_handoff(handoff_id, result="cancelled", ended_at=self.clock(),
                                        detail="not offered: the caller was no longer waiting in the queue "
                                               "(an agent had the call)")
        log.info("call=%s event=linkage_offer_skipped handoff=%s reason=not_waiting_in_queue", call_id, handoff_id)
        try:
            await self.ami.actions([{"Action": "Setvar", "Channel": channel, "Variable": name, "Value": ""}
                                    for name in (inherited(HANDOFF_ID_VAR), LINKAGE_TARGETS_VAR)])
        except Exception as exc:  # noqa: BLE001 - a hung-up channel has no variables to clear
            log.debug("call=%s event=linkage_offer_unset_failed error=%s", call_id, type(exc).__name__)

    async def _push(self, handoff_id: int | None, centre: Centre, situation: Situation, *,
                    call_id: str | None = None, ticket_id: str | None = None) -> None:
        """The case data to the centre beside the call; started, never awaited (the voice does not wait). Without
        a hand-off row (the store refused it) the call and ticket ids come from the caller."""
        handoff = await self.store.get_handoff(handoff_id) if handoff_id is not None else None
        handoff = handoff or {"call_id": call_id, "ticket_id": ticket_id}
        call = await self.store.get_call(handoff["call_id"]) or {}
        ticket = await self.store.get_ticket_draft(handoff["ticket_id"]) if handoff.get("ticket_id") else None
        ticket = ticket or {}
        self.pusher.spawn(centre, call_id=handoff["call_id"], ticket_id=handoff.get("ticket_id"),
                          caller_number=call.get("number"), address=ticket.get("address"), situation=situation.id,
                          situation_name=situation.name, transcript=ticket.get("transcript"), agent=None,
                          at=self.clock(), handoff_id=handoff_id)

    async def on_event(self, event: Mapping[str, Any]) -> None:
        """``UserEvent: HotlineLinkage`` from the dialplan: ring, answered, a Dial status, or fallback."""
        if str(event.get("UserEvent", "")).lower() != LINKAGE_EVENT.lower():
            return
        if (handoff_id := event_handoff_id(event)) is None:
            return
        stage = str(event.get("Stage") or "")
        target = str(event.get("Target") or "")
        now = self.clock()
        try:
            handoff = await self.store.get_handoff(handoff_id)
            if handoff is None:
                return
            self._observe(handoff_id, handoff, stage, _centre_name(target))
            if stage == "ring":
                if handoff.get("ring_at") is None:
                    await self.store.update_handoff(handoff_id, ring_at=now)
            elif stage == "answered":
                await self.store.update_handoff(handoff_id, answered_at=now, result="answered")
            elif stage == "ANSWER":
                await self.store.update_handoff(handoff_id, ended_at=now)
            elif stage in _NOT_ANSWERED:
                detail = ";".join(filter(None, [handoff.get("detail"), f"{_centre_name(target)}:{stage}"]))
                await self.store.update_handoff(handoff_id, detail=detail, result=_NOT_ANSWERED[stage])
            elif stage == "fallback":
                await self.store.update_handoff(handoff_id, result="fallback_queue", ended_at=now)
            elif stage == "confirmed":
                # only now does the centre get the caller's data (Zhanjiang 12345 rules, art. 20: nothing to third
                # parties unasked)
                emergencies = self.emergencies()
                situation = emergencies.get(handoff.get("situation") or "")
                centres = emergencies.targets(situation.id) if situation else ()
                await self.store.update_handoff(handoff_id, detail="confirmed by the caller")
                if centres:
                    await self._push(handoff_id, centres[0], situation)
            elif stage == "declined":
                await self.store.update_handoff(handoff_id, result="cancelled", ended_at=now,
                                                detail="the caller chose to stay with 12345")
            log.info("event=linkage_stage handoff=%s stage=%s target=%s", handoff_id, stage,
                     _centre_name(target) or "-")
        except Exception:  # noqa: BLE001 - the log must not take the AMI reader down
            log.exception("event=linkage_log_failed handoff=%s stage=%s", handoff_id, stage)


    def _observe(self, handoff_id: int, handoff: Mapping[str, Any], stage: str, target: str) -> None:
        """The observer gets the centre a stage concerns: the one its Target names, for an answer the one rung last
        (a three-way hand-off rings none: its one centre), else the hand-off's first centre."""
        if self.observer is None:
            return
        if stage == "ring" and target:
            self._ringing[handoff_id] = target
            while len(self._ringing) > _RINGING_KEPT:
                del self._ringing[next(iter(self._ringing))]
            return
        if (result := _STAGE_RESULTS.get(stage)) is None:
            return
        rung = self._ringing.pop(handoff_id, None) if stage in ("answered", "fallback", "declined") else None
        centre = target or (rung if stage == "answered" else None) or handoff.get("centre")
        try:
            self.observer.handoff(handoff.get("call_id"), centre, result)
        except Exception:  # noqa: BLE001 - a figure lost, not the hand-off log
            log.exception("event=handoff_observer_failed handoff=%s stage=%s", handoff_id, stage)


def _centre_name(dial: str) -> str:
    """"PJSIP/centre-119" -> "119" (the endpoint naming of asterisk_conf/pjsip.conf)."""
    resource = dial.split("&", 1)[0].split("/", 1)[-1]
    return resource[len("centre-"):] if resource.startswith("centre-") else resource

