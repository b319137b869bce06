"""Rows in and out of the gateway's store: column lists, the value sets a field may take, conversions
between Python values and stored text, field validators, and the one restriction insert shared by `Store` and
the pending-restriction confirmation.

No connection is kept here: apart from `insert_restriction`, which runs inside the caller's transaction, these are
pure functions over plain values and rows (read by position or column name).
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, date, datetime
from typing import Any


from gateway.store.backends.connection import StoreConnection
from gateway.basics.phone import normalise, normalise_strict
from gateway.basics.clock import SHANGHAI
from gateway.restriction import Restriction, check_aware, check_days, effective, restriction_end

CALL_OUTCOMES = frozenset({"blocked", "queued", "answered", "abandoned", "ivr", "failed"})
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
RESTRICTION_COLUMNS = "id, number, reason, operator, decided_at, until, lifted_at, lifted_by, lift_reason"
CALL_COLUMNS = (
    "call_id, number, channel, started_at, ivr_path, request_type, emergency, outcome, "
    "queued_at, answered_at, ended_at, agent, priority, ticket_query"
)
_CALL_TIMES = ("started_at", "queued_at", "answered_at", "ended_at")
TICKET_FIELDS = (
    "type", "category", "unit", "address", "callback_number", "emergency", "emergency_situation", "due", "summary",
    "transcript", "status", "agent", "scores", "prefilled",
)
TICKET_DRAFT_STATUSES = frozenset({"draft", "saved"})
# What the IVR progress query (art. 12) tells a caller about a ticket that has not yet left the hotline.
DRAFT_PUBLIC_STATUS = "received"
TICKET_COLUMNS = "ticket_id, public_id, call_id, " + ", ".join(TICKET_FIELDS) + ", created_at, updated_at"
HANDOFF_TRIGGERS = frozenset({"menu", "speech", "agent"})
HANDOFF_MODES = frozenset({"blind", "threeway"})
# answered: the centre took the call; no_answer/busy: it did not within its answer timeout; fallback_*: the call
# went on to the next centre or to the priority agent queue; caller_hangup: the caller left while it rang.
HANDOFF_RESULTS = frozenset({"answered", "no_answer", "busy", "failed", "fallback_queue", "fallback_centre",
                             "caller_hangup", "cancelled"})
PUSH_ADAPTERS = frozenset({"mqtt", "http", "none"})
# queued: in the durable MQTT outbox (the publisher delivers it at least once); sent: the centre's HTTP endpoint
# answered 2xx; skipped: the centre takes no data push.
PUSH_STATES = frozenset({"pending", "queued", "sent", "failed", "skipped"})
HANDOFF_COLUMNS = ("id, call_id, ticket_id, situation, centre, trigger, mode, requested_at, ring_at, answered_at, "
                    "ended_at, result, detail")
_HANDOFF_TIMES = ("requested_at", "ring_at", "answered_at", "ended_at")
PUSH_COLUMNS = ("id, push_id, handoff_id, call_id, centre, adapter, state, attempts, last_error, created_at, "
                 "updated_at, resumed_at")
# Why an agent may work on a ticket besides being its agent (ticket_assignments.source).
ASSIGNMENT_SOURCES = frozenset({"answered", "supervisor", "return_call"})
_PUBLIC_ID = re.compile(r"[0-9a-f]{32}")
PENDING_COLUMNS = (
    "id, number, reason, requested_by, call_id, requested_at, status, decided_by, decided_at, decision_reason,"
    " restriction_id"
)


async def insert_restriction(
    db: StoreConnection, number: str, *, reason: str, operator: str, days: int, decided_at: datetime
) -> Restriction:
    """Restriction and its 'add' audit entry, inside the caller's transaction."""
    until = restriction_end(decided_at, days)
    inserted = await db.execute_fetchall(
        "INSERT INTO restrictions (number, reason, operator, days, decided_at, until) VALUES (?,?,?,?,?,?)"
        " RETURNING id",
        (number, reason, operator, days, to_ts(decided_at), to_ts(until)),
    )
    restriction_id = inserted[0][0]
    await db.execute(
        "INSERT INTO restriction_audit (action, restriction_id, number, operator, reason, at, days, until)"
        " VALUES ('add', ?, ?, ?, ?, ?, ?, ?)",
        (restriction_id, number, operator, reason, to_ts(decided_at), days, to_ts(until)),
    )
    rows = await db.execute_fetchall(f"SELECT {RESTRICTION_COLUMNS} FROM restrictions WHERE id = ?", (restriction_id,))
    return restriction_from_row(rows[0])


async def restriction_in_force(db: StoreConnection, number: str, now: datetime) -> Restriction | None:
    """The restriction in force for an E.164 ``number`` at ``now``: one indexed lookup of the latest decision."""
    rows = await db.execute_fetchall(
        f"SELECT {RESTRICTION_COLUMNS} FROM restrictions WHERE number = ? AND decided_at <= ?"
        " ORDER BY decided_at DESC, id DESC LIMIT 1",
        (number, to_ts(now)),
    )
    return effective((restriction_from_row(row) for row in rows), now)


def prepare_bulk(rows: list[tuple[str, str, str, int, datetime]]) -> list[tuple]:
    prepared = []
    for number, reason, operator, days, decided_at in rows:
        until = restriction_end(decided_at, check_days(days))
        prepared.append(
            (normalise_strict(number), check_text(reason, "reason"), check_text(operator, "operator"), days,
             to_ts(decided_at), to_ts(until))
        )
    return prepared


def where_clause(conditions: list[str]) -> str:
    """`` WHERE a AND b`` for the conditions given, "" for none."""
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def new_public_id() -> str:
    """A public id (tickets, recordings): 128 random bits as 32 lower-case hex digits."""
    return secrets.token_hex(16)


