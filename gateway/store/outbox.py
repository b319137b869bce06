"""The durable outbox: what the gateway publishes over MQTT is written to the store first.

A screen-pop must survive a broker outage or a gateway restart (docs/architecture.md, step 4: "a broker outage loses
nothing"), so producers never publish directly: they add a row here and wake the publisher, which sends rows in
seq order and deletes each only after the broker's PUBACK. Delivery is at-least-once; every copy of a message
carries the same ``id`` so consumers can drop repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol


log = logging.getLogger(__name__)


class OutboxStore(Protocol):
    async def outbox_add(self, topic: str, payload: dict, *, message_id: str, at: datetime) -> int: ...
    async def outbox_pending(self, limit: int = 100) -> list[dict]: ...
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
