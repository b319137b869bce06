"""A screen-pop through a real mosquitto: the agent's console, signed in as that agent, receives it."""
import asyncio
import json

import aiomqtt

from gateway.mqtt.broker_config import write_broker_config
from gateway.mqtt.passwords import mqtt_password
from gateway.mqtt.publisher import MQTTPublisher
from gateway.sandbox.broker import LocalBroker, free_port
from gateway.store.outbox import Outbox
from ami_handlers.screenpop import ScreenPopper
from tests.unit.test_screenpop import NOW, NUMBER, a_queued_complaint, agent_connect, store  # noqa: F401 - fixture


async def test_agent_connect_to_agents_console_over_a_real_broker(tmp_path, store):
    port = free_port()
    conf = write_broker_config(tmp_path, host="127.0.0.1", port=port, ws_port=free_port(),
                               agents=["agent1", "agent2"], centres=[])
    broker = LocalBroker(conf, host="127.0.0.1", port=port, log_file=tmp_path / "mosquitto.log")
    broker.start()
    publisher = MQTTPublisher(store, host="127.0.0.1", port=port, username="gateway",
                              password=mqtt_password(tmp_path, "gateway"), client_id="hotline-gateway")
    outbox = Outbox(store, clock=lambda: NOW)
    outbox.on_added(publisher.wake)
    popper = ScreenPopper(store, outbox, clock=lambda: NOW)
    try:
        ticket_id = await a_queued_complaint(store)
        await publisher.start()
        async with aiomqtt.Client("127.0.0.1", port, username="agent1", password=mqtt_password(tmp_path, "agent1"),
                                  timeout=5) as console:
            await console.subscribe("hotline/agents/agent1/#", qos=1)
            await popper.handle(agent_connect(ticket_id=ticket_id))
            async with asyncio.timeout(5):
                message = await anext(aiter(console.messages))
        pop = json.loads(message.payload)
        assert pop["ticket"]["id"] == ticket_id and pop["caller_number"] == NUMBER
        assert await publisher.wait_published(1, 5) and await store.outbox_pending() == []
    finally:
        await publisher.close()
        broker.stop()
