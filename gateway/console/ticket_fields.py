"""What an agent may edit on a ticket from the console, checked and converted for the store."""
from __future__ import annotations

from datetime import date
from typing import Any

from gateway.basics.phone import normalise_strict
from gateway.contract import REQUEST_TYPES

__all__ = ["FieldError", "validate_ticket_fields"]

# Bounds for the fields an agent edits; generous for real tickets, small enough that nothing abuses the store.
_TEXT_LIMITS = {"category": 64, "unit": 128, "address": 256, "summary": 4000}
_CALLBACK_LIMIT = 32


class FieldError(ValueError):
    """A field the console refuses, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def validate_ticket_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The fields an agent may edit, checked and converted for the store; FieldError names the first bad one."""
    editable = {"type", *_TEXT_LIMITS, "callback_number", "due"}
    fields: dict[str, Any] = {}
    for name, value in body.items():
        if name not in editable:
            raise FieldError(name, "not an editable field")
        if name == "type":
            if value not in REQUEST_TYPES:
                raise FieldError(name, f"must be one of {', '.join(REQUEST_TYPES)}")
            fields[name] = value
        elif name == "due":
            fields[name] = _iso_date(value)
        elif name == "callback_number":
            fields[name] = _callback_number(value)
        else:
            fields[name] = _bounded_text(name, value, _TEXT_LIMITS[name])
    if not fields:
        raise FieldError("body", "no fields to save")
    return fields


def _bounded_text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise FieldError(name, "must be text")
    value = value.strip()
    if len(value) > limit:
        raise FieldError(name, f"at most {limit} characters")
    if any(ch < " " and ch not in "\n\t" for ch in value):
        raise FieldError(name, "contains control characters")
    return value


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise FieldError("due", "must be an ISO date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FieldError("due", "must be an ISO date YYYY-MM-DD") from None


def _callback_number(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > _CALLBACK_LIMIT:
        raise FieldError("callback_number", f"must be a phone number of at most {_CALLBACK_LIMIT} characters")
    try:
        return normalise_strict(value)
    except ValueError:
        raise FieldError("callback_number", "not a usable phone number") from None
