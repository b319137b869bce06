"""FastAGIServer against a synthetic Asterisk: every test drives a real TCP socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import pytest

import gateway.agi.server as fastagi
from gateway.agi.replies import AGICommandError, AGIError, AGIHangup, AGIProtocolError, AGIReply, AGITimeout
from gateway.agi.session import MAX_LINE_BYTES, AGISession
from gateway.agi.server import FastAGIServer

CALLER_NUMBER = "13800138000"
CALLER_NAME = "张三"
UNIQUEID = "1732690000.42"
STEP = 2.0  # bound on every wait in these tests; none of them should come near it


def header_block(script: str = "entry", uniqueid: str = UNIQUEID, extra: list[tuple[str, str]] = ()) -> bytes:
    lines = [
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", f"agi://127.0.0.1/{script}"),
        ("agi_channel", "PJSIP/caller-00000001"),
        ("agi_language", "zh"),
        ("agi_type", "PJSIP"),
        ("agi_uniqueid", uniqueid),
        ("agi_version", "22.10.1"),
        ("agi_callerid", CALLER_NUMBER),
        ("agi_calleridname", CALLER_NAME),
        ("agi_dnid", "12345"),
        ("agi_context", "hotline"),
        ("agi_extension", "12345"),
        ("agi_priority", "2"),
        ("agi_threadid", "140000000000000"),
        *extra,
    ]
    return "".join(f"{k}: {v}\n" for k, v in lines).encode() + b"\n"


class FakeAsterisk:
    """The Asterisk end of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> FakeAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def expect_command(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), STEP)
        assert line.endswith(b"\n"), f"connection closed instead of a command: {line!r}"
        return line[:-1].decode()

    async def reply(self, *lines: str) -> None:
        await self.send("".join(line + "\n" for line in lines))

    async def answer(self, *lines: str) -> str:
        command = await self.expect_command()
        await self.reply(*lines)
        return command

    async def expect_closed(self, within: float = STEP) -> None:
        try:
            data = await asyncio.wait_for(self.reader.read(), within)
        except ConnectionResetError:
            return  # aborted: closed with a RST
        assert data == b"", f"expected the server to close, got {data!r}"

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def serving(routes, **kwargs) -> AsyncIterator[FastAGIServer]:
    server = FastAGIServer(routes, port=0, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class Outcome:
    """What a handler saw, for the test to assert on once the call is over."""

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.values: list[object] = []
        self.error: BaseException | None = None
        self.runs = 0

    def wrap(self, body):
        async def handler(session: AGISession) -> None:
            self.runs += 1
            try:
                await body(session)
            except BaseException as exc:
                self.error = exc
                raise
            finally:
                self.done.set()

        return handler

    async def wait(self) -> None:
        await asyncio.wait_for(self.done.wait(), STEP)


async def wait_until(predicate, within: float = STEP) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
def agi_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="gateway.agi.server")
    return caplog


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.agi.server" and f"event={name}" in r.getMessage()]


# ------------------------------------------------------------------------------------------ header block

async def test_handler_sees_env_script_without_slash_or_query_and_args_in_order() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        seen.values[:] = [session.env, session.script, session.args, session.hungup]

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        extra = [("agi_arg_2", "second"), ("agi_arg_1", "first"), ("agi_arg_10", "tenth"), ("agi_arg_3", "")]
        await asterisk.send(header_block(script="/entry?lang=zh", extra=extra))
        await seen.wait()
        await asterisk.expect_closed()
    env, script, args, hungup = seen.values
    assert script == "entry"
    assert args == ["first", "second", "", "tenth"]
    assert env["agi_uniqueid"] == UNIQUEID and env["agi_calleridname"] == CALLER_NAME
    assert env["agi_network_script"] == "/entry?lang=zh"
    assert hungup is False


