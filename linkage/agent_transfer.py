"""The agent console's one-key transfer to a linked centre (Zhanjiang 12345 rules, art. 14): blind or three-way.

Once an agent has the caller, the call is no longer in the gateway's hands (the caller sits in ``Queue()``,
bridged to the agent), so the hand-off is done over AMI, whose ``Redirect`` moves a channel even while bridged:

- **blind**: ``Setvar`` the hand-off id and the centre to ring on the caller channel, then ``Redirect`` it to
  ``[hotline-linkage]``; Asterisk hangs up the agent leg. From there the menu path's dialplan takes over: it rings
  the centre for its answer timeout, logs each stage as ``UserEvent: HotlineLinkage`` (``LinkageHandoff.on_event``
  keeps the log) and falls back to the agent queue at top priority when the centre does not answer.
- **threeway**: ``Setvar`` the conference name on both legs, a dual ``Redirect`` of caller and agent into
  ``[hotline-threeway]`` (``ConfBridge``), then an async ``Originate`` of the centre into the same conference
  through ``[hotline-threeway-centre]``, whose UserEvents tell whether the centre answered (hand-off log).

Either way the case data goes to the centre beside the voice (``Pusher.spawn``): it never holds the voice up.
The gateway's AMI user needs write class ``call`` (Setvar, Redirect, Hangup) and ``originate`` (Originate).

A three-way originate is remembered until Asterisk says how it ended, so that memory cannot grow with every
transfer, each way out removes the entry: the centre answers (``Stage: answered`` from
``[hotline-threeway-centre]``), it does not (its ``failed`` extension, ``Stage: NOANSWER``), the caller hangs up
first (``Stage: left`` from ``[hotline-threeway]``'s ``h`` extension; the still ringing centre is hung up, there
is nobody left to hand over), or nothing is heard within the centre's answer timeout and a grace (an AMI
reconnect lost the event; the hand-off is then marked failed). ``OriginateResponse`` settles it too, if the AMI
user ever reads class ``call``.
"""
from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.contract import (
    CALL_ID_VAR,
    CONF_USER_VAR,
    CONF_VAR,
    HANDOFF_ID_VAR,
    LINKAGE_CONTEXT,
    LINKAGE_EVENT,
    LINKAGE_TARGETS_VAR,
    THREEWAY_CENTRE_CONTEXT,
    THREEWAY_CONTEXT,
    inherited,
)
from ami_handlers.client.errors import AMIError
from ami_handlers.queue_events import agent_name, call_id_of
from linkage.emergency_list import Centre, EmergencyList
from linkage.handoff import dial_targets, event_handoff_id

log = logging.getLogger("linkage.agent_transfer")

MODES = ("blind", "threeway")
BRIDGE_PROFILE = "hotline_bridge"
USER_PROFILE = "hotline_user"
# Calls remembered at once; AgentComplete forgets a call, this only bounds what missed events (an AMI reconnect
# mid-call) can leave behind.
MAX_CALLS = 10_000
_ORIGINATE_PREFIX = "hl-threeway-"
# How long past the centre's answer timeout a three-way originate may stay unreported before it is given up.
ORIGINATE_GRACE_S = 15.0
# The dialplan's ``Stage`` values that end a three-way originate (asterisk_conf/extensions.conf).
_ANSWERED_STAGE = "answered"
_FAILED_STAGE = "NOANSWER"
_LEFT_STAGE = "left"
# OriginateResponse "Reason" (Asterisk's AST_CONTROL_* at the end of the attempt) -> hand-off result.
_ORIGINATE_REASONS = {"1": "no_answer", "3": "no_answer", "5": "busy", "8": "failed", "0": "failed"}
_CONF_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class TransferError(Exception):
    """The transfer cannot be done; ``reason`` is fit to show the agent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Call:
    caller_channel: str
    agent_channel: str
    agent: str | None


@dataclass
class _Originate:
    """A three-way transfer's centre leg that Asterisk has not yet reported on."""
    handoff_id: int
    action_id: str
    channel_id: str           # the uniqueid given to the centre's channel (Originate ChannelId), to hang it up
    centre: str
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


def conference_name(call_id: str) -> str:
    """``case-<call id>`` with the uniqueid's dot as '-': "1732690000.42" -> "case-1732690000-42".

    The dot becomes '-' rather than going away: without a separator "1732690000.42" and "1732690004.2" would
    share a conference.
    """
    return "case-" + _CONF_UNSAFE.sub("-", call_id)


