"""One local day's report for the hotline office (Zhanjiang 12345 rules, art. 5): read the day's rows from the store,
compute every figure, and give them as plain data with their definitions (for JSON, CSV and the HTML report)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol

from gateway.office.call_figures import CallFigures, Fate, call_figures
from gateway.office.definitions import DEFINITIONS
from gateway.office.service_figures import (
    callback_figures,
    handoff_figures,
    prefill_figures,
    request_figures,
    satisfaction_figures,
)

__all__ = ["DailyReport", "HEADLINE", "OfficeRows", "build_report", "day_window", "headline_rows", "read_report",
           "report_dict"]

# The headline figures, in the order the report shows them.
HEADLINE = ("offered", "answered", "connection_rate", "timely_rate", "wait_avg", "wait_p90", "abandoned_ivr",
            "abandoned_queue", "abandon_wait_avg", "refused", "system_faults", "untracked", "answered_wait_unknown")


class OfficeRows(Protocol):
    """What the report needs of the store (`gateway.store.office.OfficeMixin`)."""

    async def office_rows(self, since: datetime, until: datetime, *, due_on: date) -> dict[str, list[dict]]: ...

    async def announcement_figures(self, since: datetime, until: datetime) -> list[dict]: ...


def day_window(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight, as aware datetimes (a day of a DST change has 23 or 25 hours)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


@dataclass(frozen=True)
class DailyReport:
    day: date
    zone: str
    timely_answer_s: int
    calls: CallFigures
    requests: dict[str, list[tuple[str, int]]]
    handoffs: list[dict[str, Any]]
    satisfaction: dict[str, dict[str, Any]]
    callbacks: dict[str, Any]
    prefill: dict[str, Any]
    announcements: list[dict[str, Any]] = field(default_factory=list)


def build_report(rows: dict[str, list[dict]], *, day: date, zone: tzinfo, timely_answer_s: int,
                 announcements: list[dict[str, Any]] | None = None) -> DailyReport:
    """The report from one day's rows (pure)."""
    refused = {row["call_id"] for row in rows["refused"]}
    return DailyReport(
        day=day, zone=str(zone), timely_answer_s=timely_answer_s,
        calls=call_figures(rows["calls"], refused, zone=zone, timely_s=timely_answer_s),
        requests=request_figures(rows["tickets"]), handoffs=handoff_figures(rows["handoffs"]),
        satisfaction=satisfaction_figures(rows["ratings"]), callbacks=callback_figures(rows["callbacks"], zone=zone),
        prefill=prefill_figures(rows["tickets"]), announcements=list(announcements or []))


async def read_report(store: OfficeRows, day: date, *, zone: tzinfo, timely_answer_s: int) -> DailyReport:
    """Read the day from the store and build its report."""
    since, until = day_window(day, zone)
    rows = await store.office_rows(since, until, due_on=day)
    announcements = await store.announcement_figures(since, until)
    return build_report(rows, day=day, zone=zone, timely_answer_s=timely_answer_s, announcements=announcements)


def headline_rows(report: DailyReport) -> list[dict[str, Any]]:
    """The headline figures with label, unit and definition, in `HEADLINE` order."""
    rows = [{"key": key, **_labelled(key, report.calls.value(key))} for key in HEADLINE]
    for row in rows:
        if row["key"] == "timely_rate":   # the definition names the configured time, not the default
            row["definition"] = row["definition"].replace("15 s by default", f"{report.timely_answer_s} s here")
    return rows


def _labelled(key: str, value: Any) -> dict[str, Any]:
    definition = DEFINITIONS[key]
    return {"label": definition.label, "value": value, "unit": definition.unit, "definition": definition.text}


def report_dict(report: DailyReport) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    calls = report.calls
    return {
        "day": report.day.isoformat(), "zone": report.zone, "timely_answer_s": report.timely_answer_s,
        "headline": headline_rows(report),
        "fates": {fate: calls.counts[fate] for fate in Fate.ALL},
        "hourly": calls.hourly,
        "requests_by_menu": calls.requests_by_menu,
        "requests": {name: [{"name": k, "tickets": v} for k, v in ranked] for name, ranked in report.requests.items()},
        "handoffs": {"definition": DEFINITIONS["handoff_answer_s"].text, "centres": report.handoffs},
        "satisfaction": {kind: {**figures, "satisfaction_rate": _labelled("satisfaction_rate",
                                                                          figures["satisfaction_rate"])}
                         for kind, figures in report.satisfaction.items()},
        "callbacks": {**report.callbacks, "callbacks_in_time": _labelled("callbacks_in_time",
                                                                         report.callbacks["callbacks_in_time"])},
        "prefill": {**report.prefill,
                    "prefill_coverage": _labelled("prefill_coverage", report.prefill["prefill_coverage"]),
                    "prefill_accuracy": _labelled("prefill_accuracy", report.prefill["prefill_accuracy"])},
        "announcements": {"definition": DEFINITIONS["announcement_answered"].text, "items": report.announcements},
    }
