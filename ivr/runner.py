"""Runs the menu over one AGI session: performs the steps `ivr.menu.next_step` decides.

AGIHangup (gateway.agi.server) is not caught here: the call-entry handler decides the caller's fate once.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from ivr.menu import DTMF_KEYS, Menu, MenuState, next_step, start
from ivr.menu_steps import (
    AnnounceTicket, CollectTicket, DigitEvent, Event, LookupTicket, PlayAndWait, Played, Queue, Reason, Step,
    TicketEntered, TicketLookedUp, Timeout,
)
from ivr.say import say_date

log = logging.getLogger(__name__)


class MenuSession(Protocol):
    async def stream_file(self, name: str, escape_digits: str = "") -> str | None: ...
    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...
    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]: ...


@dataclass(frozen=True)
class MenuOutcome:
    request_type: str
    priority: int
    emergency: str | None
    ivr_path: list[str]
    ticket_query: str | None
    reason: Reason


TicketLookup = Callable[[str], Awaitable[dict | None]]
StepHook = Callable[[MenuState, Step], Any]
# Plays something right after the first prompt (the incident announcement after the welcome); given the keys that
# may cut it short, returns the key pressed during it, or None.
AfterFirstPrompt = Callable[[str], Awaitable[str | None]]


async def run_menu(session: MenuSession, menu: Menu, *, prompt_dir: str, lookup_ticket: TicketLookup,
                   on_step: StepHook | None = None, after_first_prompt: AfterFirstPrompt | None = None) -> MenuOutcome:
    """Walk the caller through `menu`; returns where the call goes next (always an agent queue).

    ``after_first_prompt`` runs once the start node's prompt has played to its end, before the wait for a key; a
    key pressed during it is the caller's choice at the start node, as one pressed during the prompt would be."""
    state, step = start(menu)
    after = after_first_prompt
    while True:
        if on_step is not None and inspect.isawaitable(result := on_step(state, step)):
            await result
        if isinstance(step, Queue):
            if step.announce:
                await session.stream_file(_path(prompt_dir, step.announce))
            return MenuOutcome(request_type=step.request_type, priority=step.priority, emergency=step.emergency,
                               ivr_path=list(state.path), ticket_query=step.ticket_query, reason=step.reason)
        event = await _perform(session, step, prompt_dir, lookup_ticket, after)
        after = None
        state, step = next_step(menu, state, event)


async def _perform(session: MenuSession, step: Step, prompt_dir: str, lookup_ticket: TicketLookup,
                   after: AfterFirstPrompt | None = None) -> Event:
    if isinstance(step, PlayAndWait):
        digit = await session.stream_file(_path(prompt_dir, step.prompt), DTMF_KEYS if step.barge_in else "")
        if not digit and after is not None:
            digit = await after(DTMF_KEYS if step.barge_in else "")
        if not digit:
            digit = await session.wait_for_digit(step.timeout_ms)
        return DigitEvent(digit) if digit else Timeout()
    if isinstance(step, CollectTicket):
        digits, _timed_out = await session.get_data(_path(prompt_dir, step.prompt), step.timeout_ms,
                                                    step.max_digits)
        return TicketEntered(digits or "")
    if isinstance(step, LookupTicket):
        try:
            record = await lookup_ticket(step.ticket)
        except Exception:
            # A broken ticket store must not cost the caller the call: they go on to an agent.
            log.exception("event=ticket_lookup_failed")
            return TicketLookedUp(status=None, failed=True)
        status = record.get("status") if isinstance(record, dict) else None
        if record is not None and not isinstance(status, str):
            status = ""  # found, status unreadable: the generic "being handled" prompt
        unit_prompt = record.get("unit_prompt") if isinstance(record, dict) else None
        due = record.get("due") if isinstance(record, dict) else None
        return TicketLookedUp(status=status, unit_prompt=unit_prompt if isinstance(unit_prompt, str) else None,
                              due=due if isinstance(due, date) else None)
    if isinstance(step, AnnounceTicket):
        for prompt in step.prompts:
            await session.stream_file(_path(prompt_dir, prompt))
        log.info("event=ticket_announced ticket=%s prompts=%s", step.ticket, ",".join(step.prompts))
        return Played()
    raise TypeError(f"unknown step {step!r}")


async def announce_restriction(session: MenuSession, *, prompt_dir: str, last_day: date,
                               emergency_keys: str = "") -> str | None:
    """Article 9 announcement: "restricted until <last_day>" and the emergency numbers.

    Returns the key if the caller pressed one of `emergency_keys` during it (playback stops there), else None.
    """
    if any(k not in DTMF_KEYS for k in emergency_keys):
        raise ValueError(f"emergency_keys must be DTMF keys, not {emergency_keys!r}")
    for prompt in ["restricted_intro", *say_date(last_day), "restricted_outro"]:
        digit = await session.stream_file(_path(prompt_dir, prompt), emergency_keys)
        if digit and digit in emergency_keys:
            return digit
    return None


def _path(prompt_dir: str, name: str) -> str:
    return f"{prompt_dir.rstrip('/')}/{name}"
