"""The outbox publisher against a real mosquitto: QoS 1, order, broker outage, failed publishes re-sent."""

import asyncio
import json
from datetime import datetime

import aiomqtt
import pytest

from gateway.mqtt.broker_config import write_broker_config
from gateway.sandbox.broker import LocalBroker, free_port
from gateway.mqtt.passwords import mqtt_password
from gateway.contract import screenpop_topic
from gateway.mqtt.publisher import MQTTPublisher
from gateway.store.outbox import Outbox
from gateway.contract import new_message_id
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store

HOST = "127.0.0.1"
TOPIC = screenpop_topic("agent1")


def now() -> datetime:
    return datetime.now(SHANGHAI)


@pytest.fixture
def broker(tmp_path):
    port = free_port()
    # Broker persistence only so the test subscriber's session (and the pops queued for it) outlive the broker
    # restart below; the publisher's guarantee comes from the gateway's store, not from this.
    (tmp_path / "broker-db").mkdir()
    conf = write_broker_config(tmp_path, host=HOST, port=port, ws_port=free_port(), agents=["agent1", "agent2"],
                               centres=[], persistence_dir=tmp_path / "broker-db")
    b = LocalBroker(conf, host=HOST, port=port, log_file=tmp_path / "mosquitto.log")
    b.start()
    b.state_dir = tmp_path
    yield b
    b.stop()


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    yield s
    await s.close()


def publisher_for(broker, store, **kwargs) -> MQTTPublisher:
    kwargs.setdefault("reconnect_max", 0.5)
    return MQTTPublisher(store, host=HOST, port=broker.port, username="gateway",
                         password=mqtt_password(broker.state_dir, "gateway"), client_id="hotline-gateway", **kwargs)


class Agent:
    """A console that stays subscribed across broker restarts (persistent session, fixed client id)."""

    def __init__(self, broker, name="agent1"):
        self.broker, self.name = broker, name
        self.messages: list[aiomqtt.Message] = []
        self.subscribed = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            try:
                async with aiomqtt.Client(HOST, self.broker.port, username=self.name,
                                          password=mqtt_password(self.broker.state_dir, self.name),
                                          identifier=f"console-{self.name}", clean_session=False, timeout=5) as c:
                    await c.subscribe(screenpop_topic(self.name), qos=1)
                    self.subscribed.set()
                    async for message in c.messages:
                        async with self._arrived:
                            self.messages.append(message)
                            self._arrived.notify_all()
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.1)

    def ids(self) -> list[str]:
        return [json.loads(m.payload)["id"] for m in self.messages]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        async with asyncio.timeout(timeout):
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.messages) >= count)
        return self.ids()

    async def close(self):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def put_screenpops(outbox: Outbox, n: int) -> list[str]:
    ids = []
    for i in range(n):
        message_id = new_message_id()
        await outbox.put(TOPIC, {"id": message_id, "n": i, "caller_number": "+8613800138000"}, message_id=message_id)
        ids.append(message_id)
    return ids


