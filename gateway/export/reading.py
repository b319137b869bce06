"""Reading the export's records from the store: a time window (`export_records`, what `hotline export` writes and
the office's benchmark calls) and what an incremental push has not sent yet (`pending_pages`).

Both read page by page in (time, key) order through the time columns' indexes (`gateway.store.exporting`), so a
month of calls streams in constant memory and no query holds the store for long.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

from gateway.export.position import Position
from gateway.export.records import ExportOptions, build_record
from gateway.store.database import Store
from gateway.store.exporting import export_key
from gateway.store.rows import to_ts

__all__ = ["export_records", "pending_pages", "push_horizon"]


async def export_records(store: Store, since: datetime, until: datetime,
                         options: ExportOptions) -> AsyncIterator[dict]:
    """Every record of ``options.kinds`` whose time (a call's start, a ticket's creation, an audit entry's act) is
    in [``since``, ``until``), as it stands now, final or not: the calls, then the tickets, then the audit, each
    in time order."""
    window = (to_ts(since), to_ts(until))
    for kind in options.kinds:
        async for rows in _pages(store, kind, since=window[0], until=window[1], after=None, limit=options.page_size):
            for row in rows:
                yield build_record(kind, row, options)


async def push_horizon(store: Store, kind: str, start: str, *, now: datetime, settle_s: float,
                       open_limit_s: float) -> str:
    """How far (stored time, excluded) an incremental export of ``kind`` standing at ``start`` may go at ``now``.

    Two gateways on one database commit their rows a moment after the times the rows carry, and not in time order:
    gateway A may commit a call that started at 10:00:00.100 after gateway B committed one that started at
    10:00:00.200. A cursor that moved past 10:00:00.200 on seeing B's call would never see A's. So the export goes
    only up to ``settle_s`` before now, by which time every row with an earlier time has been committed (each write
    is one short transaction, bounded by the store's wait timeout; the gateways' clocks are NTP-synchronised to well
    under a second). And it stops at the first record that may still change (a call not ended, a ticket not saved:
    `gateway.store.exporting`), so each record goes out once, final: the cursor then never has to come back for it.
    A record open for longer than ``open_limit_s`` (a call whose end was never recorded) goes out as it stands,
    so that it cannot hold the export back for ever."""
    settled = to_ts(now - timedelta(seconds=settle_s))
    stale = to_ts(now - timedelta(seconds=open_limit_s))
    first_open = await store.export_first_open(kind, since=max(start, stale), until=settled, settled=settled)
    return settled if first_open is None else first_open


async def pending_pages(store: Store, position: Position, kinds: Iterable[str], *, now: datetime, settle_s: float,
                        open_limit_s: float, limit: int) -> AsyncIterator[tuple[str, list[dict]]]:
    """The store rows an incremental export standing at ``position`` has still to send at ``now``, as (kind, page)
    in the order to send them, each page at most ``limit`` rows; a page starts after the previous page's last row."""
    for kind in kinds:
        start, key = position.get(kind, ("", None))
        until = await push_horizon(store, kind, start, now=now, settle_s=settle_s, open_limit_s=open_limit_s)
        after = None if key is None else (start, key)
        async for rows in _pages(store, kind, since=start, until=until, after=after, limit=limit):
            yield kind, rows


async def _pages(store: Store, kind: str, *, since: str, until: str, after: tuple[str, str | int] | None,
                 limit: int) -> AsyncIterator[list[dict]]:
    while True:
        rows = await store.export_page(kind, since=since, until=until, after=after, limit=limit)
        if rows:
            yield rows
        if len(rows) < limit:
            return
        after = export_key(kind, rows[-1])
