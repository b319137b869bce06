"""The 12345 call entry (FastAGI script ``entry``): restriction check, then the IVR, then the agent queue.

Zhanjiang 12345 rules, art. 2 (7x24 human service): whatever goes wrong here, the caller ends up with an agent. The
dialplan queues every call unless the gateway explicitly sets ``HOTLINE_ACTION=hangup``, which only a restricted
number (art. 9) gets, after hearing why and until when, as the session's last command: a gateway killed at any
moment before it leaves nothing on the channel that could hang up a caller. The channel's ``HOTLINE_PRIORITY`` is
kept at what a fault owes the caller where they are (the emergency sub-menu: top priority), so the dialplan's
fallback queues them right also when the gateway is gone.

The caller's number is normalised once, at entry, and travels on as a value; the store sees a call twice: at entry
(open the call and answer the restriction question) and at queueing (outcome, type, ticket draft with due date).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Awaitable, Callable, Protocol

from gateway.agi.replies import AGIError, AGIHangup
from gateway.announcement import Announcement
from gateway.agi.session import AGISession
from gateway.basics.phone import CallerNumber, normalise
from gateway.basics.write_health import is_disk_failure, log_write_failure, unless_disk_fails
from gateway.contract import (
    ACTION_HANGUP,
    ACTION_QUEUE,
    ACTION_VAR,
    CALL_ID_VAR,
    CAPTURE_VAR,
    EMERGENCY_VAR,
    PRIORITY_VAR,
    REQUEST_TYPE_VAR,
    REQUEST_TYPES,
    TICKET_ID_VAR,
    inherited,
)
from gateway.restriction import RefusalEnd, Restriction, last_day, refusal_end
from gateway.store.database import Store
from ivr.menu import PRIORITY_EMERGENCY, PRIORITY_NORMAL, Menu, MenuState, fault_priority
from ivr.menu_steps import Step
from ivr.runner import MenuOutcome, announce_restriction, run_menu
from ivr.triage.deadline import due_date

log = logging.getLogger("gateway.callflow")

EMERGENCY_NODE = "emergency"


class CallAnnouncements(Protocol):
    """The incident announcements as the call flow uses them (``gateway.announcements_in_force``)."""

    async def for_call(self, call_id: str) -> Announcement | None: ...

    async def heard(self, call_id: str, announcement: Announcement) -> None: ...


class CallObserver(Protocol):
    """Told when a call comes in and of each outcome the call flow gives it (the metrics: gateway.metrics.calls)."""

    def entered(self, call_id: str) -> None: ...

    def outcome(self, call_id: str, outcome: str) -> bool: ...


class MenuLinkage(Protocol):
    """The linkage hand-off as the call flow uses it (``linkage.handoff.LinkageHandoff``)."""

    async def from_menu(self, agi: AGISession, *, call_id: str, ticket_id: str | None, menu_key: str | None,
                        caller_e164: str | None) -> bool: ...


@dataclass(frozen=True)
class CallFlowSettings:
    prompt_dir: str            # the prompt directory as Asterisk sees it
    deadline_s: float          # a call's longest stay in the gateway before it is queued anyway
    tz: object                 # ZoneInfo for dates spoken to the caller
    # the key that takes a restricted caller from the announcement to the emergency sub-menu ("" = none)
    restricted_emergency_key: str = ""
    # "audiosocket" or "record" for the next queued call's description (None: no speech capture)
    capture_mode: Callable[[], str | None] = lambda: None


class FaultPriority:
    """One call's ``HOTLINE_PRIORITY`` on the channel, raised as the caller goes where a fault owes them more.

    The dialplan's fallback (gateway gone, session failed) queues with whatever priority the channel holds. It
    starts at the dialplan's own ``PRIORITY_NORMAL`` and is never lowered: a caller who once asked for emergency
    help stays at the front of the queue, whatever breaks afterwards.
    """

    def __init__(self, agi: AGISession, menu: Menu) -> None:
        self.agi = agi
        self.menu = menu
        self.on_channel = PRIORITY_NORMAL

    async def raise_to(self, priority: int) -> None:
        if priority > self.on_channel:
            await self.agi.set_variable(inherited(PRIORITY_VAR), str(priority))
            self.on_channel = priority

    async def follow(self, state: MenuState, step: Step) -> None:
        """``run_menu``'s step hook: the priority a fault at this node would owe."""
        await self.raise_to(fault_priority(self.menu, state))


