"""The scheduled push to the provincial 12345 platform (Zhanjiang 12345 rules, art. 19), inside the service.

Every ``interval_s`` the pusher sends what became final since its cursor, batch by batch, and moves the cursor
(``export_cursors``, compare-and-set) only after the platform acknowledged a batch: a gateway stopped at any point
sends that batch again at its next start, under the same Idempotency-Key, and skips nothing. A batch that fails
is sent again after 1 s, doubling up to ``retry_max_s`` (`gateway.basics.backoff`), for as long as it takes: the
export never drops a record to get past a failure; the log says what fails. Gateways sharing one PostgreSQL
database push one at a time: a lease row (`Store.hold_export_lease`) names the one that pushes; when it stops, or
its batch has been failing for longer than the lease, another takes over where the cursor stands.

The pusher is a background task that only reads the store in small pages and writes one cursor row per batch, so
the calls never wait for it; a failing store or platform is logged and retried, never raised into the service.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.basics.backoff import backoff_delays
from gateway.basics.waiting import cancel_and_wait
from gateway.export.platform import Batch, PlatformError, make_batch
from gateway.export.position import format_position, parse_position
from gateway.export.reading import pending_pages
from gateway.export.records import ExportOptions, build_record
from gateway.store.database import Store
from gateway.store.exporting import LEASE_SUFFIX, export_key
from gateway.store.rows import to_ts

__all__ = ["CURSOR_NAME", "Platform", "PlatformPusher", "PushSettings"]

log = logging.getLogger(__name__)

# The cursor of the push to the provincial platform in export_cursors (its lease: "province.lease").
CURSOR_NAME = "province"


class Platform(Protocol):
    async def send(self, batch: Batch) -> None:
        """Return once the platform acknowledged ``batch``; raise PlatformError otherwise."""
        ...


@dataclass(frozen=True)
class PushSettings:
    interval_s: float = 60.0
    batch_size: int = 500
    settle_s: float = 30.0
    open_limit_s: float = 3600.0
    retry_min_s: float = 1.0
    retry_max_s: float = 300.0
    lease_s: float = 90.0           # longer than one batch takes when all is well (the service: 2 x timeout + 30)


class PlatformPusher:
    """Pushes the store's final records to ``platform``; `start` runs it every ``interval_s``, `push_pending` once."""

    def __init__(self, store: Store, platform: Platform, options: ExportOptions, settings: PushSettings, *,
                 clock: Callable[[], datetime], holder: str, name: str = CURSOR_NAME) -> None:
        self.store = store
        self.platform = platform
        self.options = options
        self.settings = settings
        self.clock = clock
        self.holder = holder
        self.name = name
        self._shared = bool(getattr(store.backend, "shared", False))
        self._task: asyncio.Task | None = None
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self.acknowledged = 0           # records acknowledged since start
        self.last_ack_at: datetime | None = None
        self.failing_since: datetime | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="export-push")

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Await ``callback`` when the pusher closes, after its task ended (the platform's HTTP session)."""
        self._on_close.append(callback)

    async def close(self) -> None:
        """Stop; a batch in flight is not acknowledged, so the next start sends it again."""
        await cancel_and_wait(self._task)
        self._task = None
        for callback in self._on_close:
            await callback()

    def status(self) -> dict:
        return {"acknowledged": self.acknowledged,
                "last_ack_at": self.last_ack_at.isoformat(timespec="seconds") if self.last_ack_at else None,
                "failing": self.failing_since is not None, "last_error": self.last_error}

    async def _run(self) -> None:
        delays = None
        while True:
            try:
                await self.push_pending()
                delays, wait = None, self.settings.interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store or a bad cursor: logged, tried again, never raised
                delays = delays or backoff_delays(self.settings.retry_min_s, self.settings.retry_max_s)
                wait = next(delays)
                self._failed(f"{type(exc).__name__}: {exc}")
                log.warning("event=export_cycle_failed error=%s detail=%r retry_in_s=%.1f", type(exc).__name__,
                            str(exc)[:200], wait)
            await asyncio.sleep(wait)

    async def push_pending(self) -> int:
        """One pass: every batch due now, each sent until acknowledged and then the cursor moved; the records
        acknowledged. Stops early (returning what it sent) when another gateway holds the lease or moved the cursor."""
        now = self.clock()
        if self._shared and not await self._hold_lease():
            log.debug("event=export_skipped reason=another_gateway_pushes")
            return 0
        stored = await self.store.export_cursor(self.name)
        position = parse_position(stored, self.options.kinds)
        sent = 0
        pages = pending_pages(self.store, position, self.options.kinds, now=now, settle_s=self.settings.settle_s,
                              open_limit_s=self.settings.open_limit_s, limit=self.settings.batch_size)
        async with contextlib.aclosing(pages):
            async for kind, rows in pages:
                # building a batch takes ~40 ms of masking and JSON for 500 tickets: in a worker thread, so the event
                # loop (the calls) gets its turns meanwhile
                batch = await asyncio.to_thread(self._batch, kind, rows)
                if not await self._deliver(batch):
                    return sent
                position = {**position, kind: export_key(kind, rows[-1])}
                moved = format_position(position)
                if not await self.store.move_export_cursor(self.name, expected=stored, position=moved,
                                                           at=self.clock()):
                    log.info("event=export_cursor_moved_elsewhere batch=%s", batch.id)
                    return sent
                stored = moved
                sent += batch.count
                self.acknowledged += batch.count
                self.last_ack_at = self.clock()
                log.info("event=export_batch_acknowledged batch=%s record_type=%s records=%d", batch.id, kind,
                         batch.count)
                if self._shared and not await self._hold_lease():
                    return sent
        return sent

    def _batch(self, kind: str, rows: list[dict]) -> Batch:
        return make_batch(kind, [build_record(kind, row, self.options) for row in rows], self.options)

    async def _deliver(self, batch: Batch) -> bool:
        """Send ``batch`` until the platform acknowledges it (True), or another gateway took the lease (False)."""
        delays = backoff_delays(self.settings.retry_min_s, self.settings.retry_max_s)
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.platform.send(batch)
            except PlatformError as exc:
                wait = next(delays)
                if exc.retry_after_s is not None:
                    wait = min(max(wait, exc.retry_after_s), self.settings.retry_max_s)
                self._failed(exc.reason)
                log.log(logging.WARNING if exc.transient else logging.ERROR,
                        "event=export_push_failed batch=%s attempt=%d error=%r retry_in_s=%.1f", batch.id, attempt,
                        exc.reason, wait)
                await asyncio.sleep(wait)
                if self._shared and await self._lease_taken():
                    log.info("event=export_lease_taken_over batch=%s", batch.id)
                    return False
                continue
            if self.failing_since is not None:
                log.info("event=export_push_recovered batch=%s attempts=%d", batch.id, attempt)
            self.failing_since, self.last_error = None, None
            return True

    def _failed(self, reason: str) -> None:
        self.failing_since = self.failing_since or self.clock()
        self.last_error = reason

    async def _hold_lease(self) -> bool:
        now = self.clock()
        return await self.store.hold_export_lease(self.name, holder=self.holder, now=now,
                                                  until=now + timedelta(seconds=self.settings.lease_s))

    async def _lease_taken(self) -> bool:
        """Whether another gateway holds the lease now (read only: a failing gateway does not renew it)."""
        lease = await self.store.export_cursor(self.name + LEASE_SUFFIX)
        if lease is None:
            return False
        until, _, holder = lease.partition(" ")
        return holder != self.holder and until >= to_ts(self.clock())
