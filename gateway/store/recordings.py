"""Recordings of answered calls in the store (Zhanjiang 12345 rules, art. 20): one row per call with the file as
filed, marked when retention purges it, and the append-only audit of every play and download."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.store.rows import check_text, from_ts, is_public_id, new_public_id, to_ts, where_clause

__all__ = ["RECORDING_STATES", "RecordingsMixin"]

RECORDING_STATES = frozenset({"converted", "original", "purged"})
_COLUMNS = ("call_id, public_id, ticket_id, agent, path, format, duration_s, size, sha256, state, note, recorded_at,"
            " purged_at")
# The agents who handled a call (the console's access rule): every agent who answered it, which is every agent a
# screen-pop of it went to, and the call's own agent. ``record_screenpop`` writes the "answered" assignment with
# the pop, so the assignments add nobody; an agent assigned the ticket later did not take the call.
_HANDLERS = "SELECT agent FROM screenpops WHERE call_id = {call} UNION SELECT agent FROM calls WHERE call_id = {call}"


class RecordingsMixin:
    """Call recording methods of `Store`; needs its `_db` and `_write()`."""

    async def file_call_recording(self, *, call_id: str, path: str, format: str, duration_s: float, size: int,
                                  sha256: str, state: str, note: str | None, recorded_at: datetime) -> None:
        """File a call's recording with its ticket and agent (as the call record has them now). A call recorded
        again (a repeated filing) keeps the first row."""
        if state not in RECORDING_STATES - {"purged"}:
            raise ValueError(f"a filed recording is converted or original, not {state!r}")
        async with self._write() as db:
            await db.execute(
                "INSERT INTO call_recordings (call_id, public_id, ticket_id, agent, path, format,"
                " duration_s, size, sha256, state, note, recorded_at) VALUES (:call, :public, (SELECT ticket_id FROM ticket_drafts WHERE"
                " call_id = :call ORDER BY created_at, ticket_id LIMIT 1), (SELECT agent FROM calls WHERE call_id = :call), :path,"
                " :format, :duration, :size, :sha, :state, :note, :at) ON CONFLICT DO NOTHING",
                {"call": check_text(call_id, "call_id"), "public": new_public_id(), "path": path, "format": format, "duration": duration_s,
                 "size": size, "sha": sha256, "state": state, "note": note, "at": to_ts(recorded_at)})

    async def call_recording(self, call_id: str) -> dict[str, Any] | None:
        rows = await self._db.execute_fetchall(f"SELECT {_COLUMNS} FROM call_recordings WHERE call_id = ?",
                                               (call_id,))
        return _recording(rows[0]) if rows else None

    async def call_recording_by_public_id(self, public_id: str) -> dict[str, Any] | None:
        """The recording with this public id; None for an unknown or malformed id."""
        if not is_public_id(public_id):
            return None
        rows = await self._db.execute_fetchall(f"SELECT {_COLUMNS} FROM call_recordings WHERE public_id = ?",
                                               (public_id,))
        return _recording(rows[0]) if rows else None

    async def call_recordings(self, *, limit: int = 100, include_purged: bool = True,
                              handled_by: str | None = None) -> list[dict[str, Any]]:
        """The latest recordings first; ``handled_by``: only the calls that agent handled (``call_handlers``)."""
        where, params = [], {"limit": max(0, limit)}
        if not include_purged:
            where.append("state != 'purged'")
        if handled_by is not None:
            where.append(f":agent IN ({_HANDLERS.format(call='call_recordings.call_id')})")
            params["agent"] = handled_by
        rows = await self._db.execute_fetchall(
            f"SELECT {_COLUMNS} FROM call_recordings{where_clause(where)} ORDER BY recorded_at DESC LIMIT :limit",
            params)
        return [_recording(row) for row in rows]

    async def mark_recordings_purged(self, paths: list[str], *, at: datetime) -> int:
        """Mark the rows of files retention deleted; the number marked."""
        if not paths:
            return 0
        marked = 0
        async with self._write() as db:
            for path in paths:
                cursor = await db.execute(
                    "UPDATE call_recordings SET state = 'purged', purged_at = ? WHERE path = ? AND state != 'purged'",
                    (to_ts(at), path))
                marked += cursor.rowcount
        return marked

    async def call_handlers(self, call_id: str) -> tuple[str | None, frozenset[str]]:
        """Who handled a call (``_HANDLERS``): its agent (the last to answer) and every agent who answered it, as
        the console's access rule (gateway.console.access) reads them."""
        call = await self._db.execute_fetchall("SELECT agent FROM calls WHERE call_id = ?", (call_id,))
        rows = await self._db.execute_fetchall(_HANDLERS.format(call=":call"), {"call": call_id})
        return (call[0]["agent"] if call else None), frozenset(row["agent"] for row in rows if row["agent"])

    async def audit_recording_access(self, *, call_id: str, viewer: str, role: str, action: str, allowed: bool,
                                     at: datetime) -> None:
        async with self._write() as db:
            await db.execute(
                "INSERT INTO recording_access_audit (call_id, viewer, role, action, allowed, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (check_text(call_id, "call_id"), check_text(viewer, "viewer"), role, action, int(allowed), to_ts(at)))

    async def recording_access_audit(self, call_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT call_id, viewer, role, action, allowed, at FROM recording_access_audit"
        rows = await self._db.execute_fetchall(sql + (" WHERE call_id = ?" if call_id else "") + " ORDER BY id",
                                               (call_id,) if call_id else ())
        return [{**dict(row), "allowed": bool(row["allowed"]), "at": from_ts(row["at"])} for row in rows]


def _recording(row: Any) -> dict[str, Any]:
    return {**dict(row), "recorded_at": from_ts(row["recorded_at"]), "purged_at": from_ts(row["purged_at"])}
