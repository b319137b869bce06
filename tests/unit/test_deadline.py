import logging
from datetime import date, datetime, timedelta, timezone

import chinese_calendar
import pytest
from hypothesis import given, strategies as st

from ivr.triage.deadline import (
    CalendarError,
    WorkingDayCalendar,
    add_working_days,
    calendar_from,
    due_date,
    load_calendar,
)
from gateway.basics.clock import SHANGHAI


def official_working_days_after(start: date, n: int) -> date:
    day, counted = start, 0
    while counted < n:
        day += timedelta(days=1)
        counted += chinese_calendar.is_workday(day)
    return day


def test_national_day_2026_week_is_off_per_the_package_and_per_the_state_council():
    for d in range(1, 8):
        assert not WorkingDayCalendar().is_working_day(date(2026, 10, d))
    # A concrete case known independently: the 2026 National Day holiday runs 10-01..10-07.
    assert [chinese_calendar.is_holiday(date(2026, 10, d)) for d in range(1, 8)] == [True] * 7


def test_consultation_received_before_national_day_is_due_after_the_holiday():
    received = datetime(2026, 9, 30, 16, 0, tzinfo=SHANGHAI)
    due = due_date("consultation", received)
    assert due == official_working_days_after(date(2026, 9, 30), 2)
    assert due > date(2026, 10, 7)


def test_mid_autumn_2026_is_skipped():
    holiday = date(2026, 9, 25)
    assert chinese_calendar.is_holiday(holiday) and holiday.weekday() < 5
    assert add_working_days(date(2026, 9, 24), 1) == date(2026, 9, 28)


def test_make_up_weekend_days_count_as_working_days():
    make_up = [d for d in chinese_calendar.get_workdays(date(2026, 1, 1), date(2026, 12, 31), include_weekends=True)
               if d.weekday() >= 5]
    assert make_up, "chinese_calendar lists 2026 调休 weekend workdays"
    spring = [d for d in make_up if d.month == 2]
    assert spring, "Spring Festival 2026 has make-up weekend workdays"
    for day in make_up:
        assert WorkingDayCalendar().is_working_day(day)
        assert add_working_days(day - timedelta(days=1), 1) == day


def test_spring_festival_2026_complaint_matches_the_official_calendar():
    received = datetime(2026, 2, 12, 9, 0, tzinfo=SHANGHAI)
    expected = official_working_days_after(date(2026, 2, 12), 15)
    assert due_date("complaint", received) == expected
    holidays = [d for d in chinese_calendar.get_holidays(date(2026, 2, 13), expected, include_weekends=False)]
    assert holidays, "the span crosses weekday holidays"
    assert (expected - date(2026, 2, 12)).days > 21    # 15 plain working days would be 3 weeks


@pytest.mark.parametrize("kind,days", [("consultation", 2), ("help", 10), ("suggestion", 10), ("complaint", 15),
                                       ("report", 15)])
def test_article_11_working_days_per_type(kind, days):
    received = datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)     # a Monday without holidays after it
    assert due_date(kind, received) == official_working_days_after(date(2026, 3, 2), days)


def test_unknown_type_has_no_due_date():
    assert due_date(None, datetime(2026, 3, 2, tzinfo=SHANGHAI)) is None
    assert due_date("unspecified", datetime(2026, 3, 2, tzinfo=SHANGHAI)) is None


def test_receipt_day_is_taken_in_shanghai_time():
    late_utc = datetime(2026, 3, 2, 17, 0, tzinfo=timezone.utc)    # 01:00 on 3 March in Shanghai
    assert due_date("consultation", late_utc) == add_working_days(date(2026, 3, 3), 2)


def test_received_on_a_weekend_counts_from_the_next_working_day():
    assert add_working_days(date(2026, 3, 7), 2) == date(2026, 3, 10)   # Saturday -> Mon, Tue


def test_year_boundary_into_2027_falls_back_to_monday_to_friday_with_one_warning(caplog):
    calendar = WorkingDayCalendar()
    with caplog.at_level(logging.WARNING, logger="ivr.triage.deadline"):
        due = add_working_days(date(2026, 12, 18), 15, calendar)     # Friday
        add_working_days(date(2026, 12, 28), 10, calendar)
    # 2026-12-21..31: 9 weekdays; 2027-01-01 is an official holiday but unknown to the package, so counted.
    assert due == date(2027, 1, 8)
    warnings = [r for r in caplog.records if "working_day_calendar_fallback" in r.getMessage()]
    assert len(warnings) == 1 and "year=2027" in warnings[0].getMessage()


def test_office_file_adds_the_new_year_schedule(tmp_path, caplog):
    path = tmp_path / "working_days.toml"
    path.write_text("[years.2027]\nholidays = [2027-01-01]\nworkdays = [2027-01-09]\n")
    calendar = load_calendar(path)
    with caplog.at_level(logging.WARNING, logger="ivr.triage.deadline"):
        assert not calendar.is_working_day(date(2027, 1, 1))
        assert calendar.is_working_day(date(2027, 1, 9))       # a Saturday
        assert calendar.is_working_day(date(2027, 1, 4))
    assert not caplog.records
    assert add_working_days(date(2026, 12, 31), 1, calendar) == date(2027, 1, 4)


def test_office_file_can_correct_a_known_year():
    calendar = calendar_from(holidays=[date(2026, 3, 3)])
    assert add_working_days(date(2026, 3, 2), 1, calendar) == date(2026, 3, 4)


@pytest.mark.parametrize("text,field", [
    ("[years.27]\nholidays = []\n", "years.27"),
    ("[years.2027]\nholidays = [\"2027-01-01\"]\n", "years.2027.holidays[0]"),
    ("[years.2027]\nholidays = [2028-01-01]\n", "years.2027.holidays[0]"),
    ("[years.2027]\nholiday = [2027-01-01]\n", "years.2027.holiday"),
    ("[years.2027]\nholidays = [2027-01-02]\nworkdays = [2027-01-02]\n", "years"),
    ("other = 1\n", "other"),
    ("[years.2027\n", "<file>"),
])
def test_bad_working_day_file_names_file_field_and_reason(tmp_path, text, field):
    path = tmp_path / "wd.toml"
    path.write_text(text)
    with pytest.raises(CalendarError) as info:
        load_calendar(path)
    assert info.value.file == str(path) and info.value.field_path == field and info.value.reason


def test_negative_day_count_is_refused():
    with pytest.raises(ValueError):
        add_working_days(date(2026, 3, 2), -1)


@given(st.dates(min_value=date(2004, 1, 1), max_value=date(2026, 11, 30)), st.integers(0, 20))
def test_due_date_is_a_working_day_with_exactly_n_working_days_after_start(start, n):
    due = add_working_days(start, n)
    if n == 0:
        assert due == start
        return
    assert chinese_calendar.is_workday(due)
    between = sum(chinese_calendar.is_workday(start + timedelta(days=i)) for i in range(1, (due - start).days + 1))
    assert between == n

