"""The satisfaction survey: menu data, who is asked, what a key means, the ratings and call-back tasks it files."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import pytest

from gateway.agi.replies import AGIHangup
from gateway.aftercall.survey_flow import SurveyFlow, ask_rating
from gateway.basics.clock import SHANGHAI
from gateway.store.aftercall import RedoRefused
from ivr.menu import DEFAULT_MENU_PATH, MenuError, load_menu, parse_menu
from ivr.survey import SkipReason, SurveyKind, needs_callback, rating_for_key, survey_skip_reason
from ivr.triage.deadline import calendar_from

MENU = load_menu(DEFAULT_MENU_PATH)
SURVEY = MENU.survey
DIR = "/prompts"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)     # a Tuesday


class Session:
    """The AGI media commands the survey uses, answered from a script of keys (None: nothing pressed); running
    off the end of the script is the caller hanging up."""

    def __init__(self, keys, env=None):
        self.keys = list(keys)
        self.played = []
        self.env = env or {}

    def _key(self):
        if not self.keys:
            raise AGIHangup("caller gone")
        return self.keys.pop(0)

    async def stream_file(self, name, escape_digits=""):
        self.played.append(name.rsplit("/", 1)[1])
        return self._key() if escape_digits else None

    async def wait_for_digit(self, timeout_ms):
        return self._key()


def test_the_packaged_menu_has_a_five_level_survey():
    assert SURVEY.enabled and dict(SURVEY.keys) == {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
    assert SURVEY.cap_hours == 24 and SURVEY.max_invalid == 2
    assert ("survey.prompt", "survey_prompt") in MENU.prompt_refs()


@pytest.mark.parametrize("change, field", [
    ({"keys": {"1": 1, "2": 2, "3": 3, "4": 4}}, "survey.keys"),
    ({"keys": {"1": 1, "2": 2, "3": 3, "4": 4, "5": 6}}, "survey.keys.5"),
    ({"keys": {"1": 1, "2": 2, "3": 3, "4": 4, "55": 5}}, "survey.keys.55"),
    ({"enabled": "yes"}, "survey.enabled"),
    ({"cap_hours": -1}, "survey.cap_hours"),
    ({"colour": "blue"}, "survey.colour"),
    ({"prompt": "Survey Prompt"}, "survey.prompt"),
])
def test_bad_survey_data_is_refused_with_its_field(change, field):
    import tomllib
    raw = tomllib.loads(DEFAULT_MENU_PATH.read_text(encoding="utf-8"))
    raw["survey"].update(change)
    with pytest.raises(MenuError) as error:
        parse_menu(raw, source="menu.toml")
    assert field in str(error.value)


def test_who_is_asked():
    ask = dict(answered=True, handed_to_centre=False, refused=False, has_number=True, last_asked=None, now=NOW)
    assert survey_skip_reason(SURVEY, **ask) is None
    assert survey_skip_reason(SURVEY, **{**ask, "answered": False}) is SkipReason.NOT_ANSWERED
    assert survey_skip_reason(SURVEY, **{**ask, "handed_to_centre": True}) is SkipReason.LINKAGE
    assert survey_skip_reason(SURVEY, **{**ask, "refused": True}) is SkipReason.REFUSED
    assert survey_skip_reason(SURVEY, **{**ask, "has_number": False}) is SkipReason.NO_NUMBER
    recently = {**ask, "last_asked": NOW - timedelta(hours=23)}
    assert survey_skip_reason(SURVEY, **recently) is SkipReason.RECENTLY_ASKED
    assert survey_skip_reason(SURVEY, **{**ask, "last_asked": NOW - timedelta(hours=25)}) is None
    from dataclasses import replace
    assert survey_skip_reason(replace(SURVEY, cap_hours=0), **recently) is None
    assert survey_skip_reason(replace(SURVEY, enabled=False), **ask) is SkipReason.DISABLED
    assert survey_skip_reason(None, **ask) is SkipReason.DISABLED


def test_keys_and_ratings():
    assert [rating_for_key(SURVEY, k) for k in "1234509*#"] == [1, 2, 3, 4, 5, None, None, None, None]
    assert rating_for_key(SURVEY, None) is None and rating_for_key(SURVEY, ["4"]) is None
    assert [needs_callback(r) for r in (1, 2, 3, 4, 5, None)] == [False, False, False, True, True, False]


@pytest.mark.parametrize("keys, rating, played", [
    (["4"], 4, ["survey_prompt", "survey_thanks"]),
    ([None, "1"], 1, ["survey_prompt", "survey_thanks"]),          # pressed after the prompt, while waiting
    ([None, None], None, ["survey_prompt"]),                        # nothing pressed: not rated
    (["9", "5"], 5, ["survey_prompt", "survey_retry", "survey_thanks"]),
    (["9", "#"], None, ["survey_prompt", "survey_retry"]),          # two invalid keys: not rated
])
async def test_asking(keys, rating, played):
    session = Session(keys)
    assert await ask_rating(session, SURVEY, prompt_dir=DIR) == rating
    assert session.played == played


async def test_a_caller_who_hangs_up_is_not_rated():
    with pytest.raises(AGIHangup):
        await ask_rating(Session([]), SURVEY, prompt_dir=DIR)


async def an_answered_call(store, call_id="c1", number="+8613800138000", *, at=NOW) -> str:
    await store.enter_call(call_id=call_id, number=number, channel="PJSIP/caller-1", at=at)
    ticket = await store.queue_call(call_id, ivr_path=["3"], request_type="complaint", emergency=None, priority=0,
                                    ticket_query=None, ticket_type="complaint", due=None, at=at)
    await store.update_call(call_id, outcome="answered", agent="agent1", answered_at=at)
    return ticket


def flow(store, clock=lambda: NOW):
    return SurveyFlow(store, SURVEY, prompt_dir=DIR, clock=clock, calendar=calendar_from(holidays=[date(2026, 12, 2)]))


async def test_a_dissatisfied_caller_gets_a_call_back_task_due_in_working_days(store, caplog):
    ticket = await an_answered_call(store)
    session = Session(["4"], env={"agi_uniqueid": "c1"})
    with caplog.at_level(logging.INFO):
        await flow(store).intake(session)
    [asked] = await store.ratings(call_id="c1")
    assert (asked["kind"], asked["rating"], asked["ticket_id"]) == ("intake", 4, ticket)
    [task] = await store.callback_tasks()
    # 2 working days after Tuesday 1 December with Wednesday a holiday: Friday 4 December
    assert task["ticket_id"] == ticket and task["due"] == date(2026, 12, 4) and task["state"] == "open"
    assert task["reason"] == "intake_rating_4_dissatisfied"
    assert "13800138000" not in caplog.text


async def test_a_satisfied_caller_makes_no_task_and_the_cap_holds_for_a_day(store):
    await an_answered_call(store, "c1")
    await flow(store).intake(Session(["2"], env={"agi_uniqueid": "c1"}))
    assert await store.callback_tasks() == []
    await an_answered_call(store, "c2")
    second = Session(["5"], env={"agi_uniqueid": "c2"})
    await flow(store, clock=lambda: NOW + timedelta(hours=2)).intake(second)
    assert second.played == [] and await store.ratings(call_id="c2") == []
    third = Session(["5"], env={"agi_uniqueid": "c2"})
    await flow(store, clock=lambda: NOW + timedelta(hours=25)).intake(third)
    assert [r["rating"] for r in await store.ratings(call_id="c2")] == [5]


async def test_unanswered_refused_and_linked_calls_are_not_asked(store):
    await store.enter_call(call_id="q1", number="+8613800138001", channel="x", at=NOW)   # never answered
    await store.add_restriction("+8613800138002", reason="abuse", operator="op", days=30, decided_at=NOW)
    await store.enter_call(call_id="r1", number="+8613800138002", channel="x", at=NOW)   # refused
    for call_id in ("q1", "r1", "unknown-call"):
        session = Session(["4"], env={"agi_uniqueid": call_id})
        await flow(store).intake(session)
        assert session.played == []
    assert await store.ratings() == []


async def test_hanging_up_or_no_key_leaves_the_survey_not_rated(store):
    await an_answered_call(store)
    await flow(store).intake(Session([], env={"agi_uniqueid": "c1"}))
    [asked] = await store.ratings(call_id="c1")
    assert asked["rating"] is None and asked["rated_at"] is None


async def test_a_ticket_is_redone_at_most_once_and_the_redo_rating_counts(store):
    ticket = await an_answered_call(store)
    await flow(store).intake(Session(["5"], env={"agi_uniqueid": "c1"}))
    [task] = await store.callback_tasks()
    await store.assign_callback(task["id"], agent="agent2")
    assert [t["id"] for t in await store.callback_tasks(agent="agent2")] == [task["id"]]
    assert await store.callback_tasks(agent="agent1") == []
    await store.record_callback_attempt(task["id"], agent="agent2", outcome="no_answer", at=NOW)
    await store.record_callback_attempt(task["id"], agent="agent2", outcome="reached", at=NOW)
    with pytest.raises(ValueError):
        await store.record_callback_attempt(task["id"], agent="agent2", outcome="maybe", at=NOW)
    assert [a["outcome"] for a in await store.callback_attempts(task["id"])] == ["no_answer", "reached"]
    first = await store.open_survey(SurveyKind.HANDLING, call_id="rc1", ticket_id=ticket, number="+8613800138000",
                                    at=NOW)
    await store.record_rating(first, 4, at=NOW, callback_due=date(2026, 12, 4))
    await store.finish_callback(task["id"], agent="agent2", at=NOW, redo=True)
    assert await store.ticket_redone(ticket)
    redo = await store.open_survey(SurveyKind.HANDLING, call_id="rc2", ticket_id=ticket, number="+8613800138000",
                                   at=NOW)
    await store.record_rating(redo, 2, at=NOW, callback_due=date(2026, 12, 4))
    later = await store.open_survey(SurveyKind.HANDLING, call_id="rc3", ticket_id=ticket, number="+8613800138000",
                                    at=NOW)
    assert await store.counted_handling_rating(ticket) == 2
    assert later is not None
    second_task = next(t for t in await store.callback_tasks() if t["call_id"] == "rc1")
    with pytest.raises(RedoRefused):
        await store.finish_callback(second_task["id"], agent="agent2", at=NOW, redo=True)
    assert (await store.callback_task(second_task["id"]))["state"] == "open"     # nothing written
    with pytest.raises(LookupError):
        await store.finish_callback(task["id"], agent="agent2", at=NOW)           # done already


class ReturnCallSession(Session):
    def __init__(self, keys, env, variables):
        super().__init__(keys, env)
        self.variables = variables

    async def get_variable(self, name):
        return self.variables.get(name)


async def test_the_return_call_opens_with_the_ticket_then_asks_and_files_the_handling_rating(store):
    ticket = await an_answered_call(store)
    await store.report_ticket_status(ticket, "transferred", unit="市住建局", at=NOW, source="test")
    await store.report_ticket_status(ticket, "done", at=NOW, source="test")
    [row] = await store.return_calls(ticket_id=ticket)
    session = ReturnCallSession(["3"], {"agi_uniqueid": "rc-1"}, {"HOTLINE_RETURN_CALL": str(row["id"])})
    await flow(store).return_call(session)
    assert session.played == ["survey_return_intro", "survey_prompt", "survey_thanks"]
    [handling] = [r for r in await store.ratings(ticket_id=ticket) if r["kind"] == "handling"]
    assert (handling["call_id"], handling["rating"]) == ("rc-1", 3)
    assert await store.counted_handling_rating(ticket) == 3


@pytest.mark.parametrize("variable", [None, "", "abc", "999"])
async def test_a_return_call_without_its_row_asks_nothing(store, variable):
    session = ReturnCallSession(["3"], {"agi_uniqueid": "rc-2"}, {"HOTLINE_RETURN_CALL": variable})
    await flow(store).return_call(session)
    assert session.played == [] and await store.ratings() == []
