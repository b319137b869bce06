"""Voice hand-off to the linked centres (seed article 14), and its log.

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

from linkage.emergency_list import Centre, EmergencyList, Situation

log = logging.getLogger("linkage.handoff")

ACTION_VAR = "HOTLINE_ACTION"
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
                 *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.emergencies = emergencies
        self.pusher = pusher
        self.clock = clock

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
        await agi.set_variable("__HOTLINE_HANDOFF_ID", str(handoff_id))
        await agi.set_variable("HOTLINE_LINKAGE_TARGETS", dial_targets(centres))
        await agi.set_variable(ACTION_VAR, "linkage")
        self.pusher.spawn(centres[0], call_id=call_id, ticket_id=ticket_id, caller_number=caller_e164, address=None,
                          situation=situation.id, situation_name=situation.name, transcript=None, agent=None,
                          at=now, handoff_id=handoff_id)
        log.info("call=%s event=linkage_requested handoff=%s situation=%s centres=%s trigger=menu", call_id,
                 handoff_id, situation.id, ">".join(c.name for c in centres))
        return True

    async def on_event(self, event: Mapping[str, Any]) -> None:
        """``UserEvent: HotlineLinkage`` from the dialplan: ring, answered, a Dial status, or fallback."""
        if str(event.get("UserEvent", "")).lower() != "hotlinelinkage":
            return
        try:
            handoff_id = int(event.get("Handoff") or "")
        except ValueError:
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
            log.info("event=linkage_stage handoff=%s stage=%s target=%s", handoff_id, stage,
                     _centre_name(target) or "-")
        except Exception:  # noqa: BLE001 - the log must not take the AMI reader down
            log.exception("event=linkage_log_failed handoff=%s stage=%s", handoff_id, stage)


def _centre_name(dial: str) -> str:
    """"PJSIP/centre-119" -> "119" (the endpoint naming of asterisk_conf/pjsip.conf)."""
    resource = dial.split("&", 1)[0].split("/", 1)[-1]
    return resource[len("centre-"):] if resource.startswith("centre-") else resource

