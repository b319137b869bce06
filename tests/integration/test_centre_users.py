"""A centre added to the emergency list on a live reload gets its broker user and ACL from a real mosquitto (its
own, on free ports: no stack needed), or the reload is refused with the reason."""
from __future__ import annotations

import asyncio
import json
import sys
import time

import aiomqtt
import pytest

from gateway.contract import linkage_topic
from gateway.mqtt.broker_config import write_broker_config
from gateway.mqtt.centre_users import CentreUsers
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.broker import LocalBroker, free_port
from linkage.emergency_list import DEFAULT_EMERGENCY_PATH
from linkage.reloader import EmergencyListHolder

HOST = "127.0.0.1"
COAST = ('\n[centres.coast]\nname = "海上搜救"\ndial = "PJSIP/centre-coast"\nanswer_timeout_s = 20\n'
         'push = "mqtt"\n')


@pytest.fixture
def broker(tmp_path):
    port = free_port()
    conf = write_broker_config(tmp_path, host=HOST, port=port, ws_port=free_port(), agents=["agent1"],
                               centres=["110", "119", "120", "122", "water", "power", "gas"])
    b = LocalBroker(conf, host=HOST, port=port, log_file=tmp_path / "mosquitto.log")
    b.start()
    b.pid_file = tmp_path / "run" / "mosquitto.pid"
    b.pid_file.parent.mkdir()
    b.pid_file.write_text(f"{b._proc.pid}\n")
    b.state_dir = tmp_path
    yield b
    b.stop()


@pytest.fixture
async def holder(tmp_path, broker):
    path = tmp_path / "emergency.toml"
    path.write_text(DEFAULT_EMERGENCY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    h = EmergencyListHolder(path, poll_s=0.05)
    users = CentreUsers(broker.state_dir, agents=["agent1"], pid_file=broker.pid_file, host=HOST, port=broker.port,
                        verify_s=1.5)
    h.add_check(lambda new: users.ensure(new, before=h.current))
    await h.start()
    yield h
    await h.close()


async def until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def read_one(broker, user, topic, arrived: asyncio.Queue, subscribed: asyncio.Event):
    async with aiomqtt.Client(HOST, broker.port, username=user, password=mqtt_password(broker.state_dir, user),
                              identifier=f"test-{user}", timeout=5) as client:
        await client.subscribe(topic, qos=1)
        subscribed.set()
        async for message in client.messages:
            await arrived.put((str(message.topic), json.loads(message.payload)))


async def test_a_centre_added_on_a_live_reload_gets_its_broker_user_and_reads_only_its_own_cases(broker, holder):
    started = time.monotonic()
    holder.path.write_text(holder.path.read_text(encoding="utf-8") + COAST, encoding="utf-8")
    await until(lambda: holder.current.get_centre("coast") is not None or holder.last_error)
    print(f"reload with a new centre: in force {time.monotonic() - started:.2f} s after the edit "
          f"(poll 0.05 s, broker user written, SIGHUP, login checked)")
    assert holder.last_error is None
    coast, fire = asyncio.Queue(), asyncio.Queue()
    ready = [asyncio.Event(), asyncio.Event()]
    readers = [asyncio.create_task(read_one(broker, "centre-coast", linkage_topic("coast"), coast, ready[0])),
               asyncio.create_task(read_one(broker, "centre-119", "hotline/linkage/#", fire, ready[1]))]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 5)
        async with aiomqtt.Client(HOST, broker.port, username="gateway",
                                  password=mqtt_password(broker.state_dir, "gateway"), identifier="test-gw") as gw:
            await gw.publish(linkage_topic("coast"), json.dumps({"case": 1}), qos=1)
        assert await asyncio.wait_for(coast.get(), 5) == ("hotline/linkage/coast", {"case": 1})
        await asyncio.sleep(0.3)
        assert fire.empty(), "another centre never reads the new centre's cases (ACL)"
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    acl = (broker.state_dir / "mosquitto" / "acl").read_text()
    assert "user centre-coast\ntopic read hotline/linkage/coast\n" in acl and "user centre-119\n" in acl


async def test_the_reload_is_refused_with_the_reason_when_the_broker_is_not_running(broker, holder, caplog):
    broker.stop()
    before = holder.current
    holder.path.write_text(holder.path.read_text(encoding="utf-8") + COAST, encoding="utf-8")
    await until(lambda: holder.last_error is not None)
    print(f"refused: {holder.last_error}")
    assert holder.current is before and holder.current.get_centre("coast") is None
    assert holder.last_error.startswith(f"{holder.path}: centres: mosquitto is not running")
    assert holder.status()["refused"] == holder.last_error
    assert "event=emergency_list_refused" in caplog.text


async def test_the_reload_is_refused_when_the_broker_does_not_take_the_new_user(broker, holder):
    # a process that ignores SIGHUP stands where mosquitto should be: the new user never takes effect
    deaf = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(60)")
    try:
        broker.pid_file.write_text(f"{deaf.pid}\n")
        before = holder.current
        holder.path.write_text(holder.path.read_text(encoding="utf-8") + COAST, encoding="utf-8")
        await until(lambda: holder.last_error is not None)
    finally:
        deaf.kill()
        await deaf.wait()
    print(f"refused: {holder.last_error}")
    assert holder.current is before
    assert "the broker does not accept centre-coast reading hotline/linkage/coast after the reload" \
        in holder.last_error


async def test_a_reload_that_adds_no_centre_leaves_the_broker_alone(broker, holder):
    acl = broker.state_dir / "mosquitto" / "acl"
    written = acl.stat().st_mtime_ns
    broker.stop()                                # not needed for a list without new centres
    holder.path.write_text(holder.path.read_text(encoding="utf-8").replace('name = "消防 119"', 'name = "消防119"'),
                           encoding="utf-8")
    await until(lambda: holder.current.get_centre("119").label == "消防119" or holder.last_error)
    assert holder.last_error is None and acl.stat().st_mtime_ns == written
