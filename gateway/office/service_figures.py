"""The service figures of one day besides the calls: requests by type, category and unit; emergency hand-offs per
centre; satisfaction per level; call-backs done in time; the speech pre-fill's coverage and accuracy in use.

Pure functions over the rows `gateway.store.office.OfficeMixin.office_rows` reads; the definitions are in
`gateway.office.definitions`.
"""
from __future__ import annotations

from collections import Counter
from datetime import tzinfo
from typing import Any

from gateway.contract import PREFILL_FIELDS
from gateway.office.call_figures import ratio

__all__ = ["callback_figures", "handoff_figures", "prefill_figures", "request_figures",
           "satisfaction_figures"]

_FALLBACKS = frozenset({"fallback_queue", "fallback_centre"})
_NOT_ANSWERED = frozenset({"no_answer", "busy", "failed", "caller_hangup", "cancelled"})


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def request_figures(tickets: list[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """Tickets of the day by type, category and responsible unit, the most frequent first; a ticket without the
    field counts under "unspecified" (type) or "(none)"."""
    return {
        "type": _ranked(Counter(t.get("type") or "unspecified" for t in tickets)),
        "category": _ranked(Counter(t.get("category") or "(none)" for t in tickets)),
        "unit": _ranked(Counter(t.get("unit") or "(none)" for t in tickets)),
    }


def handoff_figures(handoffs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per centre (art. 14 linkage): hand-offs asked for, answered, with the mean and longest answer time, fallbacks
    (the call went on to the next centre or to the agents), not answered, still open."""
    centres: dict[str, dict[str, Any]] = {}
    for h in handoffs:
        row = centres.setdefault(h["centre"], {"centre": h["centre"], "requested": 0, "answered": 0, "fallbacks": 0,
                                               "not_answered": 0, "open": 0, "_times": []})
        row["requested"] += 1
        result = h.get("result")
        if result == "answered" or h.get("answered_at") is not None:
            row["answered"] += 1
            if h.get("answered_at") is not None and h.get("requested_at") is not None:
                row["_times"].append(max(0.0, (h["answered_at"] - h["requested_at"]).total_seconds()))
        elif result in _FALLBACKS:
            row["fallbacks"] += 1
        elif result in _NOT_ANSWERED:
            row["not_answered"] += 1
        else:
            row["open"] += 1
    figures = []
    for centre in sorted(centres):
        row = centres[centre]
        times = row.pop("_times")
        row["answer_s_avg"] = round(sum(times) / len(times), 1) if times else None
        row["answer_s_max"] = round(max(times), 1) if times else None
        figures.append(row)
    return figures


def satisfaction_figures(ratings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per survey kind (intake: 一次一评 after the call; handling: 一事一评 after the ticket is done): surveys asked,
    count per level 1-5, not rated, and the satisfaction rate (levels 1-3 over rated)."""
    figures = {}
    for kind in ("intake", "handling"):
        levels = Counter(r["rating"] for r in ratings if r["kind"] == kind)
        rated = sum(levels[level] for level in range(1, 6))
        figures[kind] = {"asked": sum(levels.values()), "levels": {level: levels[level] for level in range(1, 6)},
                         "not_rated": levels[None], "rated": rated,
                         "satisfaction_rate": ratio(levels[1] + levels[2] + levels[3], rated)}
    return figures


def callback_figures(tasks: list[dict[str, Any]], *, zone: tzinfo) -> dict[str, Any]:
    """The call-back tasks due on the day (art. 15): done on or before the due date, done late, still open."""
    in_time = late = still_open = 0
    for task in tasks:
        if task["state"] != "done" or task.get("done_at") is None:
            still_open += 1
        elif task["done_at"].astimezone(zone).date() <= task["due"]:
            in_time += 1
        else:
            late += 1
    return {"due": len(tasks), "done_in_time": in_time, "done_late": late, "open": still_open,
            "callbacks_in_time": ratio(in_time, len(tasks))}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def prefill_figures(tickets: list[dict[str, Any]]) -> dict[str, Any]:
    """How much the speech pre-fill filled and how much of it agents kept. Per field: filled (drafts with a
    pre-filled value), saved (of those, tickets the agent saved), changed (saved with another value)."""
    per_field = {name: {"filled": 0, "saved": 0, "changed": 0} for name in PREFILL_FIELDS}
    covered = 0
    for ticket in tickets:
        prefilled = {k: v for k, v in (ticket.get("prefilled") or {}).items() if k in per_field and v is not None}
        covered += bool(prefilled)
        for name, value in prefilled.items():
            row = per_field[name]
            row["filled"] += 1
            if ticket.get("status") == "saved":
                row["saved"] += 1
                row["changed"] += _text(ticket.get(name)) != value
    for row in per_field.values():
        row["accuracy"] = ratio(row["saved"] - row["changed"], row["saved"])
    saved = sum(row["saved"] for row in per_field.values())
    changed = sum(row["changed"] for row in per_field.values())
    return {"tickets": len(tickets), "covered": covered, "prefill_coverage": ratio(covered, len(tickets)),
            "fields": per_field, "saved_fields": saved, "changed_fields": changed,
            "prefill_accuracy": ratio(saved - changed, saved)}
