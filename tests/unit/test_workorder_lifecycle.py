"""gateway.workorder.lifecycle: the handling steps the rules allow (art. 10, 11, 13), on a fixed calendar."""
from __future__ import annotations

from datetime import date

import pytest

from gateway.workorder.lifecycle import Handling, TransitionRefused, UnknownStatus, next_handling
from ivr.triage.deadline import calendar_from

# Mon 2026-11-30 .. ; Sat/Sun off, and Wed 2026-12-02 a holiday
CAL = calendar_from(holidays=[date(2026, 12, 2)])
MON = date(2026, 11, 30)


def step(current, status, *, on=MON, **kw):
    return next_handling(current, status, on=on, calendar=CAL, **kw)


def test_a_complaint_transferred_on_monday_is_due_15_working_days_later_skipping_the_holiday():
    received = step(None, "received", request_type="complaint")
    assert received == Handling(status="received", request_type="complaint")
    sent = step(received, "transferred", unit="市住建局")
    assert sent.unit == "市住建局" and sent.unit_received == MON
    assert sent.due == date(2026, 12, 22)     # 15 working days, Dec 2 off
    assert sent.extensions == 0


def test_two_extensions_each_add_the_period_and_a_third_is_refused():
    sent = step(step(None, "received", request_type="consultation"), "transferred", unit="市人社局")
    assert sent.due == date(2026, 12, 3)      # Tue 1, (Wed 2 holiday), Thu 3
    once = step(sent, "extended")
    twice = step(once, "extended")
    assert (once.due, twice.due) == (date(2026, 12, 7), date(2026, 12, 9))
    assert twice.extensions == 2 and twice.status == "extended"
    with pytest.raises(TransitionRefused, match="already extended 2 times"):
        step(twice, "extended")


def test_a_return_within_two_working_days_is_allowed_and_the_next_unit_starts_a_new_period():
    sent = step(step(None, "received", request_type="help"), "transferred", unit="A区")
    back = step(sent, "returned", on=date(2026, 12, 3))       # Tue 1, Thu 3: the second working day
    assert back.status == "returned" and back.due is None and back.unit == "A区"
    with pytest.raises(TransitionRefused, match="another unit"):
        step(back, "transferred", unit="A区", on=date(2026, 12, 3))
    again = step(back, "transferred", unit="B区", on=date(2026, 12, 3))
    assert again.unit_received == date(2026, 12, 3) and again.due == date(2026, 12, 17)


def test_a_return_after_the_window_is_refused_with_the_last_day():
    sent = step(step(None, "received", request_type="help"), "transferred", unit="A区")
    with pytest.raises(TransitionRefused, match="by 2026-12-03"):
        step(sent, "returned", on=date(2026, 12, 4))


def test_done_then_closed_and_nothing_after_closed():
    sent = step(None, "transferred", unit="A区", request_type="report")
    closed = step(step(sent, "done"), "closed")
    assert closed.status == "closed" and closed.unit == "A区" and closed.due == sent.due
    with pytest.raises(TransitionRefused, match="closed"):
        step(closed, "transferred", unit="B区")


@pytest.mark.parametrize("current,status", [
    (None, "done"), (Handling("received"), "extended"), (Handling("received"), "closed"),
    (Handling("returned", unit="A"), "done"), (Handling("done"), "extended"), (Handling("received"), "received"),
])
def test_steps_the_life_cycle_does_not_allow_are_refused_naming_what_is_allowed(current, status):
    with pytest.raises(TransitionRefused, match="may become"):
        step(current, status, unit="A")


def test_an_unknown_status_and_a_transfer_without_unit_are_refused():
    with pytest.raises(UnknownStatus):
        step(None, "lost")
    with pytest.raises(TransitionRefused, match="names the unit"):
        step(Handling("received"), "transferred", unit="  ")


def test_a_ticket_of_unknown_type_has_no_due_date_and_cannot_be_extended():
    sent = step(Handling("received"), "transferred", unit="A")
    assert sent.due is None
    with pytest.raises(TransitionRefused, match="no period"):
        step(sent, "extended")
