"""When the hotline may call a citizen itself (the automated return call), and what a try's outcome means for
the next one. Pure: no clock, no I/O."""
from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo

__all__ = ["after_try", "next_calling_time"]


def next_calling_time(at: datetime, *, start: time, end: time, tz: tzinfo) -> datetime:
    """``at`` if it falls within the calling hours [start, end) of its day (in ``tz``), else the next start."""
    local = at.astimezone(tz)
    if start <= local.time() < end:
        return at
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tz)


def after_try(outcome: str, *, attempts: int, max_attempts: int, at: datetime, retry_min: int, start: time,
              end: time, tz: tzinfo) -> tuple[str, datetime | None]:
    """(state, next try) after a return call's try: answered ends it; anything else is tried again after
    ``retry_min`` minutes within the calling hours, until ``max_attempts`` tries were made."""
    if outcome == "answered":
        return "answered", None
    if attempts >= max_attempts:
        return "gave_up", None
    return "pending", next_calling_time(at + timedelta(minutes=retry_min), start=start, end=end, tz=tz)