async def test_client_closing_mid_header_is_dropped_and_does_not_delay_other_calls(agi_log) -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        seen.values.append(await session.get_variable("QUEUE"))

    async with serving({"entry": seen.wrap(body)}, header_timeout=5.0) as server:
        # One caller's connection closes halfway through a line, another stays half-open.
        closing = await FakeAsterisk.connect(server.port)
        await closing.send(header_block()[:57])
        half_open = await FakeAsterisk.connect(server.port)
        await half_open.send(b"agi_network: yes\nagi_network_scr")
        closing.writer.write_eof()
        await closing.expect_closed()

        started = time.monotonic()
        normal = await FakeAsterisk.connect(server.port)
        await normal.send(header_block())
        assert await normal.answer("200 result=1 (sales)") == "GET VARIABLE QUEUE"
        await seen.wait()
        await normal.expect_closed()
        assert time.monotonic() - started < 1.0
        assert seen.values == ["sales"] and seen.runs == 1
        await wait_until(lambda: server.active_sessions == 1)  # only the half-open one is left
        half_open.close()
        await wait_until(lambda: server.active_sessions == 0)
    assert seen.runs == 1
    assert events(agi_log, "header_incomplete")


async def test_header_never_finished_is_dropped_after_header_timeout(agi_log) -> None:
    seen = Outcome()
    async with serving({"entry": seen.wrap(lambda s: asyncio.sleep(0))}, header_timeout=0.3) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block()[:100])
        started = time.monotonic()
        await asterisk.expect_closed()
        assert 0.2 < time.monotonic() - started < 1.5
    assert seen.runs == 0
    assert events(agi_log, "header_timeout")


async def test_header_block_over_max_header_bytes_is_refused_and_logged(agi_log) -> None:
    seen = Outcome()
    async with serving({"entry": seen.wrap(lambda s: asyncio.sleep(0))}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        padding = [(f"agi_pad_{i}", "x" * 100) for i in range(700)]  # ~75 KiB of well-formed lines
        with contextlib.suppress(ConnectionError):
            await asterisk.send(header_block(extra=padding))
        await asterisk.expect_closed()
    assert seen.runs == 0
    [record] = events(agi_log, "header_refused")
    assert "65536" in record.getMessage()


async def test_configured_max_header_bytes_below_the_line_bound_is_enforced(agi_log) -> None:
    seen = Outcome()
    async with serving({"entry": seen.wrap(lambda s: asyncio.sleep(0))}, max_header_bytes=256) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())  # ~420 bytes
        await asterisk.expect_closed()
    assert seen.runs == 0
    assert "over 256 bytes" in events(agi_log, "header_refused")[0].getMessage()


async def test_header_line_without_newline_is_refused_without_unbounded_buffering(agi_log) -> None:
    async with serving({}, max_header_bytes=65536) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        with contextlib.suppress(ConnectionError):
            for _ in range(64):  # 4 MiB without a newline: the server must give up after its bound
                await asterisk.send(b"a" * 65536)
        await asterisk.expect_closed()
    assert events(agi_log, "header_refused")


