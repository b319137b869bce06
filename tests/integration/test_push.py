"""Linkage data push: the case goes to the centre with the call, through MQTT (broker ACL) or HTTP, and is recorded."""

import asyncio
import json
import logging
import time
from datetime import datetime

import aiomqtt
import pytest
from aiohttp import web

from gateway.mqtt.broker_config import write_broker_config
from gateway.sandbox.broker import LocalBroker, free_port
from gateway.mqtt.passwords import mqtt_password
from gateway.contract import linkage_topic
from gateway.mqtt.publisher import MQTTPublisher
from gateway.store.outbox import Outbox
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from linkage.emergency_list import Centre
from linkage.push import HTTPPush, MQTTPush, NoPush, Pusher, case_payload, push_case

HOST = "127.0.0.1"
NUMBER = "+8613800138000"
AT = datetime(2026, 11, 27, 9, 30, 5, tzinfo=SHANGHAI)
CASE = dict(call_id="1764222222.12", ticket_id="2026112700001", caller_number=NUMBER, address="赤坎区中山一路8号",
            situation="fire", situation_name="火灾", transcript="救命 我 家 着火 了", agent="agent1", at=AT)
FIRE = Centre("119", "PJSIP/centre-119", 20.0, "mqtt")


def now() -> datetime:
    return datetime.now(SHANGHAI)


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.sqlite")
    yield s
    await s.close()


def http_centre(url, *, retries=2, timeout=0.3) -> Centre:
    return Centre("water", "PJSIP/centre-water", 30.0, "http", http_url=url, http_timeout_s=timeout,
                  http_retries=retries)


def test_the_payload_carries_the_case_in_local_time():
    payload = case_payload(push_id="p1", centre="119", **CASE)
    assert set(payload) >= {"push_id", "ticket_id", "caller_number", "address", "situation", "transcript", "time",
                            "agent", "centre", "call_id"}
    assert payload["time"] == "2026-11-27T09:30:05+08:00" and payload["caller_number"] == NUMBER
    assert payload["situation"] == "fire" and payload["centre"] == "119"


# -- MQTT, through the outbox and a real mosquitto with the centres' ACL -------------------------------------------

@pytest.fixture
def broker(tmp_path):
    port = free_port()
    conf = write_broker_config(tmp_path, host=HOST, port=port, ws_port=free_port(), agents=["agent1"],
                               centres=["110", "119"])
    b = LocalBroker(conf, host=HOST, port=port, log_file=tmp_path / "mosquitto.log")
    b.start()
    b.state_dir = tmp_path
    yield b
    b.stop()


class Listener:
    def __init__(self, broker, user, topic):
        self.messages: list[aiomqtt.Message] = []
        self.subscribed = asyncio.Event()
        self.arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run(broker, user, topic))

    async def _run(self, broker, user, topic):
        async with aiomqtt.Client(HOST, broker.port, username=user, password=mqtt_password(broker.state_dir, user),
                                  identifier=f"test-{user}", timeout=5) as client:
            await client.subscribe(topic, qos=1)
            self.subscribed.set()
            async for message in client.messages:
                self.messages.append(message)
                self.arrived.set()

    async def close(self):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_mqtt_case_reaches_centre_119_only(broker, store):
    centre_119 = Listener(broker, "centre-119", linkage_topic("119"))
    # 110 tries to read 119's cases (the ACL refuses) and also listens on its own topic.
    centre_110 = Listener(broker, "centre-110", "hotline/linkage/#")
    publisher = MQTTPublisher(store, host=HOST, port=broker.port, username="gateway",
                              password=mqtt_password(broker.state_dir, "gateway"), client_id="test-gateway",
                              reconnect_max=0.5)
    outbox = Outbox(store, clock=now)
    outbox.on_added(publisher.wake)
    try:
        await asyncio.wait_for(asyncio.gather(centre_119.subscribed.wait(), centre_110.subscribed.wait()), 5)
        await publisher.start()
        assert await publisher.wait_connected(5)
        hid = await store.add_handoff(call_id=CASE["call_id"], centre="119", trigger="speech", mode="blind",
                                      requested_at=AT)
        result = await push_case(store, {"mqtt": MQTTPush(outbox)}, FIRE, handoff_id=hid, **CASE)
        assert (result.state, result.attempts, result.error) == ("queued", 1, None)
        await asyncio.wait_for(centre_119.arrived.wait(), 10)
        (message,) = centre_119.messages
        body = json.loads(message.payload)
        assert str(message.topic) == "hotline/linkage/119" and message.qos == 1
        assert body["push_id"] == result.push_id and body["caller_number"] == NUMBER
        assert body["ticket_id"] == "2026112700001" and body["transcript"] == "救命 我 家 着火 了"
        assert await publisher.wait_published(1, 5)
        await asyncio.sleep(0.3)
        assert centre_110.messages == []
        (push,) = await store.list_pushes(handoff_id=hid)
        assert (push["state"], push["adapter"], push["in_outbox"], push["push_id"]) == (
            "queued", "mqtt", False, result.push_id)
    finally:
        await publisher.close()
        await centre_119.close()
        await centre_110.close()


