"""A store row id read from text someone else wrote (an AMI header, a URL, a channel variable)."""
from __future__ import annotations

__all__ = ["row_id"]

_MAX_ROW_ID = 2**63       # SQLite's row ids are signed 64-bit


def row_id(value: object) -> int | None:
    """The positive row id ``value`` spells, or None: missing, not a number (a repeated AMI header comes as a
    list), zero or negative, or beyond SQLite's row ids."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < _MAX_ROW_ID else None
