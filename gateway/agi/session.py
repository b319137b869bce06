"""One AGI conversation: AGISession sends one command at a time on a FastAGI connection and reads its reply.

gateway.agi.server accepts the connection, reads the agi_* header and hands the session to the script's handler.
Wire format and errors: gateway.agi.replies.
"""

from __future__ import annotations

import asyncio
import logging
import math

from gateway.basics.logs import log_event
from gateway.agi.replies import (
    AGICommandError,
    AGIError,
    AGIHangup,
    AGIProtocolError,
    AGIReply,
    AGITimeout,
    command_verb,
    digit_result,
    one_word,
    parse_reply,
    quote,
    raise_if_hangup,
)

__all__ = ["AGISession", "MAX_LINE_BYTES", "MAX_USAGE_BYTES", "DEFAULT_MEDIA_TIMEOUT"]

# The server's logger name, kept since the split: session and server events are one stream to filter.
# One logger for the FastAGI layer (server and sessions): operators filter on it.
log = logging.getLogger("gateway.agi.server")

# Bound on one line from Asterisk (header or reply). GET VARIABLE values are the longest replies we expect.
MAX_LINE_BYTES = 65536
# Bound on a multi-line 520 usage block (res_agi.c writes a command's whole usage text there).
MAX_USAGE_BYTES = 65536
# Default deadline for commands that play media or run applications (STREAM FILE, GET DATA, EXEC):
# Asterisk replies only when the prompt or application ends, which can be minutes (EXEC Dial/Queue).
DEFAULT_MEDIA_TIMEOUT = 3600.0


# --------------------------------------------------------------------------------------------- reading

async def _read_line(reader: asyncio.StreamReader) -> str | None:
    """One complete line without its newline, decoded with errors="replace"; None at EOF.

    The reader's limit (MAX_LINE_BYTES, set in start_server) bounds the buffering: a longer line raises
    AGIProtocolError instead of growing the buffer.
    """
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        return None  # EOF, possibly after a partial line: the peer is gone either way
    except asyncio.LimitOverrunError as exc:
        raise AGIProtocolError(f"line over {MAX_LINE_BYTES} bytes ({exc.consumed} buffered)") from None
    except ConnectionError:
        return None
    raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    # Per complete line, so a multi-byte character is never split by a read boundary.
    return raw.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------- session

