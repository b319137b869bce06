"""The call figures of one day: what became of each call, the rates, the waits, the calls per hour.

Pure functions over the rows `gateway.store.office.OfficeMixin.office_rows` reads; the definitions are in
`gateway.office.definitions`.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

__all__ = ["CallFigures", "Fate", "call_fate", "call_figures", "percentile_nearest_rank", "ratio"]


class Fate:
    """What became of a call, for counting: each call has exactly one."""
    REFUSED = "refused"
    ANSWERED = "answered"
    ABANDONED_IVR = "abandoned_ivr"
    ABANDONED_QUEUE = "abandoned_queue"
    SYSTEM_FAULT = "system_faults"
    UNTRACKED = "untracked"
    ALL = (REFUSED, ANSWERED, ABANDONED_IVR, ABANDONED_QUEUE, SYSTEM_FAULT, UNTRACKED)


def call_fate(call: dict[str, Any], refused: bool) -> str:
    """One call's fate. ``refused``: the call has a refused attempt at entry (art. 9)."""
    outcome = call.get("outcome")
    if outcome == "answered" or call.get("answered_at") is not None:
        return Fate.ANSWERED
    if refused or outcome == "blocked":
        return Fate.REFUSED
    if outcome == "abandoned":
        return Fate.ABANDONED_QUEUE if call.get("queued_at") is not None else Fate.ABANDONED_IVR
    if outcome == "failed":
        return Fate.SYSTEM_FAULT
    return Fate.UNTRACKED


def ratio(part: int, whole: int) -> float | None:
    """part ÷ whole as a percentage rounded to 0.01, None for an empty whole (no rate, not 0 %)."""
    return None if whole <= 0 else round(100.0 * part / whole, 2)


def percentile_nearest_rank(values: Iterable[float], percent: float) -> float | None:
    """The smallest value that at least ``percent`` % of the values do not exceed; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return ordered[rank - 1]


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


@dataclass(frozen=True)
class CallFigures:
    counts: dict[str, int]             # "offered" and every Fate
    connection_rate: float | None
    timely_rate: float | None
    timely: int                        # answered within the timely-answer time
    answered_wait_unknown: int
    wait_avg: float | None
    wait_p90: float | None
    abandon_wait_avg: float | None
    waits: list[float]                 # the answered calls' waits, seconds (for the chart)
    hourly: list[dict[str, Any]]       # 24 rows: hour, offered, answered, abandoned, wait_avg
    requests_by_menu: dict[str, int]   # the request type the menu recorded, per call that reached the queue

    def value(self, key: str) -> Any:
        """A figure by its key in `gateway.office.definitions.DEFINITIONS`."""
        if key in self.counts:
            return self.counts[key]
        return getattr(self, key)


def call_figures(calls: list[dict[str, Any]], refused_ids: set[str], *, zone: tzinfo,
                 timely_s: float) -> CallFigures:
    """The call figures of the calls given (one day's, as read by start time)."""
    counts: Counter[str] = Counter({fate: 0 for fate in Fate.ALL})
    waits: list[float] = []
    abandon_waits: list[float] = []
    wait_unknown = timely = 0
    hours = [{"hour": h, "offered": 0, "answered": 0, "abandoned": 0, "_waits": []} for h in range(24)]
    by_menu: Counter[str] = Counter()
    for call in calls:
        fate = call_fate(call, call["call_id"] in refused_ids)
        counts[fate] += 1
        hour = hours[call["started_at"].astimezone(zone).hour] if call.get("started_at") else None
        if hour is not None:
            hour["offered"] += 1
        if call.get("queued_at") is not None and fate != Fate.REFUSED:
            by_menu[call.get("request_type") or "unspecified"] += 1
        if fate == Fate.ANSWERED:
            wait = _seconds(call.get("answered_at"), call.get("queued_at"))
            if hour is not None:
                hour["answered"] += 1
            if wait is None:
                wait_unknown += 1
                continue
            waits.append(wait)
            timely += wait <= timely_s
            if hour is not None:
                hour["_waits"].append(wait)
        elif fate in (Fate.ABANDONED_IVR, Fate.ABANDONED_QUEUE):
            if hour is not None:
                hour["abandoned"] += 1
            if fate == Fate.ABANDONED_QUEUE and (wait := _seconds(call.get("ended_at"), call.get("queued_at"))) is not None:
                abandon_waits.append(wait)
    counts["offered"] = len(calls)
    wanted_service = (counts["offered"] - counts[Fate.REFUSED] - counts[Fate.SYSTEM_FAULT] - counts[Fate.UNTRACKED])
    hourly = [{"hour": h["hour"], "offered": h["offered"], "answered": h["answered"], "abandoned": h["abandoned"],
               "wait_avg": _mean(h["_waits"])} for h in hours]
    p90 = percentile_nearest_rank(waits, 90)
    return CallFigures(
        counts=dict(counts), connection_rate=ratio(counts[Fate.ANSWERED], wanted_service),
        timely_rate=ratio(timely, len(waits)), timely=timely, answered_wait_unknown=wait_unknown,
        wait_avg=_mean(waits), wait_p90=None if p90 is None else round(p90, 1), abandon_wait_avg=_mean(abandon_waits),
        waits=waits, hourly=hourly, requests_by_menu=dict(by_menu))
