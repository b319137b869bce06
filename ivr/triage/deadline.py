"""Ticket due dates (article 11) in working days on the official Chinese calendar.

Article 11: consultation 2, help and suggestion 10, complaint and report 15 working days "自收到之日起". The
day of receipt is not counted: the due date is the n-th working day after the receipt date in Asia/Shanghai.

Working days come from chinese_calendar (State Council holidays and the 调休 weekend days that are worked).
chinese_calendar only knows the years it was released with (1.11: up to 2026) and raises NotImplementedError
for later ones, yet a complaint received in December is due in January. For such a year this module counts
Monday-Friday, logs one warning per year, and lets an office add the new schedule without a package upgrade:

    # working_days.toml (pass the path to load_calendar(); `hotline classify --working-days FILE`)
    [years.2027]
    holidays = [2027-01-01, 2027-02-08, 2027-02-09]   # days off, weekdays included
    workdays = [2027-02-06]                           # weekend days that are worked (调休)

A year listed in the file is taken as fully known (no warning); its entries override chinese_calendar too, so a
late correction of a known year is possible. Days not listed fall back to chinese_calendar, else Monday-Friday.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar

from gateway.basics.clock import SHANGHAI
from gateway.basics.data_errors import DataFileError, read_toml

DUE_WORKING_DAYS: Mapping[str, int] = {
    "consultation": 2,
    "help": 10,
    "suggestion": 10,
    "complaint": 15,
    "report": 15,
}
# 15 working days never span more than a few weeks; the bound stops a calendar that marks everything a holiday.
_MAX_SCAN_DAYS = 3660

log = logging.getLogger(__name__)


class CalendarError(DataFileError):
    """A working-day file that cannot be used; names the file, the field and the reason."""


@dataclass
class WorkingDayCalendar:
    """Official calendar plus an office's additions; years neither knows count Monday-Friday."""

    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    known_years: frozenset[int] = frozenset()
    source: str = "<chinese_calendar>"
    _warned_years: set[int] = field(default_factory=set, repr=False, compare=False)
    # chinese_calendar scans its whole holiday table on every call (min/max date check): remember answers.
    _known: dict[date, bool] = field(default_factory=dict, repr=False, compare=False)

    def is_working_day(self, day: date) -> bool:
        answer = self._known.get(day)
        if answer is None:
            answer = self._known[day] = self._look_up(day)
        return answer

    def _look_up(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if day.year not in self.known_years and day.year not in self._warned_years:
                self._warned_years.add(day.year)
                log.warning("event=working_day_calendar_fallback year=%d rule=monday_to_friday source=%s "
                            "hint=add_[years.%d]_to_a_working_days_file", day.year, self.source, day.year)
            return day.weekday() < 5


DEFAULT_CALENDAR = WorkingDayCalendar()


def add_working_days(start: date, n: int, calendar: WorkingDayCalendar = DEFAULT_CALENDAR) -> date:
    """The n-th working day after `start` (start itself is not counted); n = 0 gives start."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    day, counted = start, 0
    for _ in range(_MAX_SCAN_DAYS):
        if counted == n:
            return day
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    raise ValueError(f"no {n} working days within {_MAX_SCAN_DAYS} days after {start} ({calendar.source})")


def receipt_date(received: datetime) -> date:
    """The receipt day in Asia/Shanghai; a naive datetime is taken as Shanghai time already."""
    if received.tzinfo is None:
        return received.date()
    return received.astimezone(SHANGHAI).date()


def due_date(request_type: str | None, received: datetime,
             calendar: WorkingDayCalendar = DEFAULT_CALENDAR) -> date | None:
    """Article 11 due date for a request type; None when the type is unknown (an agent sets it)."""
    days = DUE_WORKING_DAYS.get(request_type or "")
    if days is None:
        return None
    return add_working_days(receipt_date(received), days, calendar)


def load_calendar(path: str | Path) -> WorkingDayCalendar:
    """chinese_calendar plus the holidays/workdays of a working-day file (format in the module docstring)."""
    file = str(path)
    raw = read_toml(path, CalendarError)
    return parse_calendar(raw, source=file)


def parse_calendar(raw: Mapping[str, object], *, source: str = "<working days>") -> WorkingDayCalendar:
    unknown = set(raw) - {"years"}
    if unknown:
        raise CalendarError(source, sorted(unknown)[0], "unknown field (expected only [years.YYYY] tables)")
    years = raw.get("years", {})
    if not isinstance(years, Mapping):
        raise CalendarError(source, "years", "must be a table of [years.YYYY] tables")
    holidays: set[date] = set()
    workdays: set[date] = set()
    known: set[int] = set()
    for year_key, table in years.items():
        at = f"years.{year_key}"
        if not (isinstance(year_key, str) and year_key.isdigit() and len(year_key) == 4):
            raise CalendarError(source, at, "the year must be four digits, e.g. [years.2027]")
        if not isinstance(table, Mapping):
            raise CalendarError(source, at, "must be a table with holidays = [...] and workdays = [...]")
        extra = set(table) - {"holidays", "workdays"}
        if extra:
            raise CalendarError(source, f"{at}.{sorted(extra)[0]}", "unknown field (expected holidays, workdays)")
        year = int(year_key)
        known.add(year)
        holidays |= _dates(table.get("holidays", []), year, f"{at}.holidays", source)
        workdays |= _dates(table.get("workdays", []), year, f"{at}.workdays", source)
    both = holidays & workdays
    if both:
        raise CalendarError(source, "years", f"{min(both).isoformat()} is listed as both holiday and workday")
    return WorkingDayCalendar(frozenset(holidays), frozenset(workdays), frozenset(known), source)


def _dates(values: object, year: int, at: str, source: str) -> set[date]:
    if not isinstance(values, list):
        raise CalendarError(source, at, "must be a list of dates (TOML dates like 2027-01-01, unquoted)")
    out = set()
    for i, value in enumerate(values):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise CalendarError(source, f"{at}[{i}]", f"{value!r} is not a TOML date like {year}-01-01")
        if value.year != year:
            raise CalendarError(source, f"{at}[{i}]", f"{value.isoformat()} is not in {year}")
        out.add(value)
    return out


def calendar_from(holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkingDayCalendar:
    """A calendar with extra days given in code (tests, one-off corrections)."""
    return WorkingDayCalendar(frozenset(holidays), frozenset(workdays))
