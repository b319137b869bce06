"""AMIConnection against a fake AMI server (asyncio TCP on 127.0.0.1); no Asterisk needed."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket

import pytest
from hypothesis import given, strategies as st

from ami_handlers.client.connection import AMIConnection
from ami_handlers.client.errors import AMIError, AMIProtocolError, AMITimeout
from gateway.basics.backoff import backoff_delays
from ami_handlers.client.protocol import AMIFrameDecoder, encode_action

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
SECRET = "s3cret-never-logged"
CALLER_NUMBER = "13800138000"


def parse_action(text: str) -> dict[str, str]:
    headers = {}
    for line in text.split("\r\n"):
        key, _, value = line.partition(": ")
        headers[key] = value
    return headers


class FakeAMIServer:
    """Speaks just enough AMI: banner, Login, scripted responses, pushed events."""

    def __init__(self, port: int = 0, *, accept_login: bool = True) -> None:
        self.port = port
        self.accept_login = accept_login
        self.actions: list[dict[str, str]] = []
        self.logins = 0
        self.responses: dict[str, str] = {}  # action name -> extra response headers ("" = Success)
        self.silent: set[str] = set()  # action names never answered
        # action name -> the events of its list (sent after "EventList: start", then the completing event)
        self.lists: dict[str, list[dict[str, str]]] = {}
        self.unfinished_lists: set[str] = set()  # list actions whose completing event never comes
        self.before_list_events: list[dict[str, str]] = []  # unrelated events sent between response and list
        self.writers: list[asyncio.StreamWriter] = []
        self.logged_in = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> FakeAMIServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def push(self, raw: bytes) -> None:
        for writer in self.writers:
            writer.write(raw)
            await writer.drain()

    async def push_event(self, **headers: str) -> None:
        await self.push(("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(BANNER)
        buffer = b""
        try:
            while data := await reader.read(4096):
                buffer += data
                *texts, buffer = buffer.split(b"\r\n\r\n")
                for text in texts:
                    await self._answer(parse_action(text.decode()), writer)
        except ConnectionError:
            pass

    async def _answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        self.actions.append(action)
        name, action_id = action.get("Action", ""), action.get("ActionID", "")
        if name == "Login":
            if action.get("Secret") == SECRET and self.accept_login:
                self.logins += 1
                self.logged_in.set()
                reply = "Response: Success\r\nMessage: Authentication accepted"
            else:
                reply = "Response: Error\r\nMessage: Authentication failed"
        elif name in self.silent:
            return
        elif name in self.lists:
            await self._answer_list(name, action_id, writer)
            return
        else:
            reply = self.responses.get(name, "Response: Success")
        writer.write(f"{reply}\r\nActionID: {action_id}\r\n\r\n".encode())
        await writer.drain()

    async def _answer_list(self, name: str, action_id: str, writer: asyncio.StreamWriter) -> None:
        def message(headers: dict[str, str]) -> bytes:
            return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
        writer.write(message({"Response": "Success", "ActionID": action_id, "EventList": "start",
                              "Message": f"{name} will follow"}))
        for event in self.before_list_events:
            writer.write(message(event))
        for event in self.lists[name]:
            writer.write(message({**event, "ActionID": action_id}))
            await writer.drain()        # one write per event: the client must join a list across reads
        if name not in self.unfinished_lists:
            writer.write(message({"Event": f"{name}Complete", "ActionID": action_id, "EventList": "Complete",
                                  "ListItems": str(len(self.lists[name]))}))
        await writer.drain()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_client(port: int, **kwargs) -> AMIConnection:
    options = dict(reconnect_min=0.02, reconnect_max=0.2, ping_interval=None, connect_timeout=1.0)
    options.update(kwargs)
    return AMIConnection(host="127.0.0.1", port=port, username="gateway", secret=SECRET, **options)


@pytest.fixture
async def server():
    fake = await FakeAMIServer().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(server):
    ami = make_client(server.port)
    yield ami
    await ami.close()


async def wait_until(condition, timeout: float = 2.0) -> bool:
    """Poll a condition that has no event to wait on (the client's view of a dropped connection)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def collector() -> tuple[asyncio.Queue, callable]:
    received: asyncio.Queue = asyncio.Queue()

    async def on_event(event):
        await received.put(event)

    return received, on_event


# ---- pure pieces ------------------------------------------------------------------------------------------

def test_backoff_doubles_from_minimum_and_is_capped_at_maximum():
    delays = list(itertools.islice(backoff_delays(0.5, 10.0, rand=lambda: 0.0), 8))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


@given(st.floats(0.01, 5.0), st.floats(1.0, 50.0), st.lists(st.floats(0.0, 0.999), min_size=1, max_size=30))
def test_backoff_with_jitter_never_exceeds_maximum_nor_goes_far_below_minimum(minimum, factor, rands):
    maximum = minimum * factor
    draws = iter(rands * 2)
    for delay in itertools.islice(backoff_delays(minimum, maximum, rand=lambda: next(draws)), len(rands)):
        assert 0.8 * minimum <= delay <= maximum


def test_backoff_refuses_nonsense_bounds():
    with pytest.raises(ValueError):
        next(backoff_delays(0, 1))
    with pytest.raises(ValueError):
        next(backoff_delays(2, 1))


CJK_STREAM = (BANNER + "Event: Newchannel\r\nCallerIDName: 张三丰\r\n\r\nEvent: Hangup\r\nCause: 16\r\n\r\n"
              .encode("utf-8"))


@given(st.sets(st.integers(1, len(CJK_STREAM) - 1), max_size=12))
def test_frame_decoder_gives_the_same_messages_however_the_bytes_are_split(cuts):
    bounds = [0, *sorted(cuts), len(CJK_STREAM)]
    decoder = AMIFrameDecoder()
    messages = []
    for start, end in zip(bounds, bounds[1:]):
        messages += decoder.feed(CJK_STREAM[start:end])
    assert decoder.banner == "Asterisk Call Manager/9.0.0"
    assert messages == ["Event: Newchannel\r\nCallerIDName: 张三丰", "Event: Hangup\r\nCause: 16"]


def test_frame_decoder_replaces_invalid_bytes_instead_of_dropping_them():
    decoder = AMIFrameDecoder()
    assert decoder.feed(BANNER + b"Event: X\r\nName: a\xffb\r\n\r\n") == ["Event: X\r\nName: a\ufffdb"]


def test_frame_decoder_rejects_a_peer_that_is_not_asterisk():
    with pytest.raises(AMIProtocolError):
        AMIFrameDecoder().feed(b"SSH-2.0-OpenSSH_9.2\r\n")


def test_frame_decoder_bounds_an_endless_message():
    decoder = AMIFrameDecoder(max_message_chars=100)
    decoder.feed(BANNER)
    with pytest.raises(AMIProtocolError):
        decoder.feed(b"Event: X\r\n" + b"A: b\r\n" * 50)


def test_encoded_action_repeats_list_headers_and_refuses_header_injection():
    encoded = encode_action({"Action": "Originate", "Variable": ["A=1", "B=2"]}, "id-1").decode()
    assert encoded == "Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nActionID: id-1\r\n\r\n"
    with pytest.raises(ValueError):
        encode_action({"Action": "Redirect", "Exten": "1\r\n\r\nAction: Hangup"}, "id-2")


# ---- against the fake server ------------------------------------------------------------------------------

async def test_cjk_caller_name_split_mid_character_across_reads_arrives_intact(server, client):
    received, on_event = collector()
    client.on_event("Newchannel", on_event)
    await client.connect()
    assert await client.wait_ready(2)
    raw = "Event: Newchannel\r\nChannel: PJSIP/caller-00000001\r\nCallerIDName: 张三丰\r\n\r\n".encode()
    cut = raw.index("三".encode()) + 1  # inside the second character's three bytes
    await server.push(raw[:cut])
    await asyncio.sleep(0.05)  # let the first part be read on its own
    await server.push(raw[cut:])
    event = await asyncio.wait_for(received.get(), 2)
    assert event["CallerIDName"] == "张三丰"
    assert event.get("Channel") == "PJSIP/caller-00000001"


async def test_repeated_header_is_a_list_and_single_one_a_string(server, client):
    received, on_event = collector()
    client.on_event("*", on_event)
    await client.connect()
    assert await client.wait_ready(2)
    await server.push(b"Event: QueueCallerJoin\r\nChanVariable: HOTLINE_CALL_ID=1.2\r\n"
                      b"ChanVariable: HOTLINE_TICKET_ID=\r\nQueue: hotline\r\n\r\n")
    event = await asyncio.wait_for(received.get(), 2)
    assert event["ChanVariable"] == ["HOTLINE_CALL_ID=1.2", "HOTLINE_TICKET_ID="]
    assert event["Queue"] == "hotline"
    assert event.get("Missing") is None


async def test_repeated_event_or_actionid_header_neither_drops_the_connection_nor_stops_events(server, client):
    received, on_event = collector()
    client.on_event("Hangup", on_event)
    await client.connect()
    assert await client.wait_ready(2)
    await server.push(b"Event: Hangup\r\nEvent: Newchannel\r\nChannel: first\r\n\r\n"
                      b"Response: Success\r\nActionID: a\r\nActionID: b\r\n\r\n"
                      b"Response: Success\r\nResponse: Error\r\nActionID: c\r\n\r\n"
                      b"Event: Hangup\r\nChannel: second\r\n\r\n")
    assert (await asyncio.wait_for(received.get(), 2))["Channel"] == "first"   # the first name counts
    assert (await asyncio.wait_for(received.get(), 2))["Channel"] == "second"
    assert client.ready and client.reconnects == 0
    assert (await client.action({"Action": "Ping"}))["Response"] == "Success"


async def test_client_reconnects_logs_in_again_and_callbacks_still_fire(server, client):
    received, on_event = collector()
    client.on_event("Hangup", on_event)
    await client.connect()
    assert await client.wait_ready(2)
    assert client.reconnects == 0
    port = server.port

    await server.stop()  # Asterisk restarting: the connection drops and the port is closed for a while
    assert await wait_until(lambda: not client.ready)
    with pytest.raises(AMIError):
        await client.action({"Action": "Ping"})

    restarted = await FakeAMIServer(port).start()
    try:
        assert await client.wait_ready(3)
        assert restarted.logins == 1
        assert client.reconnects == 1
        await restarted.push_event(Event="Hangup", Channel="PJSIP/caller-00000002")
        event = await asyncio.wait_for(received.get(), 2)
        assert event["Channel"] == "PJSIP/caller-00000002"
        client.on_event("Newchannel", on_event)  # registering after a reconnect works as well
        await restarted.push_event(Event="Newchannel", Channel="PJSIP/caller-00000003")
        assert (await asyncio.wait_for(received.get(), 2))["Channel"] == "PJSIP/caller-00000003"
    finally:
        await restarted.stop()


async def test_asterisk_shutdown_event_makes_the_client_not_ready_and_reconnect(server, client):
    await client.connect()
    assert await client.wait_ready(2)
    server.logged_in.clear()
    await server.push_event(Event="Shutdown", Shutdown="Cleanly", Restart="True")
    assert await asyncio.wait_for(server.logged_in.wait(), 3)  # logged in again on the same server
    assert await client.wait_ready(2)
    assert client.reconnects == 1


async def test_action_returns_the_response(server, client):
    server.responses["CoreStatus"] = "Response: Success\r\nCoreCurrentCalls: 3"
    await client.connect()
    assert await client.wait_ready(2)
    response = await client.action({"Action": "CoreStatus"})
    assert response["CoreCurrentCalls"] == "3"
    assert server.actions[-1]["Action"] == "CoreStatus"


async def test_action_raises_amierror_on_response_error(server, client):
    server.responses["Redirect"] = "Response: Error\r\nMessage: Channel not specified"
    await client.connect()
    assert await client.wait_ready(2)
    with pytest.raises(AMIError) as failure:
        await client.action({"Action": "Redirect", "Channel": "", "Context": "x", "Exten": "1", "Priority": "1"})
    assert "Channel not specified" in str(failure.value)
    assert failure.value.response["Response"] == "Error"


async def test_action_without_answer_raises_amitimeout(server, client):
    server.silent.add("Status")
    await client.connect()
    assert await client.wait_ready(2)
    with pytest.raises(AMITimeout):
        await client.action({"Action": "Status"}, timeout=0.1)


async def test_list_action_returns_its_events_in_order_and_leaves_other_events_to_callbacks(server, client):
    server.lists["QueueStatus"] = [{"Event": "QueueParams", "Queue": "hotline"},
                                   {"Event": "QueueEntry", "Queue": "hotline", "Position": "1", "Channel": "PJSIP/a-1"},
                                   {"Event": "QueueEntry", "Queue": "hotline", "Position": "2", "Channel": "PJSIP/b-2"}]
    server.before_list_events = [{"Event": "QueueCallerJoin", "Channel": "PJSIP/c-3"}]
    received, on_event = collector()
    client.on_event("*", on_event)
    await client.connect()
    assert await client.wait_ready(2)
    response, events = await client.action_list({"Action": "QueueStatus", "Queue": "hotline"})
    assert response["EventList"] == "start"
    assert [(e["Event"], e.get("Channel")) for e in events] == [
        ("QueueParams", None), ("QueueEntry", "PJSIP/a-1"), ("QueueEntry", "PJSIP/b-2")]
    other = await asyncio.wait_for(received.get(), 1)
    assert other["Event"] == "QueueCallerJoin" and received.empty(), "the list's own events are the caller's"


async def test_list_action_of_a_plain_action_is_its_response_and_no_events(server, client):
    await client.connect()
    assert await client.wait_ready(2)
    response, events = await client.action_list({"Action": "Ping"})
    assert response["Response"] == "Success" and events == []


async def test_list_that_never_completes_raises_amitimeout(server, client):
    server.lists["QueueStatus"] = [{"Event": "QueueEntry", "Channel": "PJSIP/a-1"}]
    server.unfinished_lists.add("QueueStatus")
    await client.connect()
    assert await client.wait_ready(2)
    with pytest.raises(AMITimeout, match="1 events so far"):
        await client.action_list({"Action": "QueueStatus"}, timeout=0.3)
    assert client._lists == {}


async def test_list_cut_by_a_dropped_connection_raises_amierror(server, client):
    server.lists["QueueStatus"] = [{"Event": "QueueEntry", "Channel": "PJSIP/a-1"}]
    server.unfinished_lists.add("QueueStatus")
    await client.connect()
    assert await client.wait_ready(2)
    listing = asyncio.create_task(client.action_list({"Action": "QueueStatus"}, timeout=5))
    assert await wait_until(lambda: server.actions and server.actions[-1]["Action"] == "QueueStatus")
    await asyncio.sleep(0.05)
    for writer in server.writers:
        writer.close()
    with pytest.raises(AMIError):
        await asyncio.wait_for(listing, 2)


async def test_pending_action_fails_when_the_connection_drops_and_is_not_resent(server, client):
    server.silent.add("Redirect")
    await client.connect()
    assert await client.wait_ready(2)
    pending = asyncio.ensure_future(client.action({"Action": "Redirect", "Channel": "PJSIP/a-1"}, timeout=3))
    assert await wait_until(lambda: any(a["Action"] == "Redirect" for a in server.actions))
    port = server.port
    await server.stop()
    with pytest.raises(AMIError):
        await pending
    restarted = await FakeAMIServer(port).start()
    try:
        assert await client.wait_ready(3)
        assert [a["Action"] for a in restarted.actions] == ["Login"]
    finally:
        await restarted.stop()


async def test_action_before_connect_raises_amierror():
    ami = make_client(free_port())
    with pytest.raises(AMIError):
        await ami.action({"Action": "Ping"})
    await ami.close()


async def test_wait_ready_is_false_while_nothing_listens_then_true_once_a_server_starts():
    port = free_port()
    ami = make_client(port)
    await ami.connect()
    late = None
    try:
        assert await ami.wait_ready(0.3) is False
        assert not ami.ready
        late = await FakeAMIServer(port).start()
        assert await ami.wait_ready(3) is True
        assert ami.reconnects == 0  # first successful login is not a reconnect
    finally:
        await ami.close()
        if late is not None:
            await late.stop()


async def test_refused_login_is_retried_and_never_ready(caplog):
    fake = await FakeAMIServer(accept_login=False).start()
    ami = make_client(fake.port)
    try:
        with caplog.at_level(logging.INFO, logger="ami_handlers.client.connection"):
            await ami.connect()
            assert await ami.wait_ready(0.4) is False
        assert sum(a["Action"] == "Login" for a in fake.actions) >= 2
        assert "ami_login_refused" in caplog.text
    finally:
        await ami.close()
        await fake.stop()


async def test_failing_callback_does_not_stop_other_events_or_the_connection(server, client):
    received, on_event = collector()
    calls = []

    def broken(event):
        calls.append(event["Event"])
        raise RuntimeError("bug in a handler")

    client.on_event("Hangup", broken)
    client.on_event("Hangup", on_event)
    await client.connect()
    assert await client.wait_ready(2)
    await server.push_event(Event="Hangup", Channel="a")
    await server.push_event(Event="Hangup", Channel="b")
    assert (await asyncio.wait_for(received.get(), 2))["Channel"] == "a"
    assert (await asyncio.wait_for(received.get(), 2))["Channel"] == "b"
    assert calls == ["Hangup", "Hangup"]
    assert client.ready and client.reconnects == 0


async def test_one_callback_for_several_names_gets_them_once_and_in_order(server, client):
    received, on_event = collector()
    for name in ("QueueCallerJoin", "AgentConnect", "*"):
        client.on_event(name, on_event)
    await client.connect()
    assert await client.wait_ready(2)
    for name in ("QueueCallerJoin", "AgentConnect", "AgentComplete"):
        await server.push_event(Event=name)
    names = [(await asyncio.wait_for(received.get(), 2))["Event"] for _ in range(3)]
    assert names == ["QueueCallerJoin", "AgentConnect", "AgentComplete"]
    assert received.empty()


async def test_unanswered_ping_drops_a_half_open_connection(server):
    server.silent.add("Ping")
    ami = make_client(server.port, ping_interval=0.05, connect_timeout=0.2)
    try:
        await ami.connect()
        assert await ami.wait_ready(2)
        server.logged_in.clear()
        assert await asyncio.wait_for(server.logged_in.wait(), 3)
        assert await ami.wait_ready(2)
        assert ami.reconnects >= 1
    finally:
        await ami.close()


async def test_logs_carry_neither_secret_nor_caller_number(server, caplog):
    ami = make_client(server.port)
    received, on_event = collector()
    ami.on_event("*", on_event)
    try:
        with caplog.at_level(logging.DEBUG, logger="ami_handlers.client.connection"):
            await ami.connect()
            assert await ami.wait_ready(2)
            await server.push_event(Event="Newchannel", CallerIDNum=CALLER_NUMBER, ConnectedLineNum=CALLER_NUMBER)
            await asyncio.wait_for(received.get(), 2)
            await server.stop()
            assert await wait_until(lambda: not ami.ready)
    finally:
        await ami.close()
    assert "event=ami_ready" in caplog.text
    assert SECRET not in caplog.text
    assert CALLER_NUMBER not in caplog.text
