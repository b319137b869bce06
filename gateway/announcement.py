"""Incident announcements (Zhanjiang 12345 rules, art. 18: the answer script of a major or sudden incident): which
one is in force, what an operator may enter, what its sound file is called. Pure decisions, no I/O.

When a water main bursts, thousands call about the same thing; the office records a short announcement that
callers hear right after the welcome. Several may be in force at once (a second incident, or a corrected text
added before the first was removed): the latest added wins, so an operator's newest word is what callers hear.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from gateway.restriction import check_aware
from ivr.prompts import prompt_hash

__all__ = ["MAX_DAYS", "MAX_TEXT_CHARS", "Announcement", "check_text", "check_window", "in_force", "parse_time",
           "prompt_name"]

# espeak-ng reads about 4.6 Hanzi a second at the prompts' 210 wpm: 150 characters are some 33 s, already long
# for a caller who waits for the menu.
MAX_TEXT_CHARS = 150
# An incident's script, not a standing message (those belong in the menu's prompts): a forgotten announcement
# ends by itself within a month.
MAX_DAYS = 30
PROMPT_PREFIX = "announce_"
_RELATIVE = re.compile(r"\+(\d{1,5})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Announcement:
    """One announcement as the store keeps it; ``prompt`` names its sound file in the prompt directory."""

    id: int
    text: str
    prompt: str
    starts_at: datetime
    until: datetime
    created_by: str
    created_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None

    @property
    def ends_at(self) -> datetime:
        """When callers stop hearing it: its ``until``, or the moment it was removed if that came first."""
        if self.removed_at is not None and self.removed_at < self.until:
            return self.removed_at
        return self.until

    def is_in_force(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def in_force(announcements: Iterable[Announcement], at: datetime) -> Announcement | None:
    """The announcement callers hear at ``at``: of those in force then, the latest added (the highest id)."""
    check_aware(at, "at")
    return max((a for a in announcements if a.is_in_force(at)), key=lambda a: a.id, default=None)


def check_text(text: object) -> str:
    """The text as it will be spoken: whitespace runs made one space; refused when empty, over
    `MAX_TEXT_CHARS`, holding control characters, or starting with '-' (espeak-ng would take it as an option)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be text, got {type(text).__name__}")
    spoken = " ".join(text.split())
    if not spoken:
        raise ValueError("text must not be empty")
    if len(spoken) > MAX_TEXT_CHARS:
        raise ValueError(f"text is {len(spoken)} characters; at most {MAX_TEXT_CHARS} (about half a minute spoken)")
    if any(unicodedata.category(ch).startswith("C") for ch in spoken):
        raise ValueError("text must not hold control characters")
    if spoken.startswith("-"):
        raise ValueError("text must not start with '-'")
    return spoken


def check_window(starts_at: datetime, until: datetime, now: datetime) -> None:
    """Refuse a window that ends in the past, ends before it starts, or lasts over `MAX_DAYS`."""
    for name, value in (("from", starts_at), ("until", until), ("now", now)):
        check_aware(value, name)
    if until <= now:
        raise ValueError(f"until {until.isoformat()} is not in the future")
    if until <= starts_at:
        raise ValueError(f"until {until.isoformat()} is not after from {starts_at.isoformat()}")
    if until - starts_at > timedelta(days=MAX_DAYS):
        raise ValueError(f"an announcement lasts at most {MAX_DAYS} days")


def parse_time(text: str, tz: tzinfo, now: datetime) -> datetime:
    """An operator's time: ISO 8601 (``2026-12-01T18:00``, ``2026-12-01 18:00:30``, ``...+08:00``, ``...Z``) in the
    hotline's civil time ``tz`` unless it names an offset, or ``+N`` minutes/hours/days from ``now`` (``+90m``,
    ``+4h``, ``+2d``)."""
    value = text.strip()
    if relative := _RELATIVE.fullmatch(value):
        return now + timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", value):
        raise ValueError(f"time {text!r}: expected YYYY-MM-DDTHH:MM[:SS][+HH:MM] or +N(m|h|d)")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"time {text!r}: {exc}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def prompt_name(text: str, voice: str) -> str:
    """The sound file's name (without extension) for ``text`` spoken by ``voice``: the same text always gives the
    same file, so every gateway that lacks it makes the same one."""
    return PROMPT_PREFIX + prompt_hash(text, voice)[:16]