async def test_malformed_header_line_is_refused_without_logging_its_content(agi_log) -> None:
    async with serving({}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(f"agi_network: yes\nagi_callerid {CALLER_NUMBER}\n\n")
        await asterisk.expect_closed()
    assert events(agi_log, "header_refused")
    assert CALLER_NUMBER not in agi_log.text


async def test_caller_name_cut_mid_character_is_replaced_and_the_call_proceeds() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        seen.values.append(session.env["agi_calleridname"])
        await session.answer()

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        block = header_block().replace(f"agi_calleridname: {CALLER_NAME}".encode(),
                                       "agi_calleridname: 张".encode() + b"\xe4\xb8")
        await asterisk.send(block)
        assert await asterisk.answer("200 result=0") == "ANSWER"
        await seen.wait()
        await asterisk.expect_closed()
    assert seen.values == ["张\ufffd"]
    assert seen.error is None


# ------------------------------------------------------------------------------------------ replies

async def test_hangup_line_before_a_reply_is_consumed_and_later_replies_do_not_shift() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        seen.values.append(await session.get_variable("QUEUE"))
        seen.values.append(session.hungup)
        await session.set_variable("TICKET", "T-1")
        seen.values.append(await session.get_variable("TICKET"))

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        assert await asterisk.answer("HANGUP", "200 result=1 (sales)") == "GET VARIABLE QUEUE"
        assert await asterisk.answer("200 result=1") == 'SET VARIABLE TICKET "T-1"'
        assert await asterisk.answer("200 result=1 (T-1)") == "GET VARIABLE TICKET"
        await seen.wait()
    assert seen.values == ["sales", True, "T-1"]
    assert seen.error is None


async def test_hangup_line_sent_while_the_handler_is_idle_is_consumed_before_the_next_reply() -> None:
    seen = Outcome()
    hangup_sent = asyncio.Event()

    async def body(session: AGISession) -> None:
        await session.answer()
        await hangup_sent.wait()
        seen.values.append(await session.get_variable("DIALSTATUS"))
        seen.values.append(session.hungup)

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("200 result=0")
        await asterisk.reply("HANGUP")
        hangup_sent.set()
        assert await asterisk.answer("200 result=1 (CANCEL)") == "GET VARIABLE DIALSTATUS"
        await seen.wait()
    assert seen.values == ["CANCEL", True]


async def test_511_after_hangup_raises_agi_hangup_and_is_logged_at_info(agi_log) -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        await session.stream_file("hotline/welcome")

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("HANGUP", "511 result=-1 Command Not Permitted on a dead channel or intercept routine")
        await seen.wait()
        await asterisk.expect_closed()
    assert isinstance(seen.error, AGIHangup)
    [record] = events(agi_log, "session_hangup")
    assert record.levelno == logging.INFO
    assert not [r for r in agi_log.records if r.levelno >= logging.ERROR]


async def test_511_without_result_field_also_means_hangup() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(AGIHangup):
            await session.answer()
        seen.values.append(session.hungup)

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("511 Command Not Permitted on a dead channel or intercept routine")
        await seen.wait()
    assert seen.values == [True]


async def test_510_raises_command_error_with_code_and_text_and_session_continues() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(AGICommandError) as caught:
            await session.command("FROBNICATE")
        seen.values.append((caught.value.code, caught.value.text))
        seen.values.append(await session.get_variable("X"))

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("510 Invalid or unknown command")
        await asterisk.answer("200 result=1 (x)")
        await seen.wait()
    assert seen.values == [(510, "Invalid or unknown command"), "x"]


async def test_multiline_520_usage_is_read_completely_and_the_stream_stays_in_sync() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(AGICommandError) as caught:
            await session.command("GET DATA")
        seen.values.append(caught.value)
        seen.values.append(await session.get_variable("QUEUE"))

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer(
            "520-Invalid command syntax.  Proper usage follows:",
            " Usage: GET DATA <file to be streamed> [timeout] [maxdigits]",
            "Stream the given file, and receive DTMF data.",
            "520 End of proper usage.",
        )
        assert await asterisk.answer("200 result=1 (sales)") == "GET VARIABLE QUEUE"
        await seen.wait()
    error, queue = seen.values
    assert error.code == 520
    assert error.text.startswith("Invalid command syntax.") and "Usage: GET DATA" in error.text
    assert error.text.endswith("End of proper usage.")
    assert queue == "sales"


async def test_100_trying_is_skipped_and_the_final_reply_returned() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        seen.values.append(await session.command("RECORD FILE x wav # 1000"))

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("100 result=0 Trying...", "200 result=0 (timeout) endpos=8000")
        await seen.wait()
    assert seen.values == [AGIReply(200, "0", "timeout", {"endpos": "8000"})]


async def test_no_reply_raises_timeout_after_command_timeout_and_closes_the_session() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        started = time.monotonic()
        with pytest.raises(AGITimeout):
            await session.get_variable("QUEUE")
        seen.values.append(time.monotonic() - started)
        with pytest.raises(AGITimeout):  # no resync: later commands fail at once
            await session.get_variable("QUEUE")

    async with serving({"entry": seen.wrap(body)}, command_timeout=0.3) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        assert await asterisk.expect_command() == "GET VARIABLE QUEUE"
        await asterisk.expect_closed()
        await seen.wait()
    assert 0.25 < seen.values[0] < 1.5


async def test_timeout_argument_overrides_command_timeout() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        started = time.monotonic()
        with pytest.raises(AGITimeout):
            await session.command("WAIT FOR DIGIT 100", timeout=0.2)
        seen.values.append(time.monotonic() - started)

    async with serving({"entry": seen.wrap(body)}, command_timeout=30.0) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.expect_command()
        await asterisk.expect_closed()
        await seen.wait()
    assert 0.15 < seen.values[0] < 1.0


@pytest.mark.parametrize(("first_timeout", "second_timeout"), [(0.3, 0.3), (30.0, 0.3)])
async def test_each_command_gets_its_full_timeout_from_when_it_is_sent(first_timeout, second_timeout) -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        await session.command("ANSWER", timeout=first_timeout)
        await asyncio.sleep(0.2)  # the next deadline runs from the next command, not from the first
        started = time.monotonic()
        with pytest.raises(AGITimeout):
            await session.command("GET VARIABLE QUEUE", timeout=second_timeout)
        seen.values.append(time.monotonic() - started)

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("200 result=0")
        await asterisk.expect_command()
        await asterisk.expect_closed()
        await seen.wait()
    assert 0.28 < seen.values[0] < 0.6


async def test_eof_while_waiting_for_a_reply_raises_hangup() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(AGIHangup):
            await session.get_data("hotline/menu", 5000, 1)
        seen.values.append(session.hungup)
        with pytest.raises(AGIHangup):
            await session.answer()

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.expect_command()
        await asterisk.send(b"200 res")  # half a reply, then the socket closes
        asterisk.close()
        await seen.wait()
    assert seen.values == [True]


async def test_reply_line_over_the_bound_raises_protocol_error() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(AGIProtocolError):
            await session.get_variable("BIG")

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.expect_command()
        with contextlib.suppress(ConnectionError):
            await asterisk.send(b"200 result=1 (" + b"x" * (MAX_LINE_BYTES + 10))
            for _ in range(32):
                await asterisk.send(b"x" * 65536)
        await seen.wait()
        await asterisk.expect_closed()
    assert seen.error is None


async def test_garbage_reply_raises_protocol_error_without_echoing_numbers() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(AGIProtocolError) as caught:
            await session.get_variable("CALLERID(num)")
        seen.values.append(str(caught.value))

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer(f"result=1 ({CALLER_NUMBER})")
        await seen.wait()
    assert CALLER_NUMBER not in seen.values[0]


async def test_command_cancelled_while_awaiting_its_reply_closes_the_session_rather_than_shift() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await session.get_variable("SLOW")
        with pytest.raises(AGIError):  # its late reply must never answer this one
            await session.get_variable("NEXT")

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        assert await asterisk.expect_command() == "GET VARIABLE SLOW"
        await asterisk.expect_closed()
        await seen.wait()
    assert seen.error is None


async def test_commands_issued_concurrently_are_serialised() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        seen.values.extend(await asyncio.gather(session.get_variable("A"), session.get_variable("B")))

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        first = await asterisk.answer("200 result=1 (1)")
        second = await asterisk.answer("200 result=1 (2)")
        await seen.wait()
    assert (first, second) == ("GET VARIABLE A", "GET VARIABLE B")
    assert seen.values == ["1", "2"]


async def test_command_with_a_newline_is_refused_before_sending() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        with pytest.raises(ValueError):
            await session.set_variable("X", "a\nHANGUP")
        await session.verbose("still in sync")

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        assert await asterisk.answer("200 result=1") == 'VERBOSE "still in sync" 1'
        await seen.wait()
    assert seen.error is None


# ------------------------------------------------------------------------------------------ wrappers

async def test_wrappers_send_quoted_commands_and_decode_results() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        seen.values.append(await session.answer())
        seen.values.append(await session.stream_file("hotline/welcome", "12#"))
        seen.values.append(await session.stream_file("hotline/menu"))
        seen.values.append(await session.get_data("hotline/id", 3000, 18))
        seen.values.append(await session.get_data("hotline/id", 3000, 18))
        seen.values.append(await session.wait_for_digit(5000))
        seen.values.append(await session.wait_for_digit(5000))
        seen.values.append(await session.set_variable("NOTE", 'say "hi" \\ bye'))
        seen.values.append(await session.get_variable("NOTE"))
        seen.values.append(await session.get_variable("MISSING"))
        seen.values.append(await session.get_variable("EMPTY"))
        seen.values.append(await session.exec("Queue", "hotline,r,,,300"))
        seen.values.append(await session.verbose('ticket "T-1" open', 3))
        seen.values.append(await session.hangup())
        seen.values.append(session.hungup)

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        commands = [
            await asterisk.answer("200 result=0"),
            await asterisk.answer("200 result=49 endpos=1600"),
            await asterisk.answer("200 result=0 endpos=64000"),
            await asterisk.answer("200 result=110101199001011234"),
            await asterisk.answer("200 result=12 (timeout)"),
            await asterisk.answer("200 result=35"),
            await asterisk.answer("200 result=0"),
            await asterisk.answer("200 result=1"),
            await asterisk.answer('200 result=1 (say "hi" \\ bye)'),
            await asterisk.answer("200 result=0"),
            await asterisk.answer("200 result=1 ()"),
            await asterisk.answer("200 result=0"),
            await asterisk.answer("200 result=1"),
            await asterisk.answer("200 result=1"),
        ]
        await seen.wait()
    assert commands == [
        "ANSWER",
        'STREAM FILE "hotline/welcome" "12#"',
        'STREAM FILE "hotline/menu" ""',
        "GET DATA hotline/id 3000 18",
        "GET DATA hotline/id 3000 18",
        "WAIT FOR DIGIT 5000",
        "WAIT FOR DIGIT 5000",
        'SET VARIABLE NOTE "say \\"hi\\" \\\\ bye"',
        "GET VARIABLE NOTE",
        "GET VARIABLE MISSING",
        "GET VARIABLE EMPTY",
        'EXEC Queue "hotline,r,,,300"',
        'VERBOSE "ticket \\"T-1\\" open" 3',
        "HANGUP",
    ]
    assert seen.values == [
        None, "1", None, ("110101199001011234", False), ("12", True), "#", None, None,
        'say "hi" \\ bye', None, "", AGIReply(200, "0", None, {}), None, None, True,
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.wait_for_digit(5000),
        lambda s: s.stream_file("hotline/welcome", "1"),
        lambda s: s.get_data("hotline/menu", 5000, 1),
        lambda s: s.answer(),
        lambda s: s.exec("Dial", "PJSIP/agent1,30"),
    ],
    ids=["wait_for_digit", "stream_file", "get_data", "answer", "exec"],
)
async def test_wrapper_result_minus_one_raises_hangup(call) -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        await call(session)

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("200 result=-1")
        await seen.wait()
    assert isinstance(seen.error, AGIHangup)