def centre_choices(emergencies: Callable[[], EmergencyList]) -> Callable[[], list[dict]]:
    """For the console's ``centres`` argument: the configured centres as ``{"name", "label"}``."""
    def choices() -> list[dict]:
        return [{"name": c.name, "label": c.label or c.name} for c in emergencies().centres]
    return choices


class AgentTransfer:
    """Remembers which agent has which caller (AgentConnect/AgentComplete) and transfers on the agent's request."""

    def __init__(self, ami: Any, store: Any, emergencies: Callable[[], EmergencyList], pusher: Any,
                 *, clock: Callable[[], datetime], caller_profile: str = USER_PROFILE,
                 user_profile: str = USER_PROFILE, bridge_profile: str = BRIDGE_PROFILE,
                 originate_grace_s: float = ORIGINATE_GRACE_S) -> None:
        """``caller_profile`` is the ConfBridge user profile of the caller, ``user_profile`` that of the agent and
        the centre: with a marked caller profile and ``end_marked`` users the conference ends with the caller."""
        self.ami = ami
        self.store = store
        self.emergencies = emergencies
        self.pusher = pusher
        self.clock = clock
        self.caller_profile = caller_profile
        self.user_profile = user_profile
        self.bridge_profile = bridge_profile
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self.originate_grace_s = originate_grace_s
        self._originates: dict[int, _Originate] = {}   # hand-off id -> its centre leg, until Asterisk reports
        self._busy: set[str] = set()              # calls with a transfer under way (a double click)
        self._tasks: set[asyncio.Task] = set()    # hand-off log writes started by a timer

    # -- who has which caller -----------------------------------------------------------------------------------

    def attach(self, ami: Any) -> None:
        # One callback for both: AMIConnection then delivers a call's AgentConnect before its AgentComplete.
        ami.on_event("AgentConnect", self._on_queue_event)
        ami.on_event("AgentComplete", self._on_queue_event)
        ami.on_event("OriginateResponse", self.on_originate_response)
        ami.on_event("UserEvent", self.on_linkage_event)

    def _on_queue_event(self, event: Mapping[str, Any]) -> None:
        name = str(event.get("Event", ""))
        if name == "AgentConnect":
            self.on_agent_connect(event)
        elif name == "AgentComplete":
            self.on_agent_complete(event)

    def on_agent_connect(self, event: Mapping[str, Any]) -> None:
        call_id = call_id_of(event)
        caller, agent_channel = event.get("Channel"), event.get("DestChannel")
        if not call_id or not caller or not agent_channel:
            return
        self._calls.pop(call_id, None)
        self._calls[call_id] = _Call(str(caller), str(agent_channel), agent_name(event))
        while len(self._calls) > MAX_CALLS:
            self._calls.popitem(last=False)

    def on_agent_complete(self, event: Mapping[str, Any]) -> None:
        call_id = call_id_of(event)
        if call_id:
            self._calls.pop(call_id, None)

    def in_progress(self, call_id: str) -> bool:
        return call_id in self._calls

    @property
    def pending_originates(self) -> int:
        """Three-way centre legs Asterisk has not reported on yet."""
        return len(self._originates)

    async def close(self) -> None:
        """Stop the give-up timers and let the hand-off writes they started finish (the store closes after)."""
        for pending in self._originates.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._originates.clear()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- transfer -----------------------------------------------------------------------------------------------

    async def transfer(self, *, call_id: str, centre: str, mode: str, agent: str, ticket_id: str | None) -> int:
        """Hand the caller to ``centre``; the hand-off id. TransferError says why it cannot be done."""
        if mode not in MODES:
            raise TransferError(f"unknown transfer mode {mode!r} (blind or threeway)")
        call = self._calls.get(call_id)
        if call is None:
            raise TransferError("this call is not connected to an agent (ended, or not yet answered)")
        if call.agent != agent:
            raise TransferError("this call is connected to another agent")
        target = self.emergencies().get_centre(centre)
        if target is None:
            raise TransferError(f"no linked centre {centre!r} is configured")
        if call_id in self._busy:
            raise TransferError("a transfer of this call is already under way")
        self._busy.add(call_id)
        try:
            return await self._transfer(call_id, call, target, mode=mode, agent=agent, ticket_id=ticket_id)
        finally:
            self._busy.discard(call_id)

    async def _transfer(self, call_id: str, call: _Call, target: Centre, *, mode: str, agent: str,
                        ticket_id: str | None) -> int:
        now = self.clock()
        handoff_id = await self.store.add_handoff(call_id=call_id, centre=target.name, trigger="agent", mode=mode,
                                                  requested_at=now, ticket_id=ticket_id)
        try:
            if mode == "blind":
                await self._blind(call, target, handoff_id)
            else:
                await self._threeway(call_id, call, target, handoff_id)
        except AMIError as exc:
            detail = f"{mode}: {exc}"[:500]
            try:
                await self.store.update_handoff(handoff_id, result="failed", ended_at=self.clock(), detail=detail)
            except Exception:  # noqa: BLE001 - the agent must still hear why the transfer failed
                log.exception("event=transfer_log_failed handoff=%s", handoff_id)
            log.warning("call=%s event=agent_transfer_failed handoff=%s centre=%s mode=%s agent=%s error=%s",
                        call_id, handoff_id, target.name, mode, agent, exc)
            raise TransferError(f"Asterisk refused the transfer: {exc}") from exc
        if mode == "blind":
            # The agent leg is gone now; a second click must not redirect the caller again.
            self._calls.pop(call_id, None)
        await self._push(target, call_id=call_id, ticket_id=ticket_id, agent=agent, at=now, handoff_id=handoff_id)
        log.info("call=%s event=linkage_requested handoff=%s centres=%s trigger=agent mode=%s agent=%s", call_id,
                 handoff_id, target.name, mode, agent)
        return handoff_id

    async def _blind(self, call: _Call, centre: Centre, handoff_id: int) -> None:
        await self._setvar(call.caller_channel, inherited(HANDOFF_ID_VAR), str(handoff_id))
        await self._setvar(call.caller_channel, LINKAGE_TARGETS_VAR, dial_targets([centre]))
        await self.ami.action({"Action": "Redirect", "Channel": call.caller_channel,
                               "Context": LINKAGE_CONTEXT, "Exten": "s", "Priority": "1"})

    async def _threeway(self, call_id: str, call: _Call, centre: Centre, handoff_id: int) -> None:
        conf = conference_name(call_id)
        await self._setvar(call.caller_channel, CONF_VAR, conf)
        await self._setvar(call.caller_channel, CONF_USER_VAR, self.caller_profile)
        await self._setvar(call.caller_channel, inherited(HANDOFF_ID_VAR), str(handoff_id))
        await self._setvar(call.agent_channel, CONF_VAR, conf)
        await self._setvar(call.agent_channel, CONF_USER_VAR, self.user_profile)
        await self.ami.action({"Action": "Redirect", "Channel": call.caller_channel, "ExtraChannel": call.agent_channel,
                               "Context": THREEWAY_CONTEXT, "Exten": "s", "Priority": "1",
                               "ExtraContext": THREEWAY_CONTEXT, "ExtraExten": "s", "ExtraPriority": "1"})
        # Both legs are out of the queue's bridge now: the next AgentComplete is this call's; forget it already.
        self._calls.pop(call_id, None)
        tag = uuid.uuid4().hex[:8]
        pending = _Originate(handoff_id, f"{_ORIGINATE_PREFIX}{handoff_id}-{tag}",
                             f"{_ORIGINATE_PREFIX}{handoff_id}-{tag}-centre", centre.name)
        self._originates[handoff_id] = pending
        pending.timer = asyncio.get_running_loop().call_later(
            centre.answer_timeout_s + self.originate_grace_s, self._give_up, handoff_id)
        try:
            await self.ami.action({
                "Action": "Originate", "ActionID": pending.action_id, "ChannelId": pending.channel_id,
                # Originate takes one channel; a centre reached as "A&B" is called on its first target.
                "Channel": centre.dial.split("&", 1)[0],
                # Through the dialplan rather than Application=ConfBridge: [hotline-threeway-centre] reports the
                # answer (UserEvent, a class the gateway reads; OriginateResponse is class "call", which it
                # does not, to spare itself every call event) and its "failed" extension the failure.
                "Context": THREEWAY_CENTRE_CONTEXT, "Exten": "s", "Priority": "1",
                "Async": "true", "Timeout": str(int(round(centre.answer_timeout_s * 1000))),
                "Variable": f"{CALL_ID_VAR}={call_id},{HANDOFF_ID_VAR}={handoff_id},{CONF_VAR}={conf},"
                            f"{CONF_USER_VAR}={self.user_profile}",
            })
        except AMIError:
            self._settle(handoff_id)
            raise

    def _settle(self, handoff_id: int) -> _Originate | None:
        """Forget a three-way originate: Asterisk reported on it, or it was given up."""
        pending = self._originates.pop(handoff_id, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        return pending

    async def on_linkage_event(self, event: Mapping[str, Any]) -> None:
        """``UserEvent: HotlineLinkage`` of a three-way hand-off: the centre answered, did not, or the caller
        left first. The hand-off log itself is ``LinkageHandoff.on_event``'s (it hears the same event)."""
        if str(event.get("UserEvent", "")).lower() != LINKAGE_EVENT.lower():
            return
        if (handoff_id := event_handoff_id(event)) is None:
            return
        stage = str(event.get("Stage") or "")
        if stage in (_ANSWERED_STAGE, _FAILED_STAGE):
            self._settle(handoff_id)
        elif stage == _LEFT_STAGE and (pending := self._settle(handoff_id)) is not None:
            await self._caller_left(pending)

    async def _caller_left(self, pending: _Originate) -> None:
        """The caller hung up while the centre's phone still rang: nobody is left to hand over to it."""
        log.info("event=linkage_stage handoff=%s stage=caller_left_before_centre_answered centre=%s",
                 pending.handoff_id, pending.centre)
        try:
            await self.store.update_handoff(pending.handoff_id, detail="the caller hung up before the centre answered")
        except Exception:
            # the log must not take the AMI reader down
            log.exception("event=linkage_log_failed handoff=%s stage=left", pending.handoff_id)
        try:
            # AMI Hangup finds a channel by uniqueid too; the centre's answer timeout ends it otherwise.
            await self.ami.action({"Action": "Hangup", "Channel": pending.channel_id})
        except AMIError as exc:
            log.info("event=linkage_centre_hangup_skipped handoff=%s reason=%s", pending.handoff_id, exc)

    def _give_up(self, handoff_id: int) -> None:
        pending = self._settle(handoff_id)
        if pending is None:
            return
        task = asyncio.create_task(self._log_given_up(pending), name=f"threeway-give-up-{handoff_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _log_given_up(self, pending: _Originate) -> None:
        log.warning("event=linkage_originate_unreported handoff=%s centre=%s action=forgotten", pending.handoff_id,
                    pending.centre)
        try:
            handoff = await self.store.get_handoff(pending.handoff_id)
            if handoff is not None and handoff.get("result") is None:
                await self.store.update_handoff(pending.handoff_id, result="failed", ended_at=self.clock(),
                                                detail="Asterisk did not report on the centre's leg")
        except Exception:
            # a timer's write: nobody else would hear of its failure
            log.exception("event=linkage_log_failed handoff=%s stage=unreported", pending.handoff_id)

    async def on_originate_response(self, event: Mapping[str, Any]) -> None:
        """The centre's leg of a three-way transfer answered, or did not: the hand-off log."""
        action_id = str(event.get("ActionID", ""))
        handoff_id = next((h for h, p in self._originates.items() if p.action_id == action_id), None)
        if handoff_id is None or self._settle(handoff_id) is None:
            return
        now = self.clock()
        try:
            if str(event.get("Response", "")).lower() == "success":
                await self.store.update_handoff(handoff_id, answered_at=now, result="answered")
            else:
                reason = str(event.get("Reason", ""))
                await self.store.update_handoff(handoff_id, ended_at=now,
                                                result=_ORIGINATE_REASONS.get(reason, "failed"),
                                                detail=f"originate reason {reason or '?'}")
            log.info("event=linkage_stage handoff=%s stage=originate_%s reason=%s", handoff_id,
                     str(event.get("Response", "")).lower() or "-", event.get("Reason", "-"))
        except Exception:  # noqa: BLE001 - the log must not take the AMI reader down
            log.exception("event=linkage_log_failed handoff=%s stage=originate", handoff_id)

    async def _setvar(self, channel: str, name: str, value: str) -> None:
        await self.ami.action({"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value})

    async def _push(self, centre: Centre, *, call_id: str, ticket_id: str | None, agent: str, at: datetime,
                    handoff_id: int) -> None:
        number = address = transcript = None
        try:
            call = await self.store.get_call(call_id)
            ticket = await self.store.get_ticket_draft(ticket_id) if ticket_id else None
            if ticket is None:
                ticket = await self.store.ticket_draft_for_call(call_id)
            number = (call or {}).get("number")
            address = (ticket or {}).get("address") or None
            transcript = (ticket or {}).get("transcript") or None
        except Exception:  # noqa: BLE001 - the voice went; send what we have
            log.exception("call=%s event=transfer_case_read_failed handoff=%s", call_id, handoff_id)
        self.pusher.spawn(centre, call_id=call_id, ticket_id=ticket_id, caller_number=number, address=address,
                          situation=None, situation_name=None, transcript=transcript, agent=agent, at=at,
                          handoff_id=handoff_id)