async def test_mqtt_case_waits_in_the_outbox_while_the_broker_is_away(store):
    outbox = Outbox(store, clock=now)            # no publisher at all: the push is still queued durably
    result = await push_case(store, {"mqtt": MQTTPush(outbox)}, FIRE, **CASE)
    assert result.state == "queued"
    (row,) = await store.outbox_pending()
    assert row["topic"] == "hotline/linkage/119" and row["message_id"] == result.push_id
    assert (await store.list_pushes())[0]["in_outbox"] is True


# -- HTTP against local servers -------------------------------------------------------------------------------------

async def serve(handler):
    app = web.Application()
    app.router.add_post("/cases", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port).start()
    return runner, f"http://{HOST}:{port}/cases"


async def test_http_push_is_retried_until_the_centre_takes_it(store):
    seen = []

    async def flaky(request):
        seen.append((request.headers.get("Idempotency-Key"), await request.json()))
        if len(seen) <= 2:
            return web.Response(status=503, text="busy")
        return web.json_response({"ok": True})

    runner, url = await serve(flaky)
    http = HTTPPush(backoff_s=0.01, backoff_max_s=0.05)
    try:
        result = await push_case(store, {"http": http}, http_centre(url), **CASE)
    finally:
        await http.close()
        await runner.cleanup()
    assert (result.state, result.attempts, result.error) == ("sent", 3, None)
    keys = {key for key, _ in seen}
    assert keys == {result.push_id} and len(seen) == 3
    assert seen[0][1]["caller_number"] == NUMBER and seen[0][1]["address"] == "赤坎区中山一路8号"
    (push,) = await store.list_pushes(call_id=CASE["call_id"])
    assert (push["state"], push["attempts"], push["last_error"], push["adapter"]) == ("sent", 3, None, "http")


async def test_http_push_to_a_silent_centre_fails_within_its_bound_without_raising(store):
    connections = []

    async def silent(reader, writer):
        connections.append(writer)
        await reader.read(65536)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    http = HTTPPush(backoff_s=0.05, backoff_max_s=0.1)
    centre = http_centre(f"http://{HOST}:{port}/cases", retries=2, timeout=0.3)
    started = time.monotonic()
    try:
        result = await push_case(store, {"http": http}, centre, **CASE)
    finally:
        elapsed = time.monotonic() - started
        await http.close()
        server.close()
        for writer in connections:
            writer.close()
    assert result.state == "failed" and result.attempts == 3 and "no answer within 0.3 s" in result.error
    assert elapsed <= http.bound_s(centre) + 0.5
    (push,) = await store.list_pushes()
    assert (push["state"], push["attempts"]) == ("failed", 3) and "no answer" in push["last_error"]


async def test_a_refusing_centre_is_not_retried(store):
    calls = []

    async def refuse(request):
        calls.append(1)
        return web.Response(status=400, text="bad ticket\nid")

    runner, url = await serve(refuse)
    http = HTTPPush(backoff_s=0.01)
    try:
        result = await push_case(store, {"http": http}, http_centre(url), **CASE)
    finally:
        await http.close()
        await runner.cleanup()
    assert (result.state, result.attempts, result.error, len(calls)) == ("failed", 1, "HTTP 400: bad ticket id", 1)


async def test_an_unreachable_centre_fails_after_its_retries(store):
    http = HTTPPush(backoff_s=0.01, backoff_max_s=0.02)
    result = await push_case(store, {"http": http}, http_centre(f"http://{HOST}:{free_port()}/x", retries=1), **CASE)
    await http.close()
    assert result.state == "failed" and result.attempts == 2 and "Connect" in result.error


async def test_http_token_comes_from_the_environment(store):
    auth = []

    async def ok(request):
        auth.append(request.headers.get("Authorization"))
        return web.Response(status=204)

    runner, url = await serve(ok)
    centre = Centre("water", "PJSIP/w", 30.0, "http", http_url=url, http_token_env="WATER_TOKEN")
    try:
        http = HTTPPush(env={"WATER_TOKEN": "s3cret"})
        assert (await push_case(store, {"http": http}, centre, **CASE)).state == "sent"
        await http.close()
        missing = HTTPPush(env={})
        result = await push_case(store, {"http": missing}, centre, **CASE)
        await missing.close()
    finally:
        await runner.cleanup()
    assert auth == ["Bearer s3cret"]
    assert result.state == "failed" and "WATER_TOKEN" in result.error and "s3cret" not in result.error


