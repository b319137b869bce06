"""Screen-pop latency: AgentConnect handed to ScreenPopper.handle (t0) -> the agent's subscriber has the pop (t1).

A real mosquitto on free ports (never the stack's), a store in a temp dir, N agents each with a console
subscribed to its own topic. Each round, N synthetic AgentConnect events (one call per agent, each caller with a
few earlier calls in the history) are handed to the popper at once; t1 - t0 covers the store reads, the outbox
write, the publisher's QoS 1 publish and the broker's delivery. Baseline in the same run: the same payloads
published directly (QoS 1, no store, no outbox) from a gateway client; the ratio is the outbox's cost.

    .venv/bin/python bench/screenpop_latency.py [--agents 20] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiomqtt
from panoramisk.message import Message

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ami_handlers.screenpop import ScreenPopper  # noqa: E402
from gateway.mqtt.broker_config import write_broker_config
from gateway.sandbox.broker import LocalBroker, free_port
from gateway.mqtt.passwords import mqtt_password
from gateway.contract import screenpop_topic
from gateway.mqtt.publisher import MQTTPublisher  # noqa: E402
from gateway.store.outbox import Outbox  # noqa: E402
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store  # noqa: E402

HOST = "127.0.0.1"
# aiomqtt warns past 10 concurrent publishes; the baseline makes 20 on purpose.
_QUIET = logging.getLogger("bench.aiomqtt")
_QUIET.setLevel(logging.ERROR)


def now() -> datetime:
    return datetime.now(SHANGHAI)


def number(i: int) -> str:
    return f"+86138{i:08d}"


class Consoles:
    """One subscriber per agent; records perf_counter() at receipt, keyed by the pop's call_id."""

    def __init__(self, state_dir: Path, port: int, agents: list[str]) -> None:
        self.received: dict[str, float] = {}
        self.sizes: list[int] = []
        self._state_dir, self._port, self._agents = state_dir, port, agents
        self._arrived = asyncio.Condition()
        self._ready = 0
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._console(agent)) for agent in self._agents]
        async with self._arrived:
            await self._arrived.wait_for(lambda: self._ready == len(self._agents))

    async def _console(self, agent: str) -> None:
        async with aiomqtt.Client(HOST, self._port, username=agent, password=mqtt_password(self._state_dir, agent),
                                  identifier=f"bench-console-{agent}", timeout=10) as client:
            await client.subscribe(screenpop_topic(agent), qos=1)
            async with self._arrived:
                self._ready += 1
                self._arrived.notify_all()
            async for message in client.messages:
                t1 = time.perf_counter()
                call_id = json.loads(message.payload)["call_id"]
                self.sizes.append(len(message.payload))
                async with self._arrived:
                    self.received[call_id] = t1
                    self._arrived.notify_all()

    async def wait_for(self, call_ids: list[str], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            async with self._arrived:
                await self._arrived.wait_for(lambda: all(c in self.received for c in call_ids))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def seed(store: Store, agents: int, rounds: int, history: int) -> None:
    start = now()
    for r in range(rounds):
        for i in range(agents):
            call_id, caller = f"bench-{r}-{i}", number(r * agents + i)  # one caller per call: a fixed history
            for h in range(history):
                await store.open_call(call_id=f"old-{r}-{i}-{h}", number=caller, channel="PJSIP/trunk",
                                      started_at=start - timedelta(days=h + 1))
            await store.open_call(call_id=call_id, number=caller, channel="PJSIP/trunk", started_at=start)
            await store.update_call(call_id, ivr_path=["welcome", "3"], request_type="complaint", outcome="queued")
            ticket = await store.create_ticket_draft(call_id=call_id, request_type="complaint", created_at=start)
            await store.update_ticket_draft(ticket, unit="城管局", summary="夜间施工噪音",
                                            transcript="晚上十一点了楼下工地还在施工，吵得睡不着" * 3)


def agent_connect(call_id: str, agent: str) -> Message:
    vars_ = [f"HOTLINE_CALL_ID={call_id}", "HOTLINE_REQUEST_TYPE=complaint"]
    return Message({"Event": "AgentConnect", "Queue": "hotline", "MemberName": f"PJSIP/{agent}",
                    "Interface": f"PJSIP/{agent}", "ChanVariable": vars_, "DestChanVariable": vars_})


async def through_outbox(popper: ScreenPopper, consoles: Consoles, agents: list[str], rounds: int) -> list[float]:
    latencies = []
    for r in range(rounds):
        call_ids = [f"bench-{r}-{i}" for i in range(len(agents))]
        t0: dict[str, float] = {}

        async def pop(call_id: str, agent: str) -> None:
            t0[call_id] = time.perf_counter()
            await popper.handle(agent_connect(call_id, agent))

        await asyncio.gather(*(pop(c, a) for c, a in zip(call_ids, agents)))
        await consoles.wait_for(call_ids)
        latencies += [consoles.received[c] - t0[c] for c in call_ids]
    return latencies


async def direct(state_dir: Path, port: int, consoles: Consoles, agents: list[str], rounds: int,
                 payload_size: int) -> list[float]:
    latencies = []
    async with aiomqtt.Client(HOST, port, username="gateway", password=mqtt_password(state_dir, "gateway"),
                              identifier="bench-direct", timeout=10, logger=_QUIET) as client:
        for r in range(rounds):
            call_ids = [f"direct-{r}-{i}" for i in range(len(agents))]
            t0: dict[str, float] = {}

            async def publish(call_id: str, agent: str) -> None:
                body = json.dumps({"call_id": call_id, "pad": "x" * payload_size}).encode()
                t0[call_id] = time.perf_counter()
                await client.publish(screenpop_topic(agent), body, qos=1)

            await asyncio.gather(*(publish(c, a) for c, a in zip(call_ids, agents)))
            await consoles.wait_for(call_ids)
            latencies += [consoles.received[c] - t0[c] for c in call_ids]
    return latencies


def summary(name: str, latencies: list[float]) -> tuple[float, float]:
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"{name:<34} n={len(ms):<5} p50={p50:7.2f} ms  p99={p99:7.2f} ms  max={ms[-1]:7.2f} ms")
    return p50, p99


