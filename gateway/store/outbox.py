"""The durable outbox: what the gateway publishes over MQTT is written to the store first.

A screen-pop must survive a broker outage or a gateway restart (docs/architecture.md, step 4: "a broker outage loses
nothing"), so producers never publish directly: they add a row here and wake the publisher, which sends rows in
seq order and deletes each only after the broker's PUBACK. Delivery is at-least-once; every copy of a message
carries the same ``id`` so consumers can drop repeats.

When the state disk refuses writes (full, failing), a screen-pop must still reach the agent who has the caller:
``SpillingOutboxStore`` then keeps new messages in memory, behind the rows already in the store, and remembers
the rows sent whose delete the store refused, so they are neither lost to the agent nor sent again and again.
What waits in memory is not durable (a restart forgets it), and the store never acknowledged it as such.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime
from itertools import count
from typing import Any, Protocol

from gateway.basics.write_health import is_disk_failure, log_write_failure

log = logging.getLogger(__name__)


class OutboxStore(Protocol):
    async def outbox_add(self, topic: str, payload: dict, *, message_id: str, at: datetime) -> int: ...
    async def outbox_pending(self, limit: int = 100) -> list[dict]: ...
    async def outbox_claim(self, claimant: str, limit: int = 100) -> list[dict]: ...
    async def outbox_remove(self, seq: int) -> None: ...
    async def outbox_mark_attempt(self, seq: int, error: str | None) -> None: ...


class Outbox:
    """Producers' side: ``await outbox.put(topic, payload, message_id=...)``; listeners (the publisher's
    ``wake``) are called after the row is committed."""

    def __init__(self, store: OutboxStore, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock
        self._listeners: list[Callable[[], Any]] = []

    def on_added(self, listener: Callable[[], Any]) -> None:
        self._listeners.append(listener)

    async def put(self, topic: str, payload: dict, *, message_id: str) -> int:
        seq = await self._store.outbox_add(topic, payload, message_id=message_id, at=self._clock())
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                # The row is committed: the publisher's periodic sweep still sends it.
                log.exception("event=outbox_listener_failed seq=%s", seq)
        return seq


# Messages held in memory at most while the disk refuses writes: hours of screen-pops at a busy centre's rate.
SPILL_LIMIT = 10_000


class OutboxFull(Exception):
    """The store refuses writes and the memory spill is at its limit."""


class SpillingOutboxStore:
    """An ``OutboxStore`` over the real one that goes on when the disk refuses writes.

    - ``outbox_add`` that the store refuses for a disk failure is kept in memory (seq < 0). Once one message is
      in memory, later ones join it there until the memory is sent, so the order (store rows first, they are
      older) holds across the outage.
    - ``outbox_remove`` that the store refuses remembers the seq: the row is left out of ``outbox_pending``
      (it was delivered) and its delete is retried on later calls.
    - ``outbox_mark_attempt`` that the store refuses is dropped (it is bookkeeping).
    - once the store takes writes again, what waited in memory is written to it, oldest first.
    """

    def __init__(self, store: OutboxStore, *, limit: int = SPILL_LIMIT) -> None:
        self._store = store
        self._limit = limit
        self._memory: deque[dict] = deque()
        self._seqs = count(-1, -1)
        self._sent_unremoved: set[int] = set()

    @property
    def spilled(self) -> int:
        """Messages waiting in memory for the broker."""
        return len(self._memory)

    @property
    def unremoved(self) -> int:
        """Delivered store rows whose delete the store has refused so far."""
        return len(self._sent_unremoved)

    async def outbox_add(self, topic: str, payload: dict, *, message_id: str, at: datetime) -> int:
        await self._persist_memory()
        if not self._memory:
            try:
                return await self._store.outbox_add(topic, payload, message_id=message_id, at=at)
            except Exception as exc:
                if not is_disk_failure(exc):
                    raise
                log_write_failure(log, exc, "outbox_spilled_to_memory", message_id=message_id)
        for row in self._memory:
            if row["message_id"] == message_id:
                return row["seq"]
        if len(self._memory) >= self._limit:
            raise OutboxFull(f"the store refuses writes and {self._limit} messages already wait in memory")
        seq = next(self._seqs)
        self._memory.append({"seq": seq, "message_id": message_id, "topic": topic, "payload": payload,
                             "created_at": at, "attempts": 0, "last_error": None})
        return seq

    async def outbox_pending(self, limit: int = 100) -> list[dict]:
        await self._retry_removals()
        await self._persist_memory()
        skip = self._sent_unremoved
        return self._with_memory(await self._store.outbox_pending(limit + len(skip)), limit)

    async def outbox_claim(self, claimant: str, limit: int = 100) -> list[dict]:
        """The store's claimed rows, then what waits in memory. When the store refuses the claim (a full disk,
        a database away), its unclaimed rows are read instead if it can still be read (with several gateways
        one may then be published twice, under one id), else only memory is sent."""
        await self._retry_removals()
        await self._persist_memory()
        want = limit + len(self._sent_unremoved)
        try:
            rows = await self._store.outbox_claim(claimant, want)
        except Exception as exc:
            if not is_disk_failure(exc):
                raise
            try:
                rows = await self._store.outbox_pending(want)
            except Exception as read_exc:
                if not is_disk_failure(read_exc):
                    raise
                rows = []
        return self._with_memory(rows, limit)

    def _with_memory(self, stored: list[dict], limit: int) -> list[dict]:
        rows = [row for row in stored if row["seq"] not in self._sent_unremoved][:limit]
        if len(rows) < limit:
            rows += list(self._memory)[: limit - len(rows)]
        return rows

    async def outbox_remove(self, seq: int) -> None:
        if seq < 0:
            self._memory = deque(row for row in self._memory if row["seq"] != seq)
            return
        try:
            await self._store.outbox_remove(seq)
        except Exception as exc:
            if not is_disk_failure(exc):
                raise
            self._sent_unremoved.add(seq)

    async def outbox_mark_attempt(self, seq: int, error: str | None) -> None:
        if seq < 0:
            for row in self._memory:
                if row["seq"] == seq:
                    row["attempts"] += 1
                    row["last_error"] = error
            return
        try:
            await self._store.outbox_mark_attempt(seq, error)
        except Exception as exc:
            if not is_disk_failure(exc):
                raise

    async def _persist_memory(self) -> None:
        """The disk takes writes again: what waited in memory goes into the store, oldest first (a message the
        publisher is sending meanwhile may then arrive twice, with one id)."""
        while self._memory:
            row = self._memory[0]
            try:
                await self._store.outbox_add(row["topic"], row["payload"], message_id=row["message_id"],
                                             at=row["created_at"])
            except Exception as exc:
                if not is_disk_failure(exc):
                    raise
                return
            self._memory.popleft()

    async def _retry_removals(self) -> None:
        for seq in sorted(self._sent_unremoved):
            try:
                await self._store.outbox_remove(seq)
            except Exception as exc:
                if not is_disk_failure(exc):
                    raise
                return
            self._sent_unremoved.discard(seq)
