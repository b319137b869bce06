"""Incident announcements in the store (Zhanjiang 12345 rules, art. 18): what the office adds and removes, the one
each call heard, and the figure of the calls an announcement answered."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.announcement import Announcement, check_text as check_announcement_text, check_window
from gateway.store.rows import check_text, from_ts, to_ts

__all__ = ["ANSWERED_CALL", "AnnouncementsMixin"]

_COLUMNS = "id, text, prompt, starts_at, until, created_by, created_at, removed_at, removed_by"
# A call the announcement answered: the caller heard it (or began to) and hung up in the menu without joining the
# queue, so no agent's time went to a matter the announcement had already told them about.
ANSWERED_CALL = "c.outcome = 'abandoned' AND c.queued_at IS NULL"


class AnnouncementsMixin:
    """Announcement methods of `Store`; needs its `_db` and `_write()`."""

    async def add_announcement(self, *, text: str, prompt: str, starts_at: datetime, until: datetime,
                               created_by: str, at: datetime) -> Announcement:
        """A new announcement callers hear from ``starts_at`` until ``until`` (refused: see
        `gateway.announcement.check_text` and `check_window`); ``prompt`` names its sound file."""
        text = check_announcement_text(text)
        prompt, created_by = check_text(prompt, "prompt"), check_text(created_by, "created_by")
        check_window(starts_at, until, at)
        async with self._write(durable=True) as db:
            rows = await db.execute_fetchall(
                f"INSERT INTO announcements (text, prompt, starts_at, until, created_by, created_at)"
                f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
                (text, prompt, to_ts(starts_at), to_ts(until), created_by, to_ts(at)))
        return announcement_from_row(rows[0])

    async def remove_announcement(self, announcement_id: int, *, by: str, at: datetime) -> Announcement | None:
        """Stop an announcement at ``at``; None when there is no such announcement or it was removed before."""
        by = check_text(by, "by")
        async with self._write(durable=True) as db:
            rows = await db.execute_fetchall(
                f"UPDATE announcements SET removed_at = ?, removed_by = ? WHERE id = ? AND removed_at IS NULL"
                f" RETURNING {_COLUMNS}", (to_ts(at), by, int(announcement_id)))
        return announcement_from_row(rows[0]) if rows else None

    async def get_announcement(self, announcement_id: int) -> Announcement | None:
        rows = await self._db.execute_fetchall(f"SELECT {_COLUMNS} FROM announcements WHERE id = ?",
                                               (int(announcement_id),))
        return announcement_from_row(rows[0]) if rows else None

    async def list_announcements(self, now: datetime, *, include_ended: bool = False) -> list[Announcement]:
        """Newest first: those not yet over at ``now`` (in force or still to start; the gateways' read), or every
        one ever added."""
        if include_ended:
            rows = await self._db.execute_fetchall(f"SELECT {_COLUMNS} FROM announcements ORDER BY id DESC")
        else:
            rows = await self._db.execute_fetchall(
                f"SELECT {_COLUMNS} FROM announcements WHERE until > ? AND removed_at IS NULL ORDER BY id DESC",
                (to_ts(now),))
        return [announcement_from_row(row) for row in rows]

    async def mark_call_announcement(self, call_id: str, announcement_id: int) -> None:
        """The caller of ``call_id`` began to hear ``announcement_id``."""
        call_id = check_text(call_id, "call_id")
        async with self._write() as db:
            await db.execute("INSERT INTO calls (call_id) VALUES (?) ON CONFLICT DO NOTHING", (call_id,))
            await db.execute("UPDATE calls SET announcement_id = ? WHERE call_id = ?", (int(announcement_id), call_id))

    async def announcement_figures(self, since: datetime, until: datetime) -> list[dict]:
        """Per announcement, for the calls started ``since`` <= time < ``until``: ``heard`` (calls that began to
        hear it) and ``answered`` (of those, the callers who hung up in the menu without joining the queue:
        `ANSWERED_CALL`), with its ``id`` and ``text``. Every announcement heard in the range or in force during
        any of it is listed (heard 0 when none of the range's callers reached it), oldest first."""
        window = (to_ts(since), to_ts(until))
        rows = await self._db.execute_fetchall(
            "SELECT a.id, a.text, COUNT(c.call_id) AS heard,"
            f" COALESCE(SUM(CASE WHEN {ANSWERED_CALL} THEN 1 ELSE 0 END), 0) AS answered"
            " FROM announcements AS a LEFT JOIN calls AS c"
            "   ON c.announcement_id = a.id AND c.started_at >= ? AND c.started_at < ?"
            " WHERE (a.starts_at < ? AND a.until > ?"
            "        AND (a.removed_at IS NULL OR (a.removed_at > ? AND a.removed_at > a.starts_at)))"
            "    OR c.call_id IS NOT NULL"
            " GROUP BY a.id, a.text ORDER BY a.id",
            (*window, window[1], window[0], window[0]))
        return [{"id": row["id"], "text": row["text"], "heard": int(row["heard"]), "answered": int(row["answered"])}
                for row in rows]


def announcement_from_row(row: Any) -> Announcement:
    return Announcement(
        id=row["id"], text=row["text"], prompt=row["prompt"], starts_at=from_ts(row["starts_at"]),
        until=from_ts(row["until"]), created_by=row["created_by"], created_at=from_ts(row["created_at"]),
        removed_at=from_ts(row["removed_at"]), removed_by=row["removed_by"])
