"""The service's daily purge of recordings past their retention (Zhanjiang 12345 rules, art. 20), and the marking
of the purged calls' rows."""
from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

from gateway.basics.clock import utc_now
from gateway.basics.write_health import STORE_ERRORS
from recordings.retention import purge_all

__all__ = ["purge_recordings_daily"]

log = logging.getLogger("recordings.daily_purge")


async def purge_recordings_daily(store, recordings_dir: Path, spool: Path, *, retention_days: int,
                                 first_after_s: float = 60.0, every_s: float = 86_400.0) -> None:
    """Purge recordings past their retention (recordings.retention) a minute after start, then once a day; the
    rows of purged call recordings are marked in ``store`` (gateway.store.recordings)."""
    await asyncio.sleep(first_after_s)
    while True:
        try:
            now = utc_now()
            reports = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
                purge_all, recordings_dir, spool, at=now, retention_days=retention_days))
            marked = await store.mark_recordings_purged(reports["recordings"].paths, at=now)
            log.info("event=recordings_purged deleted=%d rows_marked=%d spool_deleted=%d failed=%d",
                     reports["recordings"].deleted, marked, reports["spool"].deleted,
                     len(reports["recordings"].failed) + len(reports["spool"].failed))
        except (OSError, *STORE_ERRORS) as exc:   # an unreadable directory: tried again tomorrow, the service goes on
            log.error("event=recordings_purge_failed error=%s", exc)
        await asyncio.sleep(every_s)
