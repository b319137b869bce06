"""The rows of the export to the provincial 12345 platform (Zhanjiang 12345 rules, art. 19) and where each
incremental export stands (``export_cursors``).

Each kind of record is read in pages in (time, key) order, by its time column through that column's index:
calls by ``started_at`` (``calls_started``), ticket drafts by ``created_at`` (``ticket_drafts_created``), the
restriction audit by ``at`` (a small table: a few decisions a day). Times are the stored UTC text; keys are
``calls.call_id``, ``ticket_drafts.ticket_id`` and ``restriction_audit.id``. What a record's fields mean, and which
records are final, is `gateway.export.records`'s and docs/export.md's.
"""
from __future__ import annotations

from datetime import datetime

from gateway.store.rows import check_text, to_ts

__all__ = ["EXPORT_KINDS", "ExportMixin", "LEASE_SUFFIX", "export_key"]

EXPORT_KINDS = ("call", "ticket", "restriction_audit")
# The lease row of a cursor (``<name>.lease``): which gateway pushes, until when (docs/export.md).
LEASE_SUFFIX = ".lease"
# to_ts text is fixed-width: "2026-11-30T01:00:00.000000+00:00"
_TS_WIDTH = 32

_SELECT = {
    "call": ("SELECT c.call_id, c.number, c.started_at, c.queued_at, c.answered_at, c.ended_at, c.outcome,"
             " c.request_type, c.emergency, c.priority, c.ivr_path, c.agent, c.ticket_query FROM calls AS c"),
    "ticket": ("SELECT t.ticket_id, t.call_id, t.type, t.category, t.unit, t.address, t.callback_number,"
               " t.emergency, t.emergency_situation, t.due, t.summary, t.transcript, t.status, t.agent, t.created_at,"
               " t.updated_at, c.ended_at AS call_ended_at, c.answered_at AS call_answered_at"
               " FROM ticket_drafts AS t LEFT JOIN calls AS c ON c.call_id = t.call_id"),
    "restriction_audit": ("SELECT a.id, a.action, a.restriction_id, a.number, a.operator, a.reason, a.at, a.days,"
                          " a.until FROM restriction_audit AS a"),
}
_TIME = {"call": "c.started_at", "ticket": "t.created_at", "restriction_audit": "a.at"}
_KEY = {"call": "c.call_id", "ticket": "t.ticket_id", "restriction_audit": "a.id"}
# A record that may still change: a call not yet ended; a ticket whose call has not ended, or ended less than the
# settle margin ago, or was answered and its ticket not yet saved (the agent saves it in the wrap-up), or that was
# saved less than the settle margin ago (a second save follows within seconds). The audit is append-only.
_OPEN = {
    "call": "c.ended_at IS NULL",
    "ticket": ("NOT (c.ended_at IS NOT NULL AND c.ended_at < :settled AND t.updated_at < :settled"
               " AND (t.status = 'saved' OR c.answered_at IS NULL))"),
}


def export_key(kind: str, row: dict) -> tuple[str, str | int]:
    """The (time, key) of an `ExportMixin.export_page` row: where an export that sent it stands."""
    return row[_TIME[kind].partition(".")[2]], row[_KEY[kind].partition(".")[2]]


def _kind(kind: str) -> str:
    if kind not in EXPORT_KINDS:
        raise ValueError(f"unknown export kind {kind!r}; known: {', '.join(EXPORT_KINDS)}")
    return kind


class ExportMixin:
    """Export reads and the export cursors of `Store`; needs its `_db` and `_write()`."""

    async def export_page(self, kind: str, *, since: str, until: str, after: tuple[str, str | int] | None,
                          limit: int) -> list[dict]:
        """Rows of ``kind`` with ``since`` <= time < ``until`` (stored UTC text; "" is before every time) and
        (time, key) after ``after`` (None: from the start), in (time, key) order, at most ``limit``."""
        time, key = _TIME[_kind(kind)], _KEY[kind]
        bind: dict = {"since": since, "until": until, "limit": max(1, limit)}
        keyset = ""
        if after is not None:
            keyset = f" AND ({time} > :after_time OR ({time} = :after_time AND {key} > :after_key))"
            # the index range starts at the last row read, not at the window's start: the OR alone is a filter,
            # and every page would scan the pages before it again (PostgreSQL does)
            bind |= {"since": max(since, after[0]), "after_time": after[0], "after_key": after[1]}
        rows = await self._db.execute_fetchall(
            f"{_SELECT[kind]} WHERE {time} >= :since AND {time} < :until{keyset} ORDER BY {time}, {key} LIMIT :limit",
            bind)
        return [dict(row) for row in rows]

    async def export_first_open(self, kind: str, *, since: str, until: str, settled: str) -> str | None:
        """The earliest time in [``since``, ``until``) of a ``kind`` record that may still change (see ``_OPEN``;
        ``settled``: the settle margin's edge), or None when every one there is final."""
        if _OPEN.get(_kind(kind)) is None:
            return None
        time = _TIME[kind]
        join = " LEFT JOIN calls AS c ON c.call_id = t.call_id" if kind == "ticket" else ""
        table = "calls AS c" if kind == "call" else "ticket_drafts AS t"
        rows = await self._db.execute_fetchall(
            f"SELECT MIN({time}) FROM {table}{join} WHERE {time} >= :since AND {time} < :until AND {_OPEN[kind]}",
            {"since": since, "until": until, "settled": settled})
        return rows[0][0] if rows else None

    async def export_cursor(self, name: str) -> str | None:
        """The stored position of the export ``name``, or None before its first acknowledged batch."""
        rows = await self._db.execute_fetchall("SELECT position FROM export_cursors WHERE name = ?",
                                               (check_text(name, "name"),))
        return rows[0]["position"] if rows else None

    async def move_export_cursor(self, name: str, *, expected: str | None, position: str, at: datetime) -> bool:
        """Set the position of ``name`` if it still is ``expected`` (None: no row yet); False when another gateway
        moved it meanwhile (compare-and-set: a cursor never goes back)."""
        name, position = check_text(name, "name"), check_text(position, "position")
        async with self._write() as db:
            if expected is None:
                rows = await db.execute_fetchall(
                    "INSERT INTO export_cursors (name, position, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO NOTHING RETURNING name", (name, position, to_ts(at)))
                return bool(rows)
            cursor = await db.execute(
                "UPDATE export_cursors SET position = ?, updated_at = ? WHERE name = ? AND position = ?",
                (position, to_ts(at), name, expected))
            return cursor.rowcount == 1

    async def hold_export_lease(self, name: str, *, holder: str, until: datetime, now: datetime) -> bool:
        """Take or renew the lease of the export ``name`` for ``holder`` until ``until``: True if it is
        ``holder``'s now, False while another holder's lease runs (gateways sharing one database push one at a
        time). The lease is a row of its own, ``<name>.lease``, position ``"<until> <holder>"``."""
        holder = check_text(holder, "holder")
        async with self._write() as db:
            rows = await db.execute_fetchall(
                "INSERT INTO export_cursors (name, position, updated_at) VALUES (:name, :position, :now)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at"
                f" WHERE substr(export_cursors.position, 1, {_TS_WIDTH}) < :now"
                f"   OR substr(export_cursors.position, {_TS_WIDTH + 2}) = :holder"
                " RETURNING name",
                {"name": check_text(name, "name") + LEASE_SUFFIX, "position": f"{to_ts(until)} {holder}",
                 "now": to_ts(now), "holder": holder})
        return bool(rows)
