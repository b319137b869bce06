"""The daily report as CSV: one row per figure (section, key, label, value, unit, definition), so a spreadsheet
can take it as it is."""
from __future__ import annotations

import csv
import io

from gateway.office.daily import DailyReport, headline_rows
from gateway.office.definitions import DEFINITIONS

__all__ = ["render_csv"]

_HEAD = ("section", "key", "label", "value", "unit", "definition")


def render_csv(report: DailyReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_HEAD)
    for row in headline_rows(report):
        writer.writerow(("headline", row["key"], row["label"], row["value"], row["unit"], row["definition"]))
    for hour in report.calls.hourly:
        for key in ("offered", "answered", "abandoned", "wait_avg"):
            writer.writerow((f"hour_{hour['hour']:02d}", key, "", hour[key], "s" if key == "wait_avg" else "calls", ""))
    for field, ranked in report.requests.items():
        for name, count in ranked:
            writer.writerow((f"requests_by_{field}", name, "", count, "tickets", ""))
    for h in report.handoffs:
        for key in ("requested", "answered", "fallbacks", "not_answered", "open", "answer_s_avg", "answer_s_max"):
            writer.writerow((f"handoffs_{h['centre']}", key, "", h[key], "s" if key.startswith("answer_s") else
                             "handoffs", DEFINITIONS["handoff_answer_s"].text if key == "answer_s_avg" else ""))
    for kind, f in report.satisfaction.items():
        for level, count in f["levels"].items():
            writer.writerow((f"satisfaction_{kind}", f"level_{level}", "", count, "surveys", ""))
        writer.writerow((f"satisfaction_{kind}", "not_rated", "", f["not_rated"], "surveys", ""))
        d = DEFINITIONS["satisfaction_rate"]
        writer.writerow((f"satisfaction_{kind}", "satisfaction_rate", d.label, f["satisfaction_rate"], d.unit, d.text))
    d = DEFINITIONS["callbacks_in_time"]
    for key in ("due", "done_in_time", "done_late", "open"):
        writer.writerow(("callbacks", key, "", report.callbacks[key], "tasks", ""))
    writer.writerow(("callbacks", "callbacks_in_time", d.label, report.callbacks["callbacks_in_time"], d.unit, d.text))
    for key in ("prefill_coverage", "prefill_accuracy"):
        d = DEFINITIONS[key]
        writer.writerow(("prefill", key, d.label, report.prefill[key], d.unit, d.text))
    for name, f in report.prefill["fields"].items():
        for key in ("filled", "saved", "changed", "accuracy"):
            writer.writerow((f"prefill_{name}", key, "", f[key], "%" if key == "accuracy" else "fields", ""))
    d = DEFINITIONS["announcement_answered"]
    for a in report.announcements:
        writer.writerow((f"announcement_{a.get('id')}", "heard", "", a.get("heard"), "calls", ""))
        writer.writerow((f"announcement_{a.get('id')}", "answered", d.label, a.get("answered"), d.unit, d.text))
    return out.getvalue()