# -- never raises, never holds up the transfer ---------------------------------------------------------------------

async def test_no_push_is_recorded_as_skipped(store):
    result = await push_case(store, {"none": NoPush()}, Centre("122", "PJSIP/c122", 20.0, "none"), **CASE)
    assert (result.state, result.attempts) == ("skipped", 0)
    assert (await store.list_pushes())[0]["state"] == "skipped"


async def test_a_missing_adapter_or_a_broken_store_fails_the_push_not_the_call(store, caplog):
    result = await push_case(store, {}, FIRE, **CASE)
    assert result.state == "failed" and "no mqtt adapter" in result.error
    await store.close()                          # every store write now raises
    result = await push_case(store, {"none": NoPush()}, Centre("122", "PJSIP/c122", 20.0, "none"), **CASE)
    assert result.state == "skipped" and result.row_id is None
    assert any("event=linkage_push_record_failed" in r.getMessage() for r in caplog.records)
    assert all(NUMBER not in r.getMessage() for r in caplog.records)


async def test_spawn_returns_at_once_and_close_waits_for_the_push(store):
    release = asyncio.Event()

    async def slow(request):
        await release.wait()
        return web.Response(status=200)

    runner, url = await serve(slow)
    pusher = Pusher(store, http=HTTPPush(backoff_s=0.01))
    try:
        started = time.monotonic()
        task = pusher.spawn(http_centre(url, timeout=5), **CASE)
        assert time.monotonic() - started < 0.05 and not task.done()
        await asyncio.sleep(0.1)
        assert (await store.list_pushes())[0]["state"] == "pending"
        release.set()
        await pusher.close(timeout=5)
        assert task.result().state == "sent"
    finally:
        await runner.cleanup()
    assert (await store.list_pushes())[0]["state"] == "sent"


async def test_a_push_still_running_when_the_close_bound_passes_is_cancelled_and_left_for_the_next_start(store):
    async def never(request):
        await asyncio.sleep(60)
        return web.Response(status=200)

    runner, url = await serve(never)
    pusher = Pusher(store, http=HTTPPush(backoff_s=0.01))
    try:
        task = pusher.spawn(http_centre(url, timeout=30), **CASE)
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await pusher.close(timeout=0.3)
        assert time.monotonic() - started < 2 and task.cancelled()
    finally:
        await runner.cleanup()
    [push] = await store.list_pushes()
    assert push["state"] == "pending"  # taken up again at the next start (linkage/push_resume.py)


async def test_a_push_the_gateway_stops_in_the_middle_of_stays_pending_for_the_next_start(store, caplog):
    tries = []

    async def busy(request):
        tries.append(request.headers.get("Idempotency-Key"))
        return web.Response(status=503, text="busy")

    caplog.set_level(logging.INFO, logger="linkage.push")
    runner, url = await serve(busy)
    pusher = Pusher(store, http=HTTPPush(backoff_s=5, backoff_max_s=5))
    try:
        pusher.spawn(http_centre(url, retries=3, timeout=1), **CASE)
        for _ in range(100):
            rows = await store.list_pushes()
            if rows and rows[0]["attempts"] == 1:
                break
            await asyncio.sleep(0.02)
        await pusher.close(timeout=0.1)          # the backoff outlasts the shutdown's patience
    finally:
        await runner.cleanup()
    (push,) = await store.list_pushes()
    assert (push["state"], push["attempts"], push["last_error"]) == ("pending", 1, "HTTP 503: busy")
    assert "event=linkage_push_interrupted" in caplog.text and len(tries) == 1


async def test_a_resumed_http_push_keeps_its_key_and_counts_the_attempts_before_the_restart(store):
    seen = []

    async def busy_then_ok(request):
        seen.append(request.headers.get("Idempotency-Key"))
        return web.Response(status=503 if len(seen) == 1 else 200)

    runner, url = await serve(busy_then_ok)
    http = HTTPPush(backoff_s=0.01, backoff_max_s=0.02)
    try:
        result = await push_case(store, {"http": http}, http_centre(url, retries=3), push_id="key-7",
                                 attempts_made=2, **CASE)
        # all its attempts used before the restart: still one more
        last = await push_case(store, {"http": http}, http_centre(url, retries=1), push_id="key-8",
                               attempts_made=2, **CASE)
    finally:
        await http.close()
        await runner.cleanup()
    assert (result.state, result.attempts) == ("sent", 4) and seen[:2] == ["key-7", "key-7"]
    assert (last.state, last.attempts) == ("sent", 3) and seen[2:] == ["key-8"]
