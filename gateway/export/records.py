"""The export's records, built from the store's rows: one pure function per record type, no I/O.

A record is a flat JSON object: ``record_type``, a stable ``id`` (``<source>:<record_type>:<key>``: the same call,
ticket or audit entry always has the same id, so the platform can drop or replace repeats), the fields, times in
the hotline's civil time (ISO 8601 with ``+08:00``, to the second) and dates as ``YYYY-MM-DD``. Caller numbers are
E.164 when the export may carry them in full, else masked as in the logs, and then every number-like run of digits
in free text (address, summary, transcript, reason) is masked too (Zhanjiang 12345 rules, art. 20). Field by field:
docs/export.md.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from gateway.basics.clock import SHANGHAI
from gateway.basics.logs import redact
from gateway.basics.phone import mask

__all__ = ["SCHEMA", "ExportOptions", "build_record", "call_record", "local_time", "record_id",
           "restriction_audit_record", "ticket_record"]

# The version of the record and batch formats (docs/export.md); a change that drops or renames a field bumps it.
SCHEMA = "hotline-export/1"


@dataclass(frozen=True)
class ExportOptions:
    """What one export carries: full numbers or masked, the restriction audit or not, under which source name."""
    source: str = "zhanjiang"
    full_numbers: bool = False
    include_restriction_audit: bool = False
    page_size: int = 1000           # rows per store query (keyset pages, so a query never holds the store long)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The record types this export carries, in the order they are read."""
        return ("call", "ticket", "restriction_audit") if self.include_restriction_audit else ("call", "ticket")

    @property
    def numbers(self) -> str:
        return "full" if self.full_numbers else "masked"


def record_id(source: str, record_type: str, key: object) -> str:
    return f"{source}:{record_type}:{key}"


def local_time(stored: str | None) -> str | None:
    """A stored UTC time as the hotline's civil time, to the second: "2026-11-30T09:00:05+08:00"."""
    if stored is None:
        return None
    return datetime.fromisoformat(stored).astimezone(SHANGHAI).isoformat(timespec="seconds")


def _number(e164: str | None, options: ExportOptions) -> str | None:
    if e164 is None:
        return None
    return e164 if options.full_numbers else _masked(e164)


@lru_cache(maxsize=65_536)
def _masked(e164: str) -> str:
    # masking parses the number (~40 us): a caller who calls often is masked once per export process
    return mask(e164)


def _text(value: str | None, options: ExportOptions) -> str | None:
    if value is None or options.full_numbers:
        return value
    return redact(value)


def call_record(row: dict, options: ExportOptions) -> dict:
    """One call: how it entered, went through the menu and the queue, and ended."""
    return {
        "record_type": "call",
        "id": record_id(options.source, "call", row["call_id"]),
        "source": options.source,
        "call_id": row["call_id"],
        "caller_number": _number(row["number"], options),
        "numbers": options.numbers,
        "started_at": local_time(row["started_at"]),
        "queued_at": local_time(row["queued_at"]),
        "answered_at": local_time(row["answered_at"]),
        "ended_at": local_time(row["ended_at"]),
        "outcome": row["outcome"],
        "request_type": row["request_type"],
        "emergency": row["emergency"],
        "priority": row["priority"],
        "ivr_path": json.loads(row["ivr_path"] or "[]"),
        "agent": row["agent"],
        "progress_query_ticket": row["ticket_query"],
        "final": row["ended_at"] is not None,
    }


def ticket_record(row: dict, options: ExportOptions) -> dict:
    """One ticket as the hotline took it in (art. 10, 11): the IVR's and the speech pre-fill's fields as the agent
    saved them. ``final``: its call has ended and it was saved, or nobody answered the call."""
    call_ended = row.get("call_ended_at") is not None
    return {
        "record_type": "ticket",
        "id": record_id(options.source, "ticket", row["ticket_id"]),
        "source": options.source,
        "ticket_no": row["ticket_id"],
        "call_id": row["call_id"],
        "call_record_id": record_id(options.source, "call", row["call_id"]) if row["call_id"] else None,
        "type": row["type"],
        "category": row["category"],
        "unit": row["unit"],
        "address": _text(row["address"], options),
        "callback_number": _number(row["callback_number"], options),
        "numbers": options.numbers,
        "emergency": row["emergency"],
        "emergency_situation": row["emergency_situation"],
        "due": row["due"],
        "summary": _text(row["summary"], options),
        "transcript": _text(row["transcript"], options),
        "status": row["status"],
        "agent": row["agent"],
        "created_at": local_time(row["created_at"]),
        "updated_at": local_time(row["updated_at"]),
        "final": call_ended and (row["status"] == "saved" or row.get("call_answered_at") is None),
    }


def restriction_audit_record(row: dict, options: ExportOptions) -> dict:
    """One restriction decision or lift (art. 9): who, on which number, why, for how long."""
    return {
        "record_type": "restriction_audit",
        "id": record_id(options.source, "restriction_audit", row["id"]),
        "source": options.source,
        "audit_id": row["id"],
        "action": row["action"],
        "restriction_id": row["restriction_id"],
        "number": _number(row["number"], options),
        "numbers": options.numbers,
        "operator": row["operator"],
        "reason": _text(row["reason"], options),
        "at": local_time(row["at"]),
        "days": row["days"],
        "until": local_time(row["until"]),
        "final": True,
    }


_BUILDERS: dict[str, Callable[[dict, ExportOptions], dict]] = {
    "call": call_record, "ticket": ticket_record, "restriction_audit": restriction_audit_record}


def build_record(record_type: str, row: dict, options: ExportOptions) -> dict:
    """The record of one store row of ``record_type`` (`gateway.store.exporting.EXPORT_KINDS`)."""
    return _BUILDERS[record_type](row, options)
