"""The satisfaction survey over FastAGI: script ``survey``, on the caller's channel once the agent has hung up
(Queue option ``c``), and script ``return_call``, on the citizen's leg of the automated return call once the ticket
is done (``gateway.aftercall.outbound``).

Who is asked and what a key means are decided in ``ivr.survey``; this module plays the prompts, reads the key and
files the rating. The call is over for the hotline by then: whatever fails here (store, prompts, the caller hanging
up) ends the survey as "not rated" and never raises into the AGI server.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from gateway.agi.replies import AGIHangup
from gateway.basics.row_ids import row_id
from gateway.contract import RETURN_CALL_VAR
from gateway.store.database import Store
from ivr.survey import Survey, SurveyKind, needs_callback, rating_for_key, survey_skip_reason
from ivr.triage.deadline import DEFAULT_CALENDAR, WorkingDayCalendar, add_working_days, receipt_date

__all__ = ["SurveyFlow", "ask_rating"]

log = logging.getLogger("gateway.aftercall.survey")


class SurveySession(Protocol):
    async def stream_file(self, name: str, escape_digits: str = "") -> str | None: ...
    async def wait_for_digit(self, timeout_ms: int) -> str | None: ...


async def ask_rating(session: SurveySession, survey: Survey, *, prompt_dir: str,
                     opening: str | None = None) -> int | None:
    """Play the survey and return the caller's 1-5, or None: no key in time, ``max_invalid`` keys outside the
    survey's keys. AGIHangup (the caller left) reaches the caller of this function."""
    keys = "".join(sorted(survey.keys))
    if opening:
        await session.stream_file(_path(prompt_dir, opening))
    prompt, invalid = survey.prompt, 0
    while True:
        key = await session.stream_file(_path(prompt_dir, prompt), "0123456789*#")
        if not key:
            key = await session.wait_for_digit(survey.timeout_ms)
        if not key:
            return None
        if (rating := rating_for_key(survey, key)) is not None:
            await session.stream_file(_path(prompt_dir, survey.thanks_prompt))
            return rating
        invalid += 1
        log.info("event=survey_invalid_key key_allowed=%s invalid=%d", keys, invalid)
        if invalid >= survey.max_invalid:
            return None
        prompt = survey.retry_prompt


class SurveyFlow:
    """The FastAGI scripts of the survey; ``survey`` None or disabled: nobody is asked."""

    def __init__(self, store: Store, survey: Survey | None, *, prompt_dir: str, clock: Callable[[], datetime],
                 calendar: WorkingDayCalendar = DEFAULT_CALENDAR) -> None:
        self.store = store
        self.survey = survey
        self.prompt_dir = prompt_dir
        self.clock = clock
        self.calendar = calendar

    async def intake(self, agi) -> None:
        """Script ``survey``: the caller whose agent has just hung up (一次一评)."""
        call_id = agi.env.get("agi_uniqueid") or ""
        try:
            context = await self.store.survey_context(call_id)
            skip = survey_skip_reason(self.survey, answered=context.answered,
                                      handed_to_centre=context.handed_to_centre, refused=context.refused,
                                      has_number=context.number is not None, last_asked=context.last_asked,
                                      now=self.clock())
            if skip is not None:
                log.info("call=%s event=survey_skipped reason=%s", call_id, skip.value)
                return
            await self._ask(agi, SurveyKind.INTAKE, call_id=call_id, ticket_id=context.ticket_id,
                            number=context.number)
        except AGIHangup:
            log.info("call=%s event=survey_not_rated reason=hung_up", call_id)
        except Exception as exc:  # noqa: BLE001 - the call is over; a survey fault must not become a crash
            log.error("call=%s event=survey_failed error=%s", call_id, type(exc).__name__)

    async def return_call(self, agi) -> None:
        """Script ``return_call``: the citizen answered the automated return call on a done ticket (一事一评)."""
        call_id = agi.env.get("agi_uniqueid") or ""
        try:
            return_id = await agi.get_variable(RETURN_CALL_VAR)
            row = await self.store.return_call(rid) if (rid := row_id(return_id)) is not None else None
            if row is None or self.survey is None or not self.survey.enabled:
                log.info("call=%s event=return_call_without_survey return_call=%s", call_id, return_id or "-")
                return
            await self._ask(agi, SurveyKind.HANDLING, call_id=call_id, ticket_id=row["ticket_id"],
                            number=row["number"], opening=self.survey.return_prompt)
        except AGIHangup:
            log.info("call=%s event=survey_not_rated reason=hung_up", call_id)
        except Exception as exc:  # noqa: BLE001 - as in intake
            log.error("call=%s event=survey_failed error=%s", call_id, type(exc).__name__)

    async def _ask(self, agi, kind: SurveyKind, *, call_id: str, ticket_id: str | None, number: str | None,
                   opening: str | None = None) -> None:
        rating_id = await self.store.open_survey(kind, call_id=call_id, ticket_id=ticket_id, number=number,
                                                 at=self.clock())
        if rating_id is None:
            log.info("call=%s event=survey_skipped reason=asked_already", call_id)
            return
        log.info("call=%s event=survey_asked kind=%s ticket=%s", call_id, kind.value, ticket_id or "-")
        rating = await ask_rating(agi, self.survey, prompt_dir=self.prompt_dir, opening=opening)
        if rating is None:
            log.info("call=%s event=survey_not_rated reason=no_valid_key", call_id)
            return
        now = self.clock()
        due = add_working_days(receipt_date(now), self.survey.callback_due_working_days, self.calendar)
        task = await self.store.record_rating(rating_id, rating, at=now, callback_due=due)
        log.info("call=%s event=survey_rated kind=%s rating=%d callback_task=%s", call_id, kind.value, rating,
                 task if task is not None else ("none_no_number" if needs_callback(rating) else "-"))


def _path(prompt_dir: str, name: str) -> str:
    return f"{prompt_dir.rstrip('/')}/{name}"