async def main(agents_n: int, rounds: int, history: int) -> None:
    agents = [f"agent{i + 1}" for i in range(agents_n)]
    with tempfile.TemporaryDirectory(prefix="screenpop-bench-") as tmp:
        state_dir = Path(tmp)
        port = free_port()
        conf = write_broker_config(state_dir, host=HOST, port=port, ws_port=free_port(), agents=agents, centres=[])
        broker = LocalBroker(conf, host=HOST, port=port, log_file=state_dir / "mosquitto.log")
        broker.start()
        store = await Store.open(state_dir / "hotline.sqlite")
        publisher = MQTTPublisher(store, host=HOST, port=port, username="gateway",
                                  password=mqtt_password(state_dir, "gateway"))
        outbox = Outbox(store, clock=now)
        outbox.on_added(publisher.wake)
        popper = ScreenPopper(store, outbox, clock=now)
        consoles = Consoles(state_dir, port, agents)
        try:
            await seed(store, agents_n, rounds + 1, history)
            await publisher.start()
            await publisher.wait_connected(10)
            await consoles.start()
            await through_outbox(popper, consoles, agents, 1)  # warm-up round (bench-0-*)
            outbox_lat = await through_outbox(popper, consoles, agents, rounds + 1)
            outbox_lat = outbox_lat[agents_n:]  # round 0 was the warm-up
            payload = int(statistics.median(consoles.sizes))  # the baseline sends pops of the same size
            # The baseline connects as the gateway's user: one session per user (the broker takes the user name
            # as the client id), so the publisher leaves first.
            await publisher.close()
            direct_lat = await direct(state_dir, port, consoles, agents, rounds, payload)
            print(f"agents={agents_n} rounds={rounds} history_calls_per_caller={history} pop_bytes={payload}")
            o50, o99 = summary("AgentConnect -> console (outbox)", outbox_lat)
            d50, d99 = summary("direct QoS 1 publish (baseline)", direct_lat)
            print(f"ratio outbox/direct: p50 {o50 / d50:.1f}x  p99 {o99 / d99:.1f}x")
            print(f"published={publisher.published} publish_failures={publisher.failures} "
                  f"outbox_left={len(await store.outbox_pending())}")
        finally:
            await consoles.close()
            await publisher.close()
            await store.close()
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--history", type=int, default=5, help="earlier calls per caller")
    args = parser.parse_args()
    asyncio.run(main(args.agents, args.rounds, args.history))
