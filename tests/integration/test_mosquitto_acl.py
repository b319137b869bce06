"""Broker security against a real mosquitto on free ports: passwords, per-agent ACL, the websockets listener."""

import asyncio
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import aiomqtt
import pytest

from gateway.mqtt.broker_config import broker_users, render_acl, write_broker_config
from gateway.mqtt.password_hash import verify_password
from gateway.sandbox.broker import LocalBroker, free_port
from gateway.mqtt.passwords import mqtt_password
from gateway.contract import linkage_topic, screenpop_topic

HOST = "127.0.0.1"
AGENTS = ["agent1", "agent2"]
CENTRES = ["119", "120"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("state")
    port, ws_port = free_port(), free_port()
    conf = write_broker_config(state_dir, host=HOST, port=port, ws_port=ws_port, agents=AGENTS, centres=CENTRES)
    b = LocalBroker(conf, host=HOST, port=port, log_file=state_dir / "mosquitto.log")
    b.start()
    b.state_dir, b.ws_port = state_dir, ws_port
    yield b
    b.stop()


def client(broker, user, *, password=None, transport="tcp", **kwargs):
    return aiomqtt.Client(
        HOST, broker.ws_port if transport == "websockets" else broker.port, username=user,
        password=password if password is not None else mqtt_password(broker.state_dir, user),
        identifier=f"test-{user}-{uuid.uuid4().hex[:8]}", transport=transport, timeout=5, **kwargs,
    )


async def collect_until(c: aiomqtt.Client, sentinel: bytes, timeout: float = 5.0) -> list[tuple[str, bytes]]:
    """Every message up to and including `sentinel`."""
    got = []
    async with asyncio.timeout(timeout):
        async for message in c.messages:
            got.append((str(message.topic), message.payload))
            if message.payload == sentinel:
                return got
    return got


# -- rendering -------------------------------------------------------------------------------------------------


def test_acl_gives_the_gateway_everything_agents_their_own_topics_centres_their_linkage_topic():
    acl = render_acl(agents=AGENTS, centres=CENTRES)
    assert "user gateway\ntopic readwrite hotline/#" in acl
    assert "user centre-119\ntopic read hotline/linkage/119" in acl
    assert "pattern read hotline/agents/%u/#" in acl
    assert "agent1" not in acl  # agents are covered by the pattern only: nothing to forget when one is added


@pytest.mark.parametrize("agents,centres", [
    (["agent/1"], []), (["a+b"], []), (["#"], []), (["agent 1"], []), (["gateway"], []), (["a", "a"], []),
    (["centre-119"], ["119"]), ([], ["1/1"]), ([""], []),
])
def test_names_that_would_break_topics_or_users_are_refused(agents, centres):
    with pytest.raises(ValueError):
        broker_users(agents, centres)


def test_passwords_are_generated_once_into_private_files(tmp_path):
    first = mqtt_password(tmp_path, "agent1")
    assert mqtt_password(tmp_path, "agent1") == first and mqtt_password(tmp_path, "agent2") != first
    path = tmp_path / "secrets" / "mqtt" / "agent1.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(ValueError):
        mqtt_password(tmp_path, "../x")


def test_password_file_holds_hashes_only_and_is_stable_across_rewrites(broker):
    passwd = (broker.state_dir / "mosquitto" / "passwd").read_text()
    users = [line.split(":", 1)[0] for line in passwd.splitlines()]
    assert users == ["gateway", "agent1", "agent2", "centre-119", "centre-120"]
    for user in users:
        assert mqtt_password(broker.state_dir, user) not in passwd
    conf = (broker.state_dir / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "protocol websockets" in conf and "persistence false" in conf


# -- the broker enforces it ------------------------------------------------------------------------------------


async def test_agent_receives_only_its_own_screenpops(broker):
    async with client(broker, "gateway") as gw, client(broker, "agent1") as a1, client(broker, "agent2") as a2:
        await a1.subscribe(screenpop_topic("agent2"), qos=1)
        await a1.subscribe("hotline/#", qos=1)
        await a1.subscribe(screenpop_topic("agent1"), qos=1)
        await a2.subscribe(screenpop_topic("agent2"), qos=1)
        await gw.publish(screenpop_topic("agent2"), b"for agent2", qos=1)
        await gw.publish(screenpop_topic("agent1"), b"for agent1", qos=1)
        # The broker handles one publisher's messages in order: had agent1 been allowed agent2's pop, it would
        # have arrived before agent1's own.
        assert await collect_until(a1, b"for agent1") == [(screenpop_topic("agent1"), b"for agent1")]
        assert await collect_until(a2, b"for agent2") == [(screenpop_topic("agent2"), b"for agent2")]


async def test_agent_cannot_publish_to_another_agents_topic(broker):
    async with client(broker, "gateway") as gw, client(broker, "agent1") as a1, client(broker, "agent2") as a2:
        await a2.subscribe(screenpop_topic("agent2"), qos=1)
        await a1.publish(screenpop_topic("agent2"), b"forged by agent1", qos=1)
        await a1.publish(screenpop_topic("agent1"), b"agent1 to itself", qos=1)
        await gw.publish(screenpop_topic("agent2"), b"sentinel", qos=1)
        assert await collect_until(a2, b"sentinel") == [(screenpop_topic("agent2"), b"sentinel")]


async def test_centre_reads_its_linkage_topic_only(broker):
    async with client(broker, "gateway") as gw, client(broker, "centre-119") as c119:
        await c119.subscribe("hotline/#", qos=1)
        await gw.publish(linkage_topic("120"), b"for 120", qos=1)
        await gw.publish(screenpop_topic("agent1"), b"screenpop", qos=1)
        await gw.publish(linkage_topic("119"), b"for 119", qos=1)
        assert await collect_until(c119, b"for 119") == [(linkage_topic("119"), b"for 119")]


async def test_anonymous_client_is_refused(broker):
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(HOST, broker.port, timeout=5):
            pass


async def test_wrong_password_is_refused(broker):
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, "agent1", password="wrong"):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, "agent1", password=mqtt_password(broker.state_dir, "agent2")):
            pass