class CallFlow:
    """Handles the ``entry`` FastAGI script for every call to the hotline."""

    def __init__(self, store: Store, menu: Menu, settings: CallFlowSettings,
                 clock: Callable[[], datetime], linkage: MenuLinkage | None = None,
                 lookup_ticket: Callable[[str], Awaitable[dict | None]] | None = None,
                 announcements: CallAnnouncements | None = None, calls: CallObserver | None = None) -> None:
        """``lookup_ticket`` answers the progress query (default: the store's ticket status); ``announcements``
        gives the incident announcement played after the welcome (art. 18); ``calls`` hears the outcomes."""
        self.linkage = linkage
        self.calls = calls
        self.announcements = announcements
        self.store = store
        self.lookup_ticket = lookup_ticket or store.ticket_status
        self.menu = menu
        self.settings = settings
        self.clock = clock

    async def entry(self, agi: AGISession) -> None:
        call_id = agi.env.get("agi_uniqueid") or "unknown"
        caller = normalise(agi.env.get("agi_callerid"))
        log.info("call=%s event=entry caller=%s", call_id, caller.masked)
        if self.calls is not None:
            self.calls.entered(call_id)
        try:
            async with asyncio.timeout(self.settings.deadline_s):
                await self._entry(agi, call_id, caller)
        except AGIHangup:
            if await self._channel_still_up(agi):
                # result=-1 from STREAM FILE also means "no such sound file": a missing prompt, not a caller gone.
                log.error("call=%s event=playback_failed hint=missing_prompt action=queue", call_id)
                await self._queue_anyway(agi, call_id)
                return
            log.info("call=%s event=caller_hung_up_in_gateway", call_id)
            await self._safe_update(call_id, outcome="abandoned", ended_at=self.clock())
        except TimeoutError:
            log.warning("call=%s event=deadline_passed action=queue", call_id)
            await self._queue_anyway(agi, call_id)
        except asyncio.CancelledError:
            # The gateway is stopping (SIGTERM) with this call still in it: the session closes and the dialplan
            # queues the caller with the priority on the channel. Only the record is ours to finish.
            log.warning("call=%s event=released_to_dialplan action=queue", call_id)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._safe_update(call_id, outcome="failed")
            raise
        except Exception as exc:  # noqa: BLE001 - the top of the session, where the caller's fate is decided
            # A fault of ours (store, protocol, menu data): the caller goes to an agent all the same. A failing
            # state disk is logged once by the store's health, not with a traceback per call.
            log.log(logging.WARNING if is_disk_failure(exc) else logging.ERROR,
                    "call=%s event=gateway_fault error=%s action=queue", call_id, type(exc).__name__,
                    exc_info=not is_disk_failure(exc))
            await self._queue_anyway(agi, call_id)

    async def _entry(self, agi: AGISession, call_id: str, caller: CallerNumber) -> None:
        # Inherited (__) so that the agent leg and the AMI queue events carry our call id.
        await agi.set_variable(inherited(CALL_ID_VAR), call_id)
        if restriction := await self._enter(agi, call_id, caller):
            if self.calls is not None:
                self.calls.outcome(call_id, "blocked")
            return await self.refuse(agi, call_id, caller, restriction)
        outcome = await run_menu(agi, self.menu, prompt_dir=self.settings.prompt_dir,
                                 lookup_ticket=self.lookup_ticket, on_step=FaultPriority(agi, self.menu).follow,
                                 after_first_prompt=lambda keys: self.announce(agi, call_id, keys))
        await self.queue(agi, call_id, outcome, caller)

    async def announce(self, agi: AGISession, call_id: str, keys: str) -> str | None:
        """Zhanjiang 12345 rules, art. 18: the incident announcement in force, right after the welcome, cut short by
        a key (the caller's menu choice, returned). No announcement, or none ready here: nothing is played."""
        if self.announcements is None or (found := await self.announcements.for_call(call_id)) is None:
            return None
        await self.announcements.heard(call_id, found)
        log.info("call=%s event=announcement_played announcement=%s prompt=%s", call_id, found.id, found.prompt)
        try:
            key = await agi.stream_file(f"{self.settings.prompt_dir.rstrip('/')}/{found.prompt}", keys)
        except AGIHangup:
            if not await self._channel_still_up(agi):
                raise
        else:
            log.info("call=%s event=announcement_heard announcement=%s key=%s", call_id, found.id, key or "-")
            return key
        # result=-1 with the channel alive: the sound file went missing; the menu goes on without it
        log.error("call=%s event=announcement_playback_failed announcement=%s hint=missing_prompt", call_id, found.id)
        return None

    async def _enter(self, agi: AGISession, call_id: str, caller: CallerNumber) -> Restriction | None:
        """Open the call record and answer the restriction question. When the state disk refuses the record
        (full, failing), the question is still answered from a read, and the call goes on without its record."""
        now = self.clock()
        try:
            return await self.store.enter_call(call_id=call_id, number=caller.e164,
                                               channel=agi.env.get("agi_channel", ""), at=now)
        except Exception as exc:
            if not is_disk_failure(exc):
                raise
            log_write_failure(log, exc, "call_record_skipped", call=call_id)
        return await self.store.active_restriction(caller.e164, now)

    async def refuse(self, agi: AGISession, call_id: str, caller: CallerNumber, restriction: Restriction) -> None:
        """Zhanjiang 12345 rules, art. 9: a restricted number hears why and until when; nothing else of the call
        runs, except that emergency help stays one key away (art. 14). The hang-up is the last thing decided."""
        until_day = last_day(restriction.until, self.settings.tz)
        log.info("call=%s event=blocked caller=%s restriction=%s until=%s", call_id, caller.masked,
                 restriction.id, until_day.isoformat())
        key = self.settings.restricted_emergency_key if self.linkage is not None else ""
        announced, pressed = False, None
        try:
            pressed = await announce_restriction(agi, prompt_dir=self.settings.prompt_dir, last_day=until_day,
                                                 emergency_keys=key)
            announced = pressed is None  # else the key cut it short
        except AGIHangup:
            # result=-1 from STREAM FILE is also a missing prompt: the channel lives and the announcement was not
            # heard (RefusalEnd.AGENT). A caller gone is still a blocked attempt, not an "abandoned" call.
            if not await self._channel_still_up(agi):
                log.info("call=%s event=caller_hung_up_during_announcement", call_id)
                return
        end = refusal_end(announced=announced, emergency_key=pressed)
        if end is RefusalEnd.HANG_UP:
            with contextlib.suppress(AGIHangup):  # the caller left first: the same end, still a blocked attempt
                await agi.set_variable(ACTION_VAR, ACTION_HANGUP)
            return
        if end is RefusalEnd.AGENT:
            log.error("call=%s event=playback_failed hint=missing_prompt action=queue", call_id)
            return await self._queue_anyway(agi, call_id)
        emergency_menu = replace(self.menu, start=EMERGENCY_NODE)
        priority = FaultPriority(agi, emergency_menu)
        # First, before anything that could fail: a fault from here on owes the sub-menu's top priority.
        await priority.raise_to(fault_priority(emergency_menu, MenuState(node=EMERGENCY_NODE)))
        log.info("call=%s event=restricted_caller_asks_for_emergency_help priority=%s", call_id, priority.on_channel)
        outcome = await run_menu(agi, emergency_menu, prompt_dir=self.settings.prompt_dir,
                                 lookup_ticket=self.lookup_ticket, on_step=priority.follow)
        outcome = replace(outcome, ivr_path=[pressed, *outcome.ivr_path], priority=PRIORITY_EMERGENCY)
        await self.queue(agi, call_id, outcome, caller)

    async def queue(self, agi: AGISession, call_id: str, outcome: MenuOutcome, caller: CallerNumber) -> None:
        """The IVR's outcome and the ticket draft in one store operation, then the channel variables the queue and
        the screen-pop read (art. 10, 11: the ticket exists before an agent answers; speech fills it meanwhile)."""
        now = self.clock()
        known_type = outcome.request_type if outcome.request_type in REQUEST_TYPES else None
        # the state disk may refuse the draft: the caller is queued all the same, the agent types the ticket
        ticket_id = await unless_disk_fails(self.store.queue_call(
            call_id, ivr_path=list(outcome.ivr_path), request_type=outcome.request_type,
            emergency=outcome.emergency, priority=outcome.priority, ticket_query=outcome.ticket_query,
            ticket_type=known_type, due=due_date(known_type, now) if known_type else None, at=now),
            log, "ticket_draft_skipped", call=call_id)
        if ticket_id is not None:
            await agi.set_variable(inherited(TICKET_ID_VAR), ticket_id)
        if capture := self.settings.capture_mode():
            await agi.set_variable(CAPTURE_VAR, capture)
        if outcome.emergency and self.linkage is not None and await self.linkage.from_menu(
                agi, call_id=call_id, ticket_id=ticket_id, menu_key=outcome.ivr_path[-1] if outcome.ivr_path else None,
                caller_e164=caller.e164):
            return
        await agi.set_variable(inherited(REQUEST_TYPE_VAR), outcome.request_type)
        await agi.set_variable(inherited(PRIORITY_VAR), str(outcome.priority))
        if outcome.emergency:
            await agi.set_variable(inherited(EMERGENCY_VAR), outcome.emergency)
        await agi.set_variable(ACTION_VAR, ACTION_QUEUE)
        log.info("call=%s event=to_queue type=%s priority=%s emergency=%s reason=%s path=%s", call_id,
                 outcome.request_type, outcome.priority, outcome.emergency or "-", outcome.reason,
                 "/".join(outcome.ivr_path))

    @staticmethod
    async def _channel_still_up(agi: AGISession) -> bool:
        """One CHANNEL STATUS round trip: a live channel answers, a dead one gets 511 (AGIHangup)."""
        if agi.hungup:
            return False
        try:
            await agi.command("CHANNEL STATUS")
        except AGIError:
            return False
        return True

    async def _queue_anyway(self, agi: AGISession, call_id: str) -> None:
        await self._safe_update(call_id, outcome="failed")
        if agi.hungup:
            return
        try:
            await agi.set_variable(ACTION_VAR, ACTION_QUEUE)
        except AGIError:
            pass  # the dialplan queues a call without HOTLINE_ACTION anyway

    async def _safe_update(self, call_id: str, **fields) -> None:
        if self.calls is not None and "outcome" in fields:
            self.calls.outcome(call_id, fields["outcome"])
        try:
            await self.store.update_call(call_id, **fields)
        except Exception as exc:  # noqa: BLE001 - the call record must not take the call down with it
            log_write_failure(log, exc, "store_update_failed", call=call_id)
