"""FastAGI server: one AGISession per TCP connection from Asterisk, routed by agi_network_script.

Why not panoramisk.fast_agi: it loops forever when Asterisk closes before the header block ends, reads the
unsolicited "HANGUP" line as the reply to the pending command (every later reply then shifts by one), and
returns failures as dicts. Here every read has a size and a time bound, EOF is AGIHangup, and errors are
typed where they are found and handled once, in FastAGIServer._serve_session.

Wire format and errors: gateway.agi.replies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from gateway.agi.replies import (
    AGIHangup,
    AGIProtocolError,
    parse_header_line,
)
from gateway.agi.session import (
    DEFAULT_MEDIA_TIMEOUT,
    MAX_LINE_BYTES,
    AGISession,
)
from gateway.basics.logs import log_event

__all__ = ["FastAGIServer", "Handler"]

log = logging.getLogger("gateway.agi.server")

Handler = Callable[["AGISession"], Awaitable[None]]


# --------------------------------------------------------------------------------------------- reading

async def _read_header(reader: asyncio.StreamReader, max_bytes: int) -> dict[str, str]:
    """The agi_* block up to the blank line. EOF first -> AGIHangup; over max_bytes -> AGIProtocolError.

    One bounded readuntil for the whole block (the reader's limit is at least max_bytes): a third of the
    per-call cost of reading ~25 header lines one by one.
    """
    try:
        block = await reader.readuntil(b"\n\n")
    except asyncio.IncompleteReadError as exc:
        raise AGIHangup(f"connection closed in the header after {len(exc.partial)} bytes") from None
    except asyncio.LimitOverrunError:
        raise AGIProtocolError(f"header block over {max_bytes} bytes") from None
    except ConnectionError as exc:
        raise AGIHangup(f"connection lost in the header: {exc.__class__.__name__}") from None
    if len(block) > max_bytes:
        raise AGIProtocolError(f"header block over {max_bytes} bytes")
    env: dict[str, str] = {}
    for number, raw in enumerate(block[:-2].split(b"\n"), 1):
        # Per complete line, so a caller name cut mid-character spoils only that character.
        line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
        try:
            key, value = parse_header_line(line)
        except AGIProtocolError:
            # Not the parser's message: it echoes the line, which may be the caller's number or name.
            raise AGIProtocolError(f"malformed header line {number}") from None
        env[key] = value
    return env


# --------------------------------------------------------------------------------------------- server

class FastAGIServer:
    # How long close() lets running calls finish before cancelling them.
    shutdown_grace: float = 2.0

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        host: str = "127.0.0.1",
        port: int = 4573,
        command_timeout: float = 10.0,
        header_timeout: float = 5.0,
        max_header_bytes: int = 65536,
        backlog: int = 1024,
        media_timeout: float = DEFAULT_MEDIA_TIMEOUT,
    ) -> None:
        self._routes = dict(routes)
        self._host = host
        self._port = port
        self._command_timeout = command_timeout
        self._header_timeout = header_timeout
        self._max_header_bytes = max_header_bytes
        self._backlog = backlog
        self._media_timeout = media_timeout
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FastAGIServer already started")
        # Asterisk gives up connecting after 2000 ms; a short backlog drops calls in a burst.
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, backlog=self._backlog,
            limit=max(MAX_LINE_BYTES, self._max_header_bytes),
        )
        log_event(log, logging.INFO, "listening", host=self._host, port=self.port,
                  routes=",".join(sorted(self._routes)))

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return self._server.sockets[0].getsockname()[1]

    @property
    def active_sessions(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                log_event(log, logging.WARNING, "sessions_cancelled", count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
            log_event(log, logging.INFO, "closed", port=self._port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve_session(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _serve_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            async with asyncio.timeout(self._header_timeout):
                env = await _read_header(reader, self._max_header_bytes)
        except TimeoutError:
            log_event(log, logging.WARNING, "header_timeout", peer=peer_text, timeout=self._header_timeout)
            writer.transport.abort()
            return
        except AGIHangup as exc:
            log_event(log, logging.INFO, "header_incomplete", peer=peer_text, reason=str(exc))
            writer.transport.abort()
            return
        except AGIProtocolError as exc:
            log_event(log, logging.WARNING, "header_refused", peer=peer_text, reason=str(exc))
            writer.transport.abort()
            return

        session = AGISession(
            reader, writer, env, command_timeout=self._command_timeout, media_timeout=self._media_timeout
        )
        handler = self._routes.get(session.script)
        if handler is None:
            # Asterisk sets AGISTATUS=FAILURE; the dialplan sends the caller to an agent.
            log_event(log, logging.WARNING, "unknown_script", call=session.call_id, script=session.script,
                      peer=peer_text)
            await session.close()
            return

        started = time.monotonic()
        log_event(log, logging.INFO, "session_start", call=session.call_id, script=session.script)
        outcome = "error"
        try:
            await handler(session)
            outcome = "done"
        except AGIHangup as exc:
            outcome = "hangup"
            log_event(log, logging.INFO, "session_hangup", call=session.call_id, script=session.script, reason=str(exc))
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:
            log_event(log,
                logging.ERROR, "handler_failed", exc_info=True,
                call=session.call_id, script=session.script, error=exc.__class__.__name__,
            )
        finally:
            await session.close()
            log_event(log,
                logging.INFO, "session_end", call=session.call_id, script=session.script, outcome=outcome,
                commands=session.commands_sent, hungup=session.hungup,
                ms=round((time.monotonic() - started) * 1000),
            )