async def test_websockets_listener_serves_the_agent_console(broker):
    async with client(broker, "gateway") as gw, client(broker, "agent1", transport="websockets") as a1:
        await a1.subscribe(screenpop_topic("agent1"), qos=1)
        await gw.publish(screenpop_topic("agent2"), b"not yours", qos=1)
        await gw.publish(screenpop_topic("agent1"), b"over websockets", qos=1)
        assert await collect_until(a1, b"over websockets") == [(screenpop_topic("agent1"), b"over websockets")]
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, "agent1", password="wrong", transport="websockets"):
            pass


# -- sessions belong to their user -----------------------------------------------------------------------------


async def receive_one(c: aiomqtt.Client, timeout: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout):
        async for message in c.messages:
            return message.payload
    raise AssertionError("the subscription ended")


@pytest.mark.parametrize("transport", ["tcp", "websockets"])
@pytest.mark.parametrize("stolen_id", ["gateway", "hotline-gateway"])
async def test_an_agent_using_the_gateways_client_id_does_not_disturb_the_gateways_session(broker, transport,
                                                                                            stolen_id):
    async with aiomqtt.Client(HOST, broker.port, username="gateway", password=mqtt_password(broker.state_dir, "gateway"),
                              identifier="gateway", clean_session=False, timeout=5) as gw:
        await gw.subscribe(screenpop_topic("agent1"), qos=1)
        port = broker.ws_port if transport == "websockets" else broker.port
        async with aiomqtt.Client(HOST, port, username="agent1", password=mqtt_password(broker.state_dir, "agent1"),
                                  identifier=stolen_id, transport=transport, timeout=5) as intruder:
            await intruder.subscribe(screenpop_topic("agent1"), qos=1)
            # the gateway keeps publishing and receiving on its own session while the agent is connected
            for n in range(3):
                await gw.publish(screenpop_topic("agent1"), f"pop {n}".encode(), qos=1)
                assert await receive_one(gw) == f"pop {n}".encode()
                assert await receive_one(intruder) == f"pop {n}".encode()
            # (a session taken over would have ended the gateway's connection: the publish or receive raises)