async def test_hangup_is_a_no_op_once_the_channel_is_gone() -> None:
    seen = Outcome()

    async def body(session: AGISession) -> None:
        await session.answer()
        await session.hangup()
        seen.values.append(session.hungup)

    async with serving({"entry": seen.wrap(body)}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("HANGUP", "200 result=0")
        await seen.wait()
        await asterisk.expect_closed()  # no HANGUP command was sent
    assert seen.values == [True] and seen.error is None


# ------------------------------------------------------------------------------------------ server

async def test_unknown_script_gets_the_connection_closed_without_running_anything(agi_log) -> None:
    seen = Outcome()
    async with serving({"entry": seen.wrap(lambda s: asyncio.sleep(0))}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block(script="nosuch?x=1"))
        await asterisk.expect_closed()
    assert seen.runs == 0
    [record] = events(agi_log, "unknown_script")
    assert "script=nosuch" in record.getMessage() and f"call={UNIQUEID}" in record.getMessage()


async def test_handler_exception_is_logged_with_traceback_and_the_server_keeps_serving(agi_log) -> None:
    calls = []

    async def broken(session: AGISession) -> None:
        calls.append(session.env["agi_uniqueid"])
        if len(calls) == 1:
            raise RuntimeError("bug in a call-flow step")
        await session.answer()

    async with serving({"entry": broken}) as server:
        first = await FakeAsterisk.connect(server.port)
        await first.send(header_block(uniqueid="1.1"))
        await first.expect_closed()
        second = await FakeAsterisk.connect(server.port)
        await second.send(header_block(uniqueid="1.2"))
        assert await second.answer("200 result=0") == "ANSWER"
        await second.expect_closed()
    assert calls == ["1.1", "1.2"]
    [record] = events(agi_log, "handler_failed")
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "call=1.1" in record.getMessage()
    assert "bug in a call-flow step" in agi_log.text


async def test_timeout_out_of_a_handler_is_logged_as_an_error(agi_log) -> None:
    async def body(session: AGISession) -> None:
        await session.answer()

    async with serving({"entry": body}, command_timeout=0.1) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.expect_command()
        await asterisk.expect_closed()
        await wait_until(lambda: server.active_sessions == 0)
    [record] = events(agi_log, "handler_failed")
    assert "error=AGITimeout" in record.getMessage()


async def test_backlog_is_passed_to_start_server(monkeypatch) -> None:
    seen = {}
    real_start_server = asyncio.start_server

    async def spy(*args, **kwargs):
        seen.update(kwargs)
        return await real_start_server(*args, **kwargs)

    monkeypatch.setattr(fastagi.asyncio, "start_server", spy)
    async with serving({"entry": lambda s: s.answer()}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("200 result=0")
        await asterisk.expect_closed()
    assert seen["backlog"] >= 1024
    assert seen["limit"] == MAX_LINE_BYTES


async def test_many_concurrent_calls_complete() -> None:
    async def body(session: AGISession) -> None:
        await session.set_variable("ID", session.env["agi_uniqueid"])

    async def one_call(port: int, n: int) -> str:
        asterisk = await FakeAsterisk.connect(port)
        await asterisk.send(header_block(uniqueid=f"9.{n}"))
        command = await asterisk.answer("200 result=1")
        await asterisk.expect_closed()
        return command

    async with serving({"entry": body}) as server:
        commands = await asyncio.gather(*(one_call(server.port, n) for n in range(200)))
    assert commands == [f'SET VARIABLE ID "9.{n}"' for n in range(200)]


async def test_close_waits_briefly_then_cancels_sessions_still_running(monkeypatch) -> None:
    seen = Outcome()
    monkeypatch.setattr(FastAGIServer, "shutdown_grace", 0.2)

    async def body(session: AGISession) -> None:
        await session.wait_for_digit(-1)

    server = FastAGIServer({"entry": seen.wrap(body)}, port=0)
    await server.start()
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.send(header_block())
    await asterisk.expect_command()
    assert server.active_sessions == 1
    started = time.monotonic()
    await server.close()
    assert time.monotonic() - started < 1.5
    assert server.active_sessions == 0
    assert isinstance(seen.error, asyncio.CancelledError)
    await asterisk.expect_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_log_lines_carry_the_call_id_and_never_the_caller_number_or_name(agi_log) -> None:
    async def body(session: AGISession) -> None:
        await session.set_variable("CALLER", session.env["agi_callerid"])
        await session.get_variable("CALLERID(name)")
        raise RuntimeError("step failed")

    async with serving({"entry": body}) as server:
        asterisk = await FakeAsterisk.connect(server.port)
        await asterisk.send(header_block())
        await asterisk.answer("HANGUP", "200 result=1")
        await asterisk.answer(f"200 result=1 ({CALLER_NAME})")
        await asterisk.expect_closed()
        await wait_until(lambda: server.active_sessions == 0)
    server_events = ("event=listening", "event=closed")
    call_records = [r for r in agi_log.records
                    if r.name == "gateway.agi.server" and not r.getMessage().startswith(server_events)]
    assert {r.getMessage().split()[0] for r in call_records} >= {
        "event=session_start", "event=hangup_signal", "event=handler_failed", "event=session_end"}
    for record in call_records:
        message = record.getMessage()
        assert f"call={UNIQUEID}" in message
        assert "\n" not in message
    assert CALLER_NUMBER not in agi_log.text
    assert CALLER_NAME not in agi_log.text
