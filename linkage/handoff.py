"""Voice hand-off to the linked centres (Zhanjiang 12345 rules, art. 14), and its log.

From the IVR's emergency sub-menu the call is still in the gateway's hands (FastAGI), so the hand-off is a
dialplan jump: the gateway sets the centres to try, in order, and ``HOTLINE_ACTION=linkage``; the dialplan
(``[hotline-linkage]``) rings each for its answer timeout and, when none answers, queues the caller for an agent at
top priority. Each stage comes back as ``UserEvent: HotlineLinkage`` and lands in the hand-off log. The case data
goes to the centre beside the call (``Pusher.spawn``): a slow or failed push never holds up the voice.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

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
from linkage.emergency_list import Centre, EmergencyList, Situation

log = logging.getLogger("linkage.handoff")

# What Dial() reports for a centre that did not take the call.
_NOT_ANSWERED = {"NOANSWER": "no_answer", "BUSY": "busy", "CONGESTION": "failed", "CHANUNAVAIL": "failed",
                 "CANCEL": "caller_hangup", "DONTCALL": "failed", "TORTURE": "failed", "INVALIDARGS": "failed"}


def dial_targets(centres: Iterable[Centre]) -> str:
    """``HOTLINE_LINKAGE_TARGETS``: "dial|timeout" per centre, in order, joined by "^" (dial may hold '&')."""
    return "^".join(f"{c.dial}|{max(1, round(c.answer_timeout_s))}" for c in centres)


def situation_for_menu_key(emergencies: EmergencyList, key: str | None) -> Situation | None:
    """The situation the emergency sub-menu's key stands for (situations sharing a key share their centre)."""
    if not key:
        return None
    found = emergencies.by_menu_key(key)
    return found[0] if found else None


class LinkageHandoff:
    """Starts hand-offs from the menu and keeps their log from the dialplan's events."""

    def __init__(self, store: Any, emergencies: Callable[[], EmergencyList], pusher: Any,
                 *, clock: Callable[[], datetime], ami: Any | None = None) -> None:
        self.store = store
        self.emergencies = emergencies
        self.pusher = pusher
        self.clock = clock
        self.ami = ami

    async def from_menu(self, agi: Any, *, call_id: str, ticket_id: str | None, menu_key: str | None,
                        caller_e164: str | None) -> bool:
        """Hand the caller to the centres of the chosen situation; False when there is nothing to hand to."""
        emergencies = self.emergencies()
        situation = situation_for_menu_key(emergencies, menu_key)
        centres = emergencies.targets(situation.id) if situation else ()
        if not centres:
            return False
        now = self.clock()
        handoff_id = await self.store.add_handoff(call_id=call_id, centre=centres[0].name, trigger="menu",
                                                  mode="blind", requested_at=now, ticket_id=ticket_id,
                                                  situation=situation.id)
        await agi.set_variable(inherited(HANDOFF_ID_VAR), str(handoff_id))
        await agi.set_variable(LINKAGE_TARGETS_VAR, dial_targets(centres))
        await agi.set_variable(ACTION_VAR, ACTION_LINKAGE)
        await self._push(handoff_id, centres[0], situation)
        log.info("call=%s event=linkage_requested handoff=%s situation=%s centres=%s trigger=menu", call_id,
                 handoff_id, situation.id, ">".join(c.name for c in centres))
        return True

    async def offer_from_speech(self, *, call_id: str, ticket_id: str | None, situation_id: str) -> int | None:
        """A spoken emergency while the caller waits in the queue: take them out to confirm (or, for a situation
        configured without confirmation, straight to the centre). None when it is too late or not possible: an
        agent already has the call (the screen-pop shows the emergency), or nothing to hand to."""
        emergencies = self.emergencies()
        situation = emergencies.get(situation_id)
        centres = emergencies.targets(situation_id) if situation else ()
        call = await self.store.get_call(call_id)
        if self.ami is None or not centres or not call or call.get("outcome") not in ("queued", "ivr"):
            return None
        channel = call.get("channel")
        if not channel:
            return None
        handoff_id = await self.store.add_handoff(call_id=call_id, centre=centres[0].name, trigger="speech",
                                                  mode="blind", requested_at=self.clock(), ticket_id=ticket_id,
                                                  situation=situation.id)
        try:
            for name, value in ((inherited(HANDOFF_ID_VAR), str(handoff_id)),
                                (LINKAGE_TARGETS_VAR, dial_targets(centres)),
                                (CAPTURE_VAR, CAPTURE_DONE)):
                await self.ami.action({"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value})
            context = LINKAGE_CONFIRM_CONTEXT if situation.confirm else LINKAGE_CONTEXT
            await self.ami.action({"Action": "Redirect", "Channel": channel, "Context": context, "Exten": "s",
                                   "Priority": "1"})
        except Exception as exc:  # noqa: BLE001 - the caller simply stays in the queue
            await self.store.update_handoff(handoff_id, result="failed", detail=f"redirect: {type(exc).__name__}")
            log.warning("call=%s event=linkage_offer_failed handoff=%s error=%s", call_id, handoff_id,
                        type(exc).__name__)
            return None
        if not situation.confirm:
            await self._push(handoff_id, centres[0], situation)
        log.info("call=%s event=linkage_offered handoff=%s situation=%s confirm=%s trigger=speech", call_id,
                 handoff_id, situation.id, situation.confirm)
        return handoff_id

    async def _push(self, handoff_id: int, centre: Centre, situation: Situation) -> None:
        """The case data to the centre beside the call; started, never awaited (the voice does not wait)."""
        handoff = await self.store.get_handoff(handoff_id)
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
        try:
            handoff_id = int(event.get("Handoff") or "")
        except (TypeError, ValueError):   # TypeError: a repeated header comes as a list
            return
        if not 0 < handoff_id < 2**63:    # no row id of ours (SQLite's are signed 64-bit)
            return
        stage = str(event.get("Stage") or "")
        target = str(event.get("Target") or "")
        now = self.clock()
        try:
            handoff = await self.store.get_handoff(handoff_id)
            if handoff is None:
                return
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


def _centre_name(dial: str) -> str:
    """"PJSIP/centre-119" -> "119" (the endpoint naming of asterisk_conf/pjsip.conf)."""
    resource = dial.split("&", 1)[0].split("/", 1)[-1]
    return resource[len("centre-"):] if resource.startswith("centre-") else resource