def test_the_broker_config_binds_client_ids_to_user_names_on_every_listener(broker):
    conf = (broker.state_dir / "mosquitto" / "mosquitto.conf").read_text().split("\n")
    listeners = [i for i, line in enumerate(conf) if line.startswith("listener ")]
    assert len(listeners) == 2
    for start, end in zip(listeners, listeners[1:] + [len(conf)]):
        assert "use_username_as_clientid true" in conf[start:end]


# -- the websockets listener on loopback only ------------------------------------------------------------------


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the TCP sockets listening on ``port``, as ``ss -ltn`` prints them."""
    out = subprocess.run(["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.strip()]


def test_both_listeners_listen_on_loopback_only(broker):
    assert listening_addresses(broker.ws_port) == [f"127.0.0.1:{broker.ws_port}"]
    assert listening_addresses(broker.port) == [f"127.0.0.1:{broker.port}"]


def test_hashes_written_by_mosquitto_passwd_verify(tmp_path):
    plain = tmp_path / "passwd"
    plain.write_text("alice:s3cret-äö\n")
    plain.chmod(0o600)
    # -U hashes a plaintext file in place: the password is never on the command line
    subprocess.run(["mosquitto_passwd", "-U", str(plain)], check=True, capture_output=True, timeout=30)
    user, hashed = plain.read_text().strip().split(":", 1)
    assert user == "alice"
    assert verify_password("s3cret-äö", hashed)
    assert not verify_password("s3cret", hashed)


# -- no password on a command line -----------------------------------------------------------------------------

_started: list[list[str]] = []


def _record_started_processes(event: str, args: tuple) -> None:
    # CPython audit events (https://docs.python.org/3/library/audit_events.html): every way Python starts a program
    argv = {"subprocess.Popen": 1, "os.exec": 1, "os.posix_spawn": 1, "os.spawn": 2, "os.system": 0}.get(event)
    if argv is not None:
        value = args[argv]
        _started.append([os.fsdecode(value)] if isinstance(value, (str, bytes)) else [os.fsdecode(a) for a in value])


sys.addaudithook(_record_started_processes)


def command_lines() -> list[str]:
    """Every process's command line, as /proc shows it to any local user."""
    lines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            pass
    return lines


def test_no_password_is_ever_on_a_command_line_and_the_broker_accepts_the_hashes(tmp_path):
    port, ws_port = free_port(), free_port()
    _started.clear()
    conf = write_broker_config(tmp_path, host=HOST, port=port, ws_port=ws_port, agents=AGENTS, centres=CENTRES)
    b = LocalBroker(conf, host=HOST, port=port, log_file=tmp_path / "mosquitto.log")
    b.start()
    try:
        users = broker_users(AGENTS, CENTRES)
        passwords = {u: mqtt_password(tmp_path, u) for u in users}
        seen = [" ".join(argv) for argv in _started] + command_lines()
        assert any("mosquitto" in line for line in seen)  # the recording works: the broker itself is there
        leaked = [line for line in seen for p in passwords.values() if p in line]
        assert not leaked, leaked
        hashes = dict(line.split(":", 1) for line in (tmp_path / "mosquitto" / "passwd").read_text().splitlines())
        assert all(verify_password(passwords[u], hashes[u]) for u in users)

        async def every_user_signs_in():
            for user in users:
                async with aiomqtt.Client(HOST, port, username=user, password=passwords[user], timeout=5):
                    pass
        asyncio.run(every_user_signs_in())
    finally:
        b.stop()
