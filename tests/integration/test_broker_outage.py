"""Fault drill: the stack's mosquitto is stopped for 60 s while agents answer calls; every screen-pop made
meanwhile reaches its agent after the broker is back, in the order the gateway made them (per agent topic).

The agents' side is a real MQTT subscriber logged in as each agent (its own password, the broker's ACL), the calls
are sipp callers answered by the sipp agents through the real queue.
"""
from __future__ import annotations

import asyncio
import json
import time

import aiomqtt
import pytest

from gateway.contract import screenpop_topic
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.processes import tcp_port_open, wait_until
from gateway.sandbox.testcall import place_call
from gateway.store.database import Store

pytestmark = pytest.mark.integration

OUTAGE_S = 60.0
CALLS_UNTIL_S = 42.0          # callers keep arriving this long into the outage (each call lasts ~10 s)


class AgentSubscriber:
    """One agent's console as far as MQTT goes: subscribed to its own topics, reconnecting at once."""

    def __init__(self, cfg, agent: str) -> None:
        self.cfg, self.agent = cfg, agent
        self.received: list[tuple[float, dict]] = []
        self.subscribed_at: list[float] = []
        self.subscribed = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        password = mqtt_password(self.cfg.state_dir, self.agent)
        while True:
            try:
                async with aiomqtt.Client(self.cfg.mqtt.host, self.cfg.mqtt.port, username=self.agent,
                                          password=password, identifier=self.agent, timeout=5) as client:
                    await client.subscribe(f"hotline/agents/{self.agent}/#", qos=1)
                    self.subscribed_at.append(time.monotonic())
                    self.subscribed.set()
                    async for message in client.messages:
                        if str(message.topic) != screenpop_topic(self.agent):
                            continue
                        async with self._arrived:
                            self.received.append((time.monotonic(), json.loads(message.payload)))
                            self._arrived.notify_all()
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.05)

    async def wait_for(self, ids: set[str], timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                async with self._arrived:
                    await self._arrived.wait_for(lambda: ids <= {pop["id"] for _, pop in self.received})
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def order_violations(expected: list[str], received: list[str]) -> int:
    """Pairs delivered in the opposite order to the one the gateway made them in (repeats: first copy counts)."""
    first: list[str] = []
    for message_id in received:
        if message_id in expected and message_id not in first:
            first.append(message_id)
    rank = {message_id: i for i, message_id in enumerate(expected)}
    ranks = [rank[m] for m in first]
    return sum(1 for i, a in enumerate(ranks) for b in ranks[i + 1:] if b < a)


def test_pops_made_while_the_broker_is_down_reach_their_agents_after_in_order(sandbox, agents):
    cfg, stack = sandbox.config, sandbox.stack
    if not stack.gateway.pid():
        sandbox.hotline("stack", "up")
    names = [a.name for a in cfg.agents]

    async def drill() -> dict:
        subscribers = {name: AgentSubscriber(cfg, name) for name in names}
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(*(s.subscribed.wait() for s in subscribers.values()))
            assert stack.mosquitto.stop(timeout=10), "the stack's mosquitto was not running"
            stopped = time.monotonic()
            assert await asyncio.to_thread(wait_until, lambda: not stack.gateway_status().get("mqtt_connected"),
                                           10), "the gateway did not notice the broker going"

            calls: list[dict] = []

            async def caller(worker: int) -> None:
                n = 0
                while time.monotonic() - stopped < CALLS_UNTIL_S:
                    number = f"1380013{8200 + worker * 50 + n:04d}"
                    calls.append(await place_call(cfg, number, "1", hold_s=4, full=True))
                    n += 1

            await asyncio.gather(*(caller(w) for w in range(len(names))))
            pending = await _outbox(cfg)
            queued = {name: [row["message_id"] for row in pending if row["topic"] == screenpop_topic(name)]
                      for name in names}
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))

            up = asyncio.create_task(asyncio.to_thread(sandbox.hotline, "stack", "up"))
            while not await asyncio.to_thread(tcp_port_open, cfg.mqtt.host, cfg.mqtt.port, 0.05):
                assert not up.done() or up.exception() is None, up.exception()
                await asyncio.sleep(0.02)
            back = time.monotonic()
            down_s = back - stopped
            await up
            delivered = {name: await subscribers[name].wait_for(set(ids), 60) for name, ids in queued.items()}
            arrivals = [t for name in names for t, pop in subscribers[name].received if pop["id"] in queued[name]]
            return {
                "calls": calls, "queued": queued, "delivered": delivered, "down_s": down_s,
                "drain_s": (max(arrivals) - back) if arrivals else None,
                "received": {name: [pop["id"] for _, pop in subscribers[name].received] for name in names},
                "resubscribed_after_s": {name: round(min((t for t in s.subscribed_at if t >= back), default=-1)
                                                     - back, 2) for name, s in subscribers.items()},
                "outbox_left": await _outbox_left_after(cfg, 5),
            }
        finally:
            for s in subscribers.values():
                await s.close()

    figures = asyncio.run(drill())
    calls, queued, received = figures["calls"], figures["queued"], figures["received"]
    answered = [c for c in calls if c["answered_by"]]
    total_queued = sum(map(len, queued.values()))
    delivered_after = sum(len(set(ids) & set(received[name])) for name, ids in queued.items())
    violations = {name: order_violations(ids, received[name]) for name, ids in queued.items()}
    repeats = {name: len(received[name]) - len(set(received[name])) for name in queued}
    report = (f"broker outage drill: broker down {figures['down_s']:.1f} s; calls {len(calls)}, answered by agents "
              f"{len(answered)}; pops queued while down {total_queued} "
              f"({', '.join(f'{n}: {len(v)}' for n, v in queued.items())}); delivered after {delivered_after}; "
              f"time to drain {figures['drain_s'] if figures['drain_s'] is None else round(figures['drain_s'], 2)} s "
              f"from the broker listening; order violations {sum(violations.values())} {violations}; "
              f"repeated copies {repeats}; consoles resubscribed after {figures['resubscribed_after_s']} s; "
              f"outbox rows left {figures['outbox_left']}")
    print(report)
    assert len(answered) == len(calls) >= 2, report
    assert total_queued >= len(answered), report          # every answered call made a pop that had to wait
    assert all(figures["delivered"].values()) and delivered_after == total_queued, report
    assert sum(violations.values()) == 0, report
    assert figures["outbox_left"] == 0, report
    assert stack.gateway_status().get("mqtt_connected"), report


async def _outbox_left_after(cfg, timeout: float) -> int:
    """Rows still in the outbox once the publisher had ``timeout`` s to remove the delivered ones."""
    deadline = time.monotonic() + timeout
    while (left := len(await _outbox(cfg))) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return left


async def _outbox(cfg) -> list[dict]:
    store = await Store.open(cfg.store.location)
    try:
        return await store.outbox_pending(10_000)
    finally:
        await store.close()