def is_public_id(text: object) -> bool:
    """Whether ``text`` has the form of a public id (so a malformed one never reaches a query)."""
    return isinstance(text, str) and _PUBLIC_ID.fullmatch(text) is not None


def lookup_key(number: str | None) -> str | None:
    # The hot path receives CallerNumber.e164 already; only other spellings pay for phonenumbers.
    if number is None:
        return None
    if _E164.fullmatch(number):
        return number
    return normalise(number).e164


def to_ts(value: datetime) -> str:
    return check_aware(value).astimezone(UTC).isoformat(timespec="microseconds")


def from_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(SHANGHAI)


def check_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be non-empty text, got {value!r}")
    return value.strip()


def restriction_from_row(row: Any) -> Restriction:
    return Restriction(
        id=row["id"],
        number=row["number"],
        reason=row["reason"],
        operator=row["operator"],
        decided_at=from_ts(row["decided_at"]),
        until=from_ts(row["until"]),
        lifted_at=from_ts(row["lifted_at"]),
        lifted_by=row["lifted_by"],
        lift_reason=row["lift_reason"],
    )


def call_from_row(row: Any) -> dict:
    call = dict(row)
    call["ivr_path"] = json.loads(call["ivr_path"] or "[]")
    for name in _CALL_TIMES:
        call[name] = from_ts(call[name])
    return call


def check_call_field(name: str, value: Any) -> Any:
    if name == "ivr_path":
        if not isinstance(value, (list, tuple)) or not all(isinstance(step, str) for step in value):
            raise ValueError(f"ivr_path must be a list of str, got {value!r}")
        return json.dumps(list(value), ensure_ascii=False)
    if name in ("request_type", "emergency", "agent", "ticket_query"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be str or None, got {value!r}")
        return value
    if name == "outcome":
        if value not in CALL_OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(CALL_OUTCOMES)}, got {value!r}")
        return value
    if name in ("queued_at", "answered_at", "ended_at"):
        return None if value is None else to_ts(value)
    if name == "priority":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"priority must be int, got {value!r}")
        return value
    raise ValueError(f"unknown call field {name!r}")


def check_ticket_field(name: str, value: Any) -> Any:
    if name not in TICKET_FIELDS:
        raise ValueError(f"unknown ticket field {name!r}; known: {', '.join(TICKET_FIELDS)}")
    if name == "status":
        if value not in TICKET_DRAFT_STATUSES:
            raise ValueError(f"status must be one of {sorted(TICKET_DRAFT_STATUSES)}, got {value!r}")
        return value
    if value is None:
        return None
    if name == "due":
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError(f"due must be a date, got {value!r}")
        return value.isoformat()
    if name == "callback_number":
        return normalise_strict(value)
    if name == "scores":
        if not isinstance(value, dict) or not all(isinstance(v, dict) and isinstance(v.get("score"), (int, float))
                                                  for v in value.values()):
            raise ValueError(f"scores must be {{field: {{'score': number, ...}}}}, got {value!r}")
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if name == "prefilled":
        if not isinstance(value, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                                  for k, v in value.items()):
            raise ValueError(f"prefilled must be {{field: text or None}}, got {value!r}")
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be str or None, got {value!r}")
    return value


def ticket_from_row(row: Any) -> dict:
    ticket = dict(row)
    ticket["due"] = None if ticket["due"] is None else date.fromisoformat(ticket["due"])
    ticket["scores"] = json.loads(ticket["scores"]) if ticket.get("scores") else {}
    ticket["prefilled"] = json.loads(ticket["prefilled"]) if ticket.get("prefilled") else {}
    ticket["created_at"], ticket["updated_at"] = from_ts(ticket["created_at"]), from_ts(ticket["updated_at"])
    return ticket


def pending_from_row(row: Any) -> dict:
    return {**dict(row), "requested_at": from_ts(row["requested_at"]), "decided_at": from_ts(row["decided_at"])}


def check_handoff_field(name: str, value: Any) -> Any:
    if name == "trigger":
        if value not in HANDOFF_TRIGGERS:
            raise ValueError(f"trigger must be one of {sorted(HANDOFF_TRIGGERS)}, got {value!r}")
        return value
    if name == "mode":
        if value not in HANDOFF_MODES:
            raise ValueError(f"mode must be one of {sorted(HANDOFF_MODES)}, got {value!r}")
        return value
    if name == "result":
        if value is not None and value not in HANDOFF_RESULTS:
            raise ValueError(f"result must be one of {sorted(HANDOFF_RESULTS)}, got {value!r}")
        return value
    if name in ("ring_at", "answered_at", "ended_at"):
        return None if value is None else to_ts(value)
    if name in ("ticket_id", "situation", "detail"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be str or None, got {value!r}")
        return value
    raise ValueError(f"unknown hand-off field {name!r}")


def handoff_from_row(row: Any) -> dict:
    handoff = dict(row)
    for name in _HANDOFF_TIMES:
        handoff[name] = from_ts(handoff[name])
    return handoff


def check_push_field(name: str, value: Any) -> Any:
    if name == "state":
        if value not in PUSH_STATES:
            raise ValueError(f"state must be one of {sorted(PUSH_STATES)}, got {value!r}")
        return value
    if name == "attempts":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"attempts must be an int >= 0, got {value!r}")
        return value
    if name == "last_error":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"last_error must be str or None, got {value!r}")
        return None if value is None else value[:500]
    if name == "resumed_at":
        return None if value is None else to_ts(value)
    raise ValueError(f"unknown push field {name!r}")
