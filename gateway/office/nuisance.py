"""The nuisance review (Zhanjiang 12345 rules, art. 9: no repeated calls without good reason): numbers with many
calls in one day, or repeated silent calls, listed for the hotline office to look at.

The list never restricts anyone: art. 9 measures are the office's decision. From an entry the office can raise a
pending restriction request in one action (`request_restriction`), which a supervisor then confirms or rejects
like an agent's request. Entries name the number's latest call, so the office acts without seeing the full number.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Protocol

from gateway.office.daily import day_window

__all__ = ["ReviewEntry", "ReviewSettings", "read_review_list", "request_restriction", "review_entries"]


@dataclass(frozen=True)
class ReviewSettings:
    calls_per_day: int          # listed with this many calls in one local day
    silent_calls: int           # ... or this many silent calls within the window
    window_days: int            # the days looked at, ending with the review day


@dataclass
class ReviewEntry:
    number: str
    last_call_id: str
    busiest_day: date | None = None
    calls_on_busiest_day: int = 0
    silent_calls: int = 0
    reasons: list[str] = field(default_factory=list)
    restricted_until: datetime | None = None
    pending_request: int | None = None


class ReviewStore(Protocol):
    async def frequent_callers(self, since: datetime, until: datetime, *, at_least: int) -> list[dict]: ...
    async def silent_callers(self, since: datetime, until: datetime, *, at_least: int) -> list[dict]: ...
    async def active_restriction(self, number: str | None, now: datetime) -> Any: ...
    async def list_pending_restrictions(self, *, include_decided: bool = False) -> list[dict]: ...


def review_entries(frequent_by_day: dict[date, list[dict]], silent: list[dict],
                   settings: ReviewSettings) -> list[ReviewEntry]:
    """The review list from the counted numbers (pure): one entry per number, its reasons, the most calls first."""
    entries: dict[str, ReviewEntry] = {}
    for day in sorted(frequent_by_day):
        for row in frequent_by_day[day]:
            entry = entries.setdefault(row["number"], ReviewEntry(row["number"], row["last_call_id"]))
            if row["calls"] > entry.calls_on_busiest_day:
                entry.busiest_day, entry.calls_on_busiest_day = day, row["calls"]
            entry.last_call_id = row["last_call_id"]
    for entry in entries.values():
        entry.reasons.append(f"{entry.calls_on_busiest_day} calls on {entry.busiest_day.isoformat()}"
                             f" (threshold {settings.calls_per_day} a day)")
    for row in silent:
        entry = entries.setdefault(row["number"], ReviewEntry(row["number"], row["last_call_id"]))
        entry.silent_calls = row["calls"]
        entry.reasons.append(f"{row['calls']} silent calls in {settings.window_days} days"
                             f" (threshold {settings.silent_calls})")
    return sorted(entries.values(), key=lambda e: (-max(e.calls_on_busiest_day, e.silent_calls), e.number))


async def read_review_list(store: ReviewStore, day: date, *, zone: tzinfo, settings: ReviewSettings,
                           now: datetime) -> list[ReviewEntry]:
    """The review list for the window ending with ``day``, each entry with the number's restriction in force or
    pending request, so the office does not act twice."""
    frequent: dict[date, list[dict]] = {}
    first = day - timedelta(days=settings.window_days - 1)
    for offset in range(settings.window_days):
        since, until = day_window(first + timedelta(days=offset), zone)
        if rows := await store.frequent_callers(since, until, at_least=settings.calls_per_day):
            frequent[first + timedelta(days=offset)] = rows
    since, until = day_window(first, zone)[0], day_window(day, zone)[1]
    silent = await store.silent_callers(since, until, at_least=settings.silent_calls)
    entries = review_entries(frequent, silent, settings)
    pending = {r["number"]: r["id"] for r in await store.list_pending_restrictions()}
    for entry in entries:
        restriction = await store.active_restriction(entry.number, now)
        entry.restricted_until = restriction.until if restriction is not None else None
        entry.pending_request = pending.get(entry.number)
    return entries


class RequestStore(Protocol):
    async def get_call(self, call_id: str) -> dict | None: ...
    async def add_pending_restriction(self, *, number: str, reason: str, requested_by: str, call_id: str | None,
                                      at: datetime) -> int: ...


async def request_restriction(store: RequestStore, call_id: str, *, requested_by: str, reason: str,
                              at: datetime) -> int:
    """The office's one action on a review entry: a pending restriction request for the number of ``call_id``
    (a supervisor confirms or rejects it, art. 9). LookupError: no such call or an anonymous one."""
    call = await store.get_call(call_id)
    if call is None or not call.get("number"):
        raise LookupError(f"no call {call_id!r} with a caller number")
    return await store.add_pending_restriction(number=call["number"], reason=reason, requested_by=requested_by,
                                               call_id=call_id, at=at)