async def wait_until(predicate, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


async def test_screenpop_reaches_the_agent_with_qos1_and_leaves_the_outbox(broker, store):
    agent = Agent(broker)
    publisher = publisher_for(broker, store)
    outbox = Outbox(store, clock=now)
    outbox.on_added(publisher.wake)
    try:
        await asyncio.wait_for(agent.subscribed.wait(), 5)
        await publisher.start()
        assert await publisher.wait_connected(5) and publisher.connected
        [message_id] = await put_screenpops(outbox, 1)
        assert await agent.wait_for(1) == [message_id]
        assert agent.messages[0].qos == 1 and str(agent.messages[0].topic) == TOPIC
        assert json.loads(agent.messages[0].payload)["caller_number"] == "+8613800138000"
        assert await publisher.wait_published(1, 5)
        assert await store.outbox_pending() == []
    finally:
        await publisher.close()
        await agent.close()


async def test_broker_outage_loses_nothing_and_keeps_the_order(broker, store):
    agent = Agent(broker)
    publisher = publisher_for(broker, store)
    outbox = Outbox(store, clock=now)
    outbox.on_added(publisher.wake)
    try:
        await asyncio.wait_for(agent.subscribed.wait(), 5)
        await publisher.start()
        assert await publisher.wait_connected(5)
        broker.stop()
        await wait_until(lambda: _false_async(publisher.connected))

        ids = await put_screenpops(outbox, 5)
        assert [row["message_id"] for row in await store.outbox_pending()] == ids
        assert publisher.published == 0

        broker.start()
        assert await agent.wait_for(5) == ids
        assert await publisher.wait_published(5, 10)
        assert await store.outbox_pending() == []
    finally:
        await publisher.close()
        await agent.close()


async def _false_async(value):
    return not value


async def test_rows_left_by_a_stopped_gateway_are_sent_in_order_by_the_next_one(broker, store):
    agent = Agent(broker)
    outbox = Outbox(store, clock=now)  # nobody listening: the gateway that wrote these is gone
    publisher = publisher_for(broker, store)
    try:
        await asyncio.wait_for(agent.subscribed.wait(), 5)
        ids = await put_screenpops(outbox, 3)
        await publisher.start()
        assert await agent.wait_for(3) == ids
        assert await publisher.wait_published(3, 5)
    finally:
        await publisher.close()
        await agent.close()


async def test_a_row_whose_publish_raised_stays_and_is_resent_with_the_same_id(broker, store, monkeypatch):
    real_publish = aiomqtt.Client.publish
    calls = []

    async def flaky_publish(self, topic, payload=None, qos=0, *args, **kwargs):
        calls.append(json.loads(payload)["id"])
        if len(calls) == 1:
            raise aiomqtt.MqttError("simulated: socket error before PUBACK")
        return await real_publish(self, topic, payload, qos, *args, **kwargs)

    monkeypatch.setattr(aiomqtt.Client, "publish", flaky_publish)
    agent = Agent(broker)
    publisher = publisher_for(broker, store, reconnect_min=1.0, reconnect_max=1.0)
    outbox = Outbox(store, clock=now)
    outbox.on_added(publisher.wake)
    try:
        await asyncio.wait_for(agent.subscribed.wait(), 5)
        await publisher.start()
        assert await publisher.wait_connected(5)
        first, second = await put_screenpops(outbox, 2)

        async def failure_recorded():
            rows = await store.outbox_pending()
            return bool(rows) and rows[0]["attempts"] == 1
        await wait_until(failure_recorded, 5)
        row = (await store.outbox_pending())[0]
        assert row["message_id"] == first and "simulated" in row["last_error"]

        assert await agent.wait_for(2) == [first, second]
        assert calls[:2] == [first, first]
        assert publisher.failures == 1
        assert await publisher.wait_published(2, 5) and await store.outbox_pending() == []
    finally:
        await publisher.close()
        await agent.close()


async def test_a_delivered_message_whose_puback_was_lost_arrives_twice_with_one_id(broker, store, monkeypatch):
    real_publish = aiomqtt.Client.publish
    lost = []

    async def puback_lost_once(self, topic, payload=None, qos=0, *args, **kwargs):
        await real_publish(self, topic, payload, qos, *args, **kwargs)
        if not lost:
            lost.append(True)
            raise aiomqtt.MqttError("simulated: connection dropped before PUBACK was seen")

    monkeypatch.setattr(aiomqtt.Client, "publish", puback_lost_once)
    agent = Agent(broker)
    publisher = publisher_for(broker, store, reconnect_min=0.1, reconnect_max=0.1)
    outbox = Outbox(store, clock=now)
    outbox.on_added(publisher.wake)
    try:
        await asyncio.wait_for(agent.subscribed.wait(), 5)
        await publisher.start()
        first, second = await put_screenpops(outbox, 2)
        # At-least-once: the copy and the original carry the same id, and the order still holds.
        assert await agent.wait_for(3) == [first, first, second]
        assert await publisher.wait_published(2, 5) and await store.outbox_pending() == []
    finally:
        await publisher.close()
        await agent.close()


async def test_close_while_broker_is_unreachable_returns_promptly(store):
    publisher = MQTTPublisher(store, host=HOST, port=free_port(), username="gateway", password="x",
                              client_id="hotline-gateway", reconnect_max=0.2)
    await publisher.start()
    await asyncio.sleep(0.3)
    assert not publisher.connected
    async with asyncio.timeout(2):
        await publisher.close()


async def test_close_with_a_drain_sends_what_the_outbox_still_holds_first(broker, store):
    agent = Agent(broker)
    # no wake and a long sweep: only the drain at close can send these
    publisher = publisher_for(broker, store, sweep_interval=60)
    try:
        await asyncio.wait_for(agent.subscribed.wait(), 5)
        await publisher.start()
        assert await publisher.wait_connected(5)
        await asyncio.sleep(0.2)                       # the publisher has swept the empty outbox and idles
        ids = await put_screenpops(Outbox(store, clock=now), 20)
        await publisher.close(drain_s=5)
        assert await store.outbox_pending() == []
        assert await agent.wait_for(20) == ids
    finally:
        await publisher.close()
        await agent.close()


async def test_a_drain_at_close_does_not_wait_for_an_unreachable_broker(store):
    publisher = MQTTPublisher(store, host=HOST, port=free_port(), username="gateway", password="x",
                              client_id="hotline-gateway", reconnect_max=0.2)
    await put_screenpops(Outbox(store, clock=now), 2)
    await publisher.start()
    await asyncio.sleep(0.3)
    async with asyncio.timeout(1):
        await publisher.close(drain_s=30)
    assert len(await store.outbox_pending()) == 2     # kept for the next start