class AGISession:
    """One AGI conversation. Commands are serialised: AGI is strictly one request, one reply."""

    env: dict[str, str]
    script: str
    args: list[str]
    hungup: bool

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        *,
        command_timeout: float = 10.0,
        media_timeout: float = DEFAULT_MEDIA_TIMEOUT,
    ) -> None:
        self.env = env
        self.script = env.get("agi_network_script", "").split("?", 1)[0].lstrip("/")
        numbered = []
        for key, value in env.items():
            n = key[len("agi_arg_"):]
            if key.startswith("agi_arg_") and n.isascii() and n.isdigit():
                numbered.append((int(n), value))
        self.args = [value for _, value in sorted(numbered)]
        self.hungup = False
        self.call_id = env.get("agi_uniqueid", "")
        self.commands_sent = 0
        self._reader = reader
        self._writer = writer
        self._command_timeout = command_timeout
        self._media_timeout = media_timeout
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._broken: AGIError | None = None
        self._closed = False
        self._pending: tuple[str, float] | None = None  # the command awaiting its reply, and its timeout
        self._deadline = 0.0
        self._watchdog: asyncio.TimerHandle | None = None

    # -- the protocol

    async def command(self, line: str, *, timeout: float | None = None) -> AGIReply:
        """Send one command line and return its reply. timeout=None: the server's command_timeout."""
        if "\n" in line or "\r" in line or "\0" in line:
            # A newline in an argument would smuggle a second command onto the channel.
            raise ValueError("an AGI command is one line")
        if timeout is None:
            timeout = self._command_timeout
        async with self._lock:
            if self._broken is not None:
                raise type(self._broken)(f"session already failed: {self._broken}")
            # A missed deadline aborts the connection (the session cannot resync after a lost reply anyway);
            # the read then ends at EOF and reports the timeout. See _watch for why no per-command timer.
            if timeout >= 0 and not math.isinf(timeout):
                self._arm(line, timeout)
            owed = False  # a reply is owed once the line may have reached Asterisk
            try:
                self._writer.write(line.encode("utf-8") + b"\n")
                owed = True
                self.commands_sent += 1
                await self._writer.drain()
                return await self._read_reply()
            except (AGIHangup, ConnectionError) as exc:
                if isinstance(self._broken, AGITimeout):
                    raise self._broken from None
                if isinstance(exc, AGIHangup):
                    if self.hungup and self._reader.at_eof():
                        self._fail(exc)
                    raise
                self.hungup = True
                hangup = AGIHangup(f"connection lost during {command_verb(line)}: {exc.__class__.__name__}")
                self._fail(hangup)
                raise hangup from None
            except AGIProtocolError as exc:
                self._fail(exc)
                raise
            except asyncio.CancelledError:
                if owed:
                    # The reply would arrive later and answer the next command instead.
                    self._fail(AGIError(f"{command_verb(line)} was cancelled while waiting for its reply"))
                raise
            finally:
                self._pending = None

    def _arm(self, line: str, timeout: float) -> None:
        self._deadline = deadline = self._loop.time() + timeout
        self._pending = (line, timeout)
        watchdog = self._watchdog
        if watchdog is None or watchdog.when() > deadline:
            if watchdog is not None:
                watchdog.cancel()
            self._watchdog = self._loop.call_at(deadline, self._watch)

    def _watch(self) -> None:
        """One timer per session, moved forward lazily, instead of a timer per command: creating and cancelling
        one per command measured ~3 us of the ~5 us per command this layer costs over panoramisk."""
        self._watchdog = None
        if self._pending is None or self._broken is not None:
            return  # idle: the next command arms it again
        if self._loop.time() >= self._deadline - 0.001:
            line, timeout = self._pending
            verb = command_verb(line)
            log_event(log, logging.WARNING, "command_timeout", call=self.call_id, command=verb, timeout=timeout)
            self._fail(AGITimeout(f"no reply to {verb} within {timeout:g} s"))
        else:
            self._watchdog = self._loop.call_at(self._deadline, self._watch)

    async def _read_reply(self) -> AGIReply:
        while True:
            line = await _read_line(self._reader)
            if line is None:
                if self._broken is None:  # else it was our own abort
                    self.hungup = True
                raise AGIHangup("connection closed by Asterisk")
            if line == "HANGUP":
                # Unsolicited (AGISIGHUP=yes): not a reply. The reply to the pending command still follows.
                if not self.hungup:
                    log_event(log, logging.INFO, "hangup_signal", call=self.call_id)
                self.hungup = True
                continue
            if len(line) > 3 and line[3] == "-" and line[:3].isdigit():
                await self._read_multiline(line)
            try:
                reply = parse_reply(line)
            except AGICommandError as exc:
                if exc.code == 511:
                    self.hungup = True
                    raise AGIHangup(f"dead channel: {exc}") from exc
                raise
            if reply.code < 200:
                continue  # "100 result=0 Trying...": the real reply follows
            return reply

    async def _read_multiline(self, first: str) -> None:
        """Read "520-..." through "520 ..." so the stream stays in sync, then raise for the whole block."""
        code = first[:3]
        texts = [first[4:]]
        total = len(first)
        while True:
            line = await _read_line(self._reader)
            if line is None:
                if self._broken is None:
                    self.hungup = True
                raise AGIHangup(f"connection closed inside a {code} reply")
            total += len(line) + 1
            if total > MAX_USAGE_BYTES:
                raise AGIProtocolError(f"multi-line {code} reply over {MAX_USAGE_BYTES} bytes")
            if line == code or line.startswith(code + " "):
                texts.append(line[4:])
                break
            texts.append(line)
        if code.startswith("5"):
            raise AGICommandError(int(code), "\n".join(texts))
        raise AGIProtocolError(f"unexpected multi-line {code} reply")

    def _fail(self, exc: AGIError) -> None:
        """The stream cannot be trusted any more: refuse further commands and drop the connection."""
        if self._broken is None:
            self._broken = exc
        self._writer.transport.abort()

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if not writer.is_closing():
            writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            writer.transport.abort()

    # -- one AGI command each

    async def answer(self) -> None:
        raise_if_hangup(await self.command("ANSWER"), "ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "", *, timeout: float | None = None) -> str | None:
        """Play a prompt; the escape digit that interrupted it, or None when it played to the end.

        result=-1 is also what Asterisk returns for a missing sound file (with a warning in its log).
        """
        reply = await self.command(
            f"STREAM FILE {quote(name)} {quote(escape_digits)}",
            timeout=self._media_timeout if timeout is None else timeout,
        )
        return digit_result(reply, "STREAM FILE")

    async def get_data(
        self, name: str, timeout_ms: int, max_digits: int, *, timeout: float | None = None
    ) -> tuple[str, bool]:
        """(digits, timed_out). timed_out is True when the caller stopped typing before max_digits/#."""
        reply = await self.command(
            f"GET DATA {one_word(name, 'prompt name')} {int(timeout_ms)} {int(max_digits)}",
            timeout=self._media_timeout if timeout is None else timeout,
        )
        raise_if_hangup(reply, "GET DATA")
        return reply.result, reply.data == "timeout"

    async def wait_for_digit(self, timeout_ms: int, *, timeout: float | None = None) -> str | None:
        if timeout is None:
            timeout = self._command_timeout + timeout_ms / 1000 if timeout_ms >= 0 else self._media_timeout
        reply = await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}", timeout=timeout)
        return digit_result(reply, "WAIT FOR DIGIT")

    async def set_variable(self, name: str, value: str) -> None:
        reply = await self.command(f"SET VARIABLE {one_word(name, 'variable name')} {quote(value)}")
        raise_if_hangup(reply, "SET VARIABLE")

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command(f"GET VARIABLE {one_word(name, 'variable name')}")
        if reply.result == "0":
            return None
        return reply.data if reply.data is not None else ""

    async def exec(self, app: str, args: str = "", *, timeout: float | None = None) -> AGIReply:
        """EXEC app "args". result=-1 (the application asked for a hangup) raises AGIHangup; -2 is no such app."""
        reply = await self.command(
            f"EXEC {one_word(app, 'application')} {quote(args)}",
            timeout=self._media_timeout if timeout is None else timeout,
        )
        raise_if_hangup(reply, f"EXEC {app}")
        return reply

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {int(level)}")

    async def hangup(self) -> None:
        if self.hungup:
            return
        try:
            await self.command("HANGUP")
        except AGIHangup:
            pass
        self.hungup = True
