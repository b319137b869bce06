"""The satisfaction survey as data, and the pure decisions around it: who is asked, what a key means, and what a
rating sets off.

The national "good/bad review" rules for government services (国办发〔2019〕51号) rate a service on five levels;
the Zhanjiang 12345 rules, art. 15, ask the hotline to follow up a caller who is not satisfied. The survey is asked
after the intake (一次一评: the agent hangs up, the caller stays on the line) and after the handling (一事一评: an
automated return call once the ticket is done). No I/O here: ``gateway.aftercall.survey_flow`` plays the prompts.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from types import MappingProxyType

__all__ = [
    "DISSATISFIED", "RATING_LABELS", "Survey", "SurveyKind", "SkipReason", "needs_callback", "rating_for_key",
    "survey_skip_reason",
]

# 1 非常满意 … 5 非常不满意: the key a caller presses is the level.
RATING_LABELS: Mapping[int, str] = MappingProxyType({
    1: "very_satisfied", 2: "satisfied", 3: "basically_satisfied", 4: "dissatisfied", 5: "very_dissatisfied"})
DISSATISFIED = frozenset({4, 5})


class SurveyKind(str, Enum):
    INTAKE = "intake"        # after the agent hangs up (一次一评)
    HANDLING = "handling"    # the return call once the ticket is done (一事一评)


@dataclass(frozen=True)
class Survey:
    """The ``[survey]`` table of the menu file (ivr/menu.toml; its defaults are the parser's, ``ivr.menu``)."""
    enabled: bool
    prompt: str                    # "please rate: 1 very satisfied ... 5 very dissatisfied"
    retry_prompt: str              # after a key outside ``keys``
    thanks_prompt: str             # after a rating
    timeout_ms: int                # wait for a key after the prompt
    keys: Mapping[str, int]        # key -> rating 1..5
    max_invalid: int               # this many invalid keys: "not rated"
    cap_hours: int                 # a caller is asked at most once in this many hours (0: every call)
    callback_due_working_days: int  # a dissatisfied rating's call-back is due within this many working days
    return_prompt: str | None = None   # the return call's opening ("about your ticket ..."), before ``prompt``

    def prompts(self) -> list[tuple[str, str]]:
        """(field, prompt name) for every prompt the survey can play."""
        refs = [("prompt", self.prompt), ("retry_prompt", self.retry_prompt), ("thanks_prompt", self.thanks_prompt)]
        if self.return_prompt:
            refs.append(("return_prompt", self.return_prompt))
        return refs


class SkipReason(str, Enum):
    DISABLED = "disabled"
    NOT_ANSWERED = "not_answered"      # no agent took the call: there is no service to rate
    LINKAGE = "linkage"                # handed to a linked centre (art. 14): that centre's service, not ours
    REFUSED = "refused"                # a restricted number (art. 9)
    RECENTLY_ASKED = "recently_asked"  # within the per-caller cap
    NO_NUMBER = "no_number"            # anonymous: the cap cannot be kept, and nobody could be called back


def survey_skip_reason(survey: Survey | None, *, answered: bool, handed_to_centre: bool, refused: bool,
                       has_number: bool, last_asked: datetime | None, now: datetime) -> SkipReason | None:
    """Why this caller is not asked after the intake, or None to ask."""
    if survey is None or not survey.enabled:
        return SkipReason.DISABLED
    if refused:
        return SkipReason.REFUSED
    if handed_to_centre:
        return SkipReason.LINKAGE
    if not answered:
        return SkipReason.NOT_ANSWERED
    if not has_number:
        return SkipReason.NO_NUMBER
    if last_asked is not None and survey.cap_hours and now - last_asked < timedelta(hours=survey.cap_hours):
        return SkipReason.RECENTLY_ASKED
    return None


def rating_for_key(survey: Survey, key: str | None) -> int | None:
    """The rating a key stands for; None for no key or a key outside the survey's keys (a retry, never an
    error)."""
    if not isinstance(key, str):
        return None
    return survey.keys.get(key)


def needs_callback(rating: int | None) -> bool:
    """不满意 and 非常不满意 are followed up by an agent's call-back (art. 15)."""
    return rating in DISSATISFIED
