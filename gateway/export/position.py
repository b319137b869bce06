"""Where an incremental export stands, as stored in ``export_cursors.position``, and the id of a batch: pure.

The position holds, per record type, the (time, key) of the last record the platform acknowledged, the stored
UTC time text and the record's key: ``{"call": ["2026-11-30T01:00:05.000000+00:00", "1764222222.12"], ...}``; a
key of null means "from that time on, that time included". A type not in it starts from its first record. A bare
stored time (``"2026-12-01T00:00:00.000000+00:00"``) is read as every type from that time on, so an office can
start the push at a chosen moment.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

from gateway.store.rows import to_ts

__all__ = ["Position", "PositionError", "batch_id", "format_position", "parse_position", "record_json"]

Position = dict[str, tuple[str, str | int | None]]


class PositionError(ValueError):
    """A stored position that is not one this module wrote (the export does not guess where to go on)."""


def parse_position(text: str | None, kinds: Iterable[str]) -> Position:
    """The position of ``text`` (None: nothing acknowledged yet) for the record types ``kinds``."""
    kinds = tuple(kinds)
    if text is None:
        return {}
    stripped = text.strip()
    if not stripped.startswith("{"):
        try:
            start = datetime.fromisoformat(stripped)
        except ValueError:
            raise PositionError(f"neither a JSON position nor a time: {text[:80]!r}") from None
        if start.tzinfo is None:
            raise PositionError(f"a time without its UTC offset: {text[:80]!r}")
        return {kind: (to_ts(start), None) for kind in kinds}
    try:
        data = json.loads(stripped)
    except ValueError as exc:
        raise PositionError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PositionError("not a JSON object")
    position: Position = {}
    for kind, value in data.items():
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
                and (value[1] is None or isinstance(value[1], (str, int))) and not isinstance(value[1], bool)):
            raise PositionError(f"{kind}: must be [time, key], got {value!r}")
        position[kind] = (value[0], value[1])
    return position


def format_position(position: Position) -> str:
    """The stored text of ``position``: compact JSON, keys sorted, so the same position is the same text (the
    cursor is moved by compare-and-set on it)."""
    return json.dumps({kind: list(value) for kind, value in position.items()}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)


def record_json(record: dict) -> str:
    """A record as it goes on the wire: compact JSON, keys sorted, UTF-8 text as it is."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def batch_id(encoded_records: list[str]) -> str:
    """The batch's id and Idempotency-Key: a digest of its records (`record_json`), so the same records sent
    again (a retry, or the same batch rebuilt after a restart) carry the same key. 32 hex digits."""
    return hashlib.sha256("\n".join(encoded_records).encode("utf-8")).hexdigest()[:32]
