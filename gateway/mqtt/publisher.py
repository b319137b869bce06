"""Publishes the store's outbox to the MQTT broker: QoS 1, in seq order, a row deleted only after its PUBACK.

Each batch of rows is claimed first (``outbox_claim``), so gateways sharing one database publish each row once.

One long-lived task holds one broker connection (persistent session, user ``gateway``; the broker takes the user
name as the client id, so the client id sent is the user name too). It
sends pending rows one at a time: waiting for each PUBACK before the next keeps the order across reconnects
(a message is never overtaken by a later one) at ~1 ms per message on loopback, far above screen-pop rates.

aiomqtt's ``publish(qos=1)`` returns after the PUBACK, but if the connection drops first it only gives up at its
timeout: the publish is raced against the client's disconnect future so a dead broker is noticed at once.
When the broker is away, rows stay in the store and the task reconnects with capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, Literal

import aiomqtt

from gateway.basics.backoff import backoff_delays
from gateway.basics.waiting import cancel_and_wait, wait_for_condition
from gateway.basics.write_health import log_write_failure
from gateway.store.outbox import OutboxStore

log = logging.getLogger(__name__)

BATCH = 100


class MQTTPublisher:
    def __init__(
        self,
        store: OutboxStore,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        client_id: str | None = None,
        reconnect_min: float = 0.2,
        reconnect_max: float = 10.0,
        publish_timeout: float = 10.0,
        sweep_interval: float = 5.0,
        keepalive: int = 30,
        transport: Literal["tcp", "websockets"] = "tcp",
        claimant: str | None = None,
        on_published: Callable[[dict], None] | None = None,
    ) -> None:
        """``on_published(row)`` is called for each row the broker acknowledged (the metrics' screen-pop latency)."""
        self._store = store
        self._on_published = on_published
        # Whose claim an outbox row is under while this publisher sends it (several gateways share one store).
        self.claimant = claimant or f"{socket.gethostname()}/{os.getpid()}"
        self._client_args: dict[str, Any] = dict(
            hostname=host, port=port, username=username, password=password, identifier=client_id or username,
            # Persistent session: the broker keeps our in-flight QoS 1 state across a short drop.
            clean_session=False, keepalive=keepalive, timeout=publish_timeout, transport=transport,
        )
        self._reconnect_min = min(reconnect_min, reconnect_max)
        self._reconnect_max = reconnect_max
        self._publish_timeout = publish_timeout
        # Rows added by another process (or whose wake was missed) are picked up at this interval.
        self._sweep_interval = sweep_interval
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._connected = False
        self.published = 0
        self.failures = 0

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    def wake(self) -> None:
        """Something was added to the outbox: publish now instead of at the next sweep."""
        self._wakeup.set()

    async def close(self, drain_s: float = 0.0) -> None:
        """Stop publishing. With ``drain_s``, a connected publisher first gets that long to send what the outbox
        still holds (pops of calls answered just before a shutdown); whatever is left stays in the store for the
        next start."""
        if drain_s > 0 and self._task is not None and self._connected:
            await self.drain(drain_s)
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)
        self._connected = False

    async def wait_published(self, count: int, timeout: float) -> bool:
        """True once ``published`` reaches ``count``, False on timeout."""
        return await wait_for_condition(self._progress, lambda: self.published >= count, timeout)

    async def drain(self, timeout: float) -> bool:
        """True once the outbox is empty; False if the broker goes away or ``timeout`` passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.wake()
        while True:
            if not await self._store.outbox_pending(1):
                return True
            remaining = deadline - loop.time()
            if not self._connected or remaining <= 0:
                return False
            await wait_for_condition(self._progress,
                                     lambda sent=self.published: self.published > sent or not self._connected,
                                     min(0.2, remaining))

    async def wait_connected(self, timeout: float) -> bool:
        return await wait_for_condition(self._progress, lambda: self._connected, timeout)

    # -- the task ---------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        delays = None
        target = f"{self._client_args['hostname']}:{self._client_args['port']}"
        while True:
            try:
                async with aiomqtt.Client(**self._client_args) as client:
                    await self._set_connected(True)
                    delays = None
                    log.info("event=mqtt_connected broker=%s", target)
                    await self._publish_forever(client)
            except aiomqtt.MqttError as exc:
                log.warning("event=mqtt_unavailable broker=%s error=%s", target, exc)
            except Exception as exc:  # noqa: BLE001 - logged by log_write_failure
                # A store error (disk full, locked too long) must not end publishing for good.
                log_write_failure(log, exc, "mqtt_publisher_failed", broker=target)
            finally:
                if self._connected:
                    await self._set_connected(False)
            delays = delays or backoff_delays(self._reconnect_min, self._reconnect_max)
            await asyncio.sleep(next(delays))

    async def _publish_forever(self, client: aiomqtt.Client) -> None:
        while True:
            self._wakeup.clear()
            rows = await self._store.outbox_claim(self.claimant, BATCH)
            for row in rows:
                await self._publish_row(client, row)
            if len(rows) == BATCH:
                continue
            await self._idle(client)

    async def _publish_row(self, client: aiomqtt.Client, row: dict) -> None:
        body = json.dumps(row["payload"], ensure_ascii=False, separators=(",", ":")).encode()
        publish = asyncio.ensure_future(client.publish(row["topic"], body, qos=1, timeout=self._publish_timeout))
        try:
            await _until_disconnected(client, publish)
        except BaseException as exc:
            if not publish.done():
                publish.cancel()
            if isinstance(exc, Exception):
                self.failures += 1
                # Kept for the next connection; the copy may have reached the broker, hence the same id.
                await self._store.outbox_mark_attempt(row["seq"], f"{type(exc).__name__}: {exc}"[:500])
                log.warning("event=mqtt_publish_failed seq=%s message_id=%s topic=%s error=%s", row["seq"],
                            row["message_id"], row["topic"], exc)
                if not isinstance(exc, aiomqtt.MqttError):
                    raise aiomqtt.MqttError(f"publish failed: {exc}") from exc
            raise
        if self._on_published is not None:
            try:
                self._on_published(row)
            except Exception:  # noqa: BLE001 - a figure lost, not the message
                log.exception("event=mqtt_published_callback_failed seq=%s", row["seq"])
        await self._store.outbox_remove(row["seq"])
        async with self._progress:
            self.published += 1
            self._progress.notify_all()
        log.debug("event=mqtt_published seq=%s message_id=%s topic=%s", row["seq"], row["message_id"], row["topic"])

    async def _idle(self, client: aiomqtt.Client) -> None:
        """Until woken, the sweep interval passes, or the connection drops (raises MqttError)."""
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the task's cancellation (gh-86296)
            async with asyncio.timeout(self._sweep_interval):
                await _until_disconnected(client, woken)
        except TimeoutError:
            pass
        finally:
            woken.cancel()

    async def _set_connected(self, value: bool) -> None:
        async with self._progress:
            self._connected = value
            self._progress.notify_all()


async def _until_disconnected(client: aiomqtt.Client, work: asyncio.Future) -> Any:
    """``work``'s result, or MqttError as soon as the client's connection is lost."""
    # aiomqtt's own message iterator races its work against this future the same way.
    disconnected: asyncio.Future = client._disconnected  # noqa: SLF001
    done, _ = await asyncio.wait({work, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    if work in done:
        return work.result()
    cause = disconnected.exception() if not disconnected.cancelled() else None
    raise aiomqtt.MqttError(f"connection lost: {cause}") from cause
