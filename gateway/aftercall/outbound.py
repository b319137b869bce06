"""The calls the hotline places itself, over AMI Originate, with the hotline's number as caller id:

- an agent's **call-back** to a dissatisfied caller (Zhanjiang 12345 rules, art. 15): the agent's phone rings
  first (``[hotline-callback]``); once the agent answers, the citizen is dialled. ``UserEvent: HotlineCallback``
  reports the end (Dial's status), which becomes the task's attempt: reached, no answer, busy, failed.
- the automated **return call** on a done ticket (一事一评): placed within calling hours by ``run``'s poll, the
  citizen's leg runs the survey (``[hotline-return-call]``, FastAGI ``return_call``); ``UserEvent:
  HotlineReturnCall`` says answered or failed, and a failed try is repeated (``calling_hours.after_try``).

The number dialled never comes from the caller's channel: it is the store's E.164, turned into the trunk's digits
here (``outbound_dial``), so nothing a caller sends reaches a dial string.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any

import phonenumbers

from gateway.aftercall.calling_hours import after_try, next_calling_time
from gateway.basics.row_ids import row_id
from gateway.config_aftercall import AfterCallSection
from gateway.contract import (
    CALLBACK_CONTEXT,
    CALLBACK_EVENT,
    CALLBACK_TASK_VAR,
    OUTBOUND_DIAL_VAR,
    OUTBOUND_ENDPOINT,
    RETURN_CALL_CONTEXT,
    RETURN_CALL_EVENT,
    RETURN_CALL_VAR,
    TICKET_ID_VAR,
)

__all__ = ["CallBackError", "OutboundCalls", "callback_outcome", "outbound_dial"]

log = logging.getLogger("gateway.aftercall.outbound")

POLL_S = 5.0            # how often due return calls are looked for
MAX_RETURN_CALLS = 2    # return calls in progress at once (they take trunk lines the hotline's callers need)
_EVENT_GRACE_S = 30.0   # a try whose end event never came (an AMI reconnect lost it) counts as failed after this
# Dial's DIALSTATUS on the citizen's leg -> the attempt's outcome
_DIALSTATUS = {"ANSWER": "reached", "NOANSWER": "no_answer", "BUSY": "busy"}
# The Originate "failed" extension's REASON: 3 ring timeout, 5 busy, 8 congestion, 1/0 hung up or no such channel
_REASONS = {"3": "no_answer", "5": "busy", "1": "no_answer"}


class CallBackError(Exception):
    """The call-back cannot be placed; ``reason`` is fit to show the agent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def outbound_dial(e164: str) -> str | None:
    """``PJSIP/<digits>@hotline-outbound``: a Chinese number as dialled inside China (0 before an area code), any
    other with 00 and its country code; None for what is not a valid number."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if number.country_code == 86:
        digits = "".join(ch for ch in phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
                         if ch.isdigit())
    else:
        digits = f"00{number.country_code}{phonenumbers.national_significant_number(number)}"
    return f"PJSIP/{digits}@{OUTBOUND_ENDPOINT}"


def callback_outcome(dial_status: str) -> str:
    """A call-back attempt's outcome from the citizen leg's DIALSTATUS."""
    return _DIALSTATUS.get(dial_status.upper(), "failed")


class OutboundCalls:
    """Places call-backs on an agent's request and return calls when they are due; records how each ended."""

    def __init__(self, ami, store, settings: AfterCallSection, *, hotline_number: str, tz: tzinfo,
                 clock: Callable[[], datetime], poll_s: float = POLL_S) -> None:
        self.ami = ami
        self.store = store
        self.settings = settings
        self.hotline_number = hotline_number
        self.tz = tz
        self.clock = clock
        self.poll_s = poll_s
        self._callbacks: dict[int, str] = {}                     # task id -> agent, until its end is reported
        self._ringing: dict[int, float] = {}                     # task id -> when the agent's phone was rung
        self._returns: dict[int, asyncio.TimerHandle] = {}       # return call id -> its lost-event timer
        self._poller: asyncio.Task | None = None

    def attach(self) -> None:
        self.ami.on_event("UserEvent", self.on_event)

    async def start(self) -> None:
        """Tries interrupted by the last stop wait again; then due return calls are placed every ``poll_s``."""
        await self.store.requeue_interrupted_return_calls(at=self.clock())
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever(), name="return-calls")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        for timer in self._returns.values():
            timer.cancel()

    # -- call-backs ---------------------------------------------------------------------------------------------

    async def call_back(self, task_id: int, *, agent: str) -> None:
        """Ring ``agent``'s phone, then the task's caller. CallBackError when it cannot be placed."""
        task = await self.store.callback_task(task_id)
        if task is None or task["state"] != "open":
            raise CallBackError("no such open call-back task")
        dial = outbound_dial(task["number"])
        if dial is None:
            raise CallBackError("the caller's number cannot be dialled")
        rung = self._ringing.get(task_id)
        if rung is not None and time.monotonic() - rung < self.settings.ring_s + _EVENT_GRACE_S:
            raise CallBackError("this call-back is already ringing")
        self._callbacks[task_id] = agent
        self._ringing[task_id] = time.monotonic()
        try:
            await self.ami.action({
                "Action": "Originate", "Channel": f"PJSIP/{agent}", "Context": CALLBACK_CONTEXT, "Exten": "s",
                "Priority": "1", "Async": "true", "Timeout": str(self.settings.ring_s * 1000),
                "CallerID": f"回访 <{self.hotline_number}>",
                "Variable": f"{CALLBACK_TASK_VAR}={task_id},{OUTBOUND_DIAL_VAR}={dial}",
            })
        except Exception:
            self._callbacks.pop(task_id, None)
            self._ringing.pop(task_id, None)
            raise CallBackError("the phone system did not take the call") from None
        log.info("event=callback_placed task=%s agent=%s", task_id, agent)

    # -- return calls -------------------------------------------------------------------------------------------

    async def place_due_return_calls(self) -> int:
        """Place the return calls that are due now, within calling hours and the concurrency bound."""
        now = self.clock()
        s = self.settings
        if next_calling_time(now, start=s.calling_from, end=s.calling_until, tz=self.tz) != now:
            return 0
        room = MAX_RETURN_CALLS - len(self._returns)
        placed = 0
        for row in await self.store.due_return_calls(now, limit=max(0, room)):
            if not await self.store.start_return_call(row["id"], at=now):
                continue
            dial = outbound_dial(row["number"])
            if dial is None:
                await self._return_ended(row["id"], "failed", attempts=s.return_call_attempts)
                continue
            self._returns[row["id"]] = asyncio.get_running_loop().call_later(
                s.ring_s + _EVENT_GRACE_S, lambda rid=row["id"]: asyncio.ensure_future(self._lost(rid)))
            try:
                await self.ami.action({
                    "Action": "Originate", "Channel": dial, "Context": RETURN_CALL_CONTEXT, "Exten": "s",
                    "Priority": "1", "Async": "true", "Timeout": str(s.ring_s * 1000),
                    "CallerID": f"{self.hotline_number} <{self.hotline_number}>",
                    "Variable": f"{RETURN_CALL_VAR}={row['id']},{TICKET_ID_VAR}={row['ticket_id']}",
                })
            except Exception as exc:  # noqa: BLE001 - AMI down: this try failed, the next one is scheduled
                log.warning("event=return_call_not_placed id=%s error=%s", row["id"], type(exc).__name__)
                await self._return_ended(row["id"], "failed", attempts=row["attempts"] + 1)
                continue
            placed += 1
            log.info("event=return_call_placed id=%s ticket=%s attempt=%d", row["id"], row["ticket_id"],
                     row["attempts"] + 1)
        return placed

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.place_due_return_calls()
            except Exception as exc:  # noqa: BLE001 - a bad round (store busy): the next poll tries again
                log.error("event=return_calls_poll_failed error=%s", type(exc).__name__)
            await asyncio.sleep(self.poll_s)

    async def _lost(self, return_id: int) -> None:
        if return_id in self._returns:
            log.warning("event=return_call_event_lost id=%s", return_id)
            row = await self.store.return_call(return_id)
            await self._return_ended(return_id, "failed", attempts=row["attempts"] if row else 0)

    async def _return_ended(self, return_id: int, outcome: str, *, attempts: int) -> None:
        timer = self._returns.pop(return_id, None)
        if timer is not None:
            timer.cancel()
        s, now = self.settings, self.clock()
        state, next_at = after_try(outcome, attempts=attempts, max_attempts=s.return_call_attempts, at=now,
                                   retry_min=s.return_call_retry_min, start=s.calling_from, end=s.calling_until,
                                   tz=self.tz)
        await self.store.end_return_call(return_id, state=state, outcome=outcome, at=now, next_at=next_at)
        log.info("event=return_call_ended id=%s outcome=%s state=%s next=%s", return_id, outcome, state,
                 next_at.isoformat(timespec="minutes") if next_at else "-")

    # -- what the dialplan reports ------------------------------------------------------------------------------

    async def on_event(self, event: Mapping[str, Any]) -> None:
        name = str(event.get("UserEvent", "")).lower()
        try:
            if name == CALLBACK_EVENT.lower():
                await self._on_callback(event)
            elif name == RETURN_CALL_EVENT.lower():
                await self._on_return_call(event)
        except Exception as exc:  # noqa: BLE001 - one event's store write must not stop the AMI reader
            log.error("event=outbound_event_failed user_event=%s error=%s", name, type(exc).__name__)

    async def _on_callback(self, event: Mapping[str, Any]) -> None:
        task_id, stage = row_id(event.get("Task")), str(event.get("Stage") or "")
        if task_id is None:
            return
        self._ringing.pop(task_id, None)     # answered or not: no longer ringing
        if stage == "agent_answered":
            log.info("event=callback_agent_answered task=%s", task_id)
            return
        agent = self._callbacks.pop(task_id, None)
        if stage in {"agent_unavailable", "agent_gone"}:
            # the agent's phone did not answer, or the agent left before the caller was dialled: no attempt
            log.info("event=callback_not_started task=%s reason=%s", task_id, stage)
            return
        task = await self.store.callback_task(task_id)
        if task is None or task["state"] != "open":
            return
        outcome = callback_outcome(stage)
        await self.store.record_callback_attempt(task_id, agent=agent or task["assigned_to"] or "unknown",
                                                 outcome=outcome, at=self.clock())
        log.info("event=callback_ended task=%s outcome=%s", task_id, outcome)

    async def _on_return_call(self, event: Mapping[str, Any]) -> None:
        return_id, stage = row_id(event.get("Id")), str(event.get("Stage") or "")
        if return_id is None or return_id not in self._returns:
            return
        row = await self.store.return_call(return_id)
        attempts = row["attempts"] if row else 0
        if stage == "answered":
            await self._return_ended(return_id, "answered", attempts=attempts)
        elif stage == "failed":
            await self._return_ended(return_id, _REASONS.get(str(event.get("Reason") or ""), "failed"),
                                     attempts=attempts)
