"""The life cycle of a ticket in the units' hands, as the work-order system reports it, and what each step does
to the ticket's unit and due date. Pure: the store keeps the result, the status API and the CLI call it.

Zhanjiang 12345 hotline rules:
- art. 10: the hotline transfers the ticket to a unit; a unit that finds the matter outside its duties applies to
  return it within 2 working days of receiving it, and the re-transferred ticket's period starts again;
- art. 11: the period is 2 working days for a consultation, 10 for help and suggestions, 15 for complaints and
  reports; a unit may extend at most twice, each time by the same period;
- art. 13: the hotline approves the unit's completion ("done") and then closes the ticket.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from ivr.triage.deadline import DEFAULT_CALENDAR, DUE_WORKING_DAYS, WorkingDayCalendar, add_working_days

__all__ = ["CLOSED", "DONE", "MAX_EXTENSIONS", "RETURN_WINDOW_WORKING_DAYS", "STATUSES", "Handling", "TransitionRefused",
           "UnknownStatus", "handling_json", "next_handling"]

STATUSES = ("received", "transferred", "returned", "extended", "done", "closed")
DONE, CLOSED = "done", "closed"
RETURN_WINDOW_WORKING_DAYS = 2     # art. 10
MAX_EXTENSIONS = 2                 # art. 11

# From each status, the statuses the work-order system may report next.
_NEXT: dict[str | None, frozenset[str]] = {
    None: frozenset({"received", "transferred"}),
    "received": frozenset({"transferred"}),
    "transferred": frozenset({"returned", "extended", "done"}),
    "returned": frozenset({"transferred"}),
    "extended": frozenset({"extended", "done"}),
    "done": frozenset({"closed"}),
    "closed": frozenset(),
}


class UnknownStatus(ValueError):
    """A status that is not one of STATUSES."""


class TransitionRefused(ValueError):
    """A step the life cycle does not allow; the message says why, for the work-order system's operator."""


@dataclass(frozen=True)
class Handling:
    """Where a ticket stands: its status, the unit that has it and since when, its due date and extensions."""

    status: str
    request_type: str | None = None
    unit: str | None = None
    unit_received: date | None = None
    due: date | None = None
    extensions: int = 0


def next_handling(current: Handling | None, status: str, *, on: date, unit: str | None = None,
                  request_type: str | None = None,
                  calendar: WorkingDayCalendar = DEFAULT_CALENDAR) -> Handling:
    """The ticket after the work-order system reports ``status`` on day ``on``.

    ``current`` is None for a ticket the system reports for the first time (its ``request_type`` then comes from
    the caller); ``unit`` names the unit a "transferred" ticket goes to. Raises UnknownStatus or
    TransitionRefused, never returns a ticket in a state the rules do not allow.
    """
    if status not in STATUSES:
        raise UnknownStatus(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
    was = current.status if current else None
    if status not in _NEXT[was]:
        allowed = ", ".join(sorted(_NEXT[was])) or "nothing (the ticket is closed)"
        raise TransitionRefused(f"a {was or 'new'} ticket cannot become {status}: it may become {allowed}")
    base = current or Handling(status="received", request_type=request_type)
    period = DUE_WORKING_DAYS.get(base.request_type or "")
    if status == "transferred":
        if not unit or not unit.strip():
            raise TransitionRefused("a transfer names the unit that receives the ticket")
        unit = unit.strip()
        if was == "returned" and unit == base.unit:
            raise TransitionRefused(f"the ticket was returned by {unit}: it goes to another unit (art. 10)")
        due = add_working_days(on, period, calendar) if period is not None else None
        return replace(base, status=status, unit=unit, unit_received=on, due=due, extensions=0)
    if status == "returned":
        window_end = add_working_days(base.unit_received or on, RETURN_WINDOW_WORKING_DAYS, calendar)
        if on > window_end:
            raise TransitionRefused(f"{base.unit} received the ticket on {base.unit_received}: a return had to be"
                                    f" asked for by {window_end} (2 working days, art. 10)")
        return replace(base, status=status, due=None)
    if status == "extended":
        if base.extensions >= MAX_EXTENSIONS:
            raise TransitionRefused(f"the ticket was already extended {MAX_EXTENSIONS} times (art. 11)")
        if period is None or base.due is None:
            raise TransitionRefused("the ticket's type sets no period, so there is no due date to extend")
        return replace(base, status=status, due=add_working_days(base.due, period, calendar),
                       extensions=base.extensions + 1)
    return replace(base, status=status)


def handling_json(ticket_no: str, handling: Handling) -> dict:
    """The ticket's handling as the CLI and the status API show it."""
    return {"ticket": ticket_no, "status": handling.status, "type": handling.request_type, "unit": handling.unit,
            "unit_received": handling.unit_received.isoformat() if handling.unit_received else None,
            "due": handling.due.isoformat() if handling.due else None, "extensions": handling.extensions}
