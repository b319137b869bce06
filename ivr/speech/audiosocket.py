"""AudioSocket (Asterisk app_audiosocket / chan_audiosocket) protocol: frames in, frames out.

A frame is a 1-byte type, a 2-byte big-endian payload length, the payload. The first frame from Asterisk is the
call's 16-byte UUID (type 0x01); audio is signed 16-bit little-endian 8 kHz mono (type 0x10, 320 bytes = 20 ms);
DTMF is one ASCII byte (type 0x03); 0x00 ends the stream; 0xff carries an error code. What the server writes as
0x10 frames is heard by the caller when the spy whispers (ChanSpy option w).
"""
from __future__ import annotations

import asyncio
import logging
import struct
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

log = logging.getLogger("ivr.speech.audiosocket")

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
FRAME_BYTES = 320            # 20 ms of 8 kHz signed 16-bit mono
MAX_PAYLOAD = 65535
CLOSE_DRAIN_S = 1.0          # how long the end frame may wait for a peer that does not read
_HEADER = struct.Struct("!BH")


class AudioSocketError(Exception):
    """A malformed or unexpected frame; the connection is closed."""


@dataclass(frozen=True)
class Frame:
    kind: int
    payload: bytes


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"AudioSocket payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    return _HEADER.pack(kind, len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, *, timeout: float) -> Frame | None:
    """The next frame, or None at EOF. A frame cut short by EOF is EOF too (Asterisk just closes at hangup)."""
    try:
        header = await asyncio.wait_for(reader.readexactly(_HEADER.size), timeout)
        kind, length = _HEADER.unpack(header)
        payload = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
    except asyncio.IncompleteReadError:
        return None
    return Frame(kind, payload)


Handler = Callable[["AudioSocketConnection"], Awaitable[None]]


class AudioSocketConnection:
    """One call's AudioSocket stream, as a sequence of frames, plus a writer for audio back to the caller."""

    def __init__(self, call_uuid: uuid.UUID, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 *, idle_timeout: float) -> None:
        self.uuid = call_uuid
        self._reader = reader
        self._writer = writer
        self._idle_timeout = idle_timeout
        self.closed = False

    async def frames(self):
        """Yield frames until hangup/EOF; raises AudioSocketError on an error frame or garbage type."""
        while not self.closed:
            frame = await read_frame(self._reader, timeout=self._idle_timeout)
            if frame is None or frame.kind == KIND_HANGUP:
                return
            if frame.kind == KIND_ERROR:
                raise AudioSocketError(f"Asterisk reported error {frame.payload.hex() or '-'}")
            if frame.kind not in (KIND_AUDIO, KIND_DTMF) and not 0x10 <= frame.kind <= 0x18:
                raise AudioSocketError(f"unexpected frame type 0x{frame.kind:02x}")
            yield frame

    async def send_audio(self, pcm: bytes) -> None:
        if self.closed:
            return
        for i in range(0, len(pcm), FRAME_BYTES):
            self._writer.write(encode_frame(KIND_AUDIO, pcm[i:i + FRAME_BYTES]))
        await self._writer.drain()

    async def close(self) -> None:
        """Ask Asterisk to end the stream (type 0x00), then close; the spy channel goes away within ~10 ms."""
        if self.closed:
            return
        self.closed = True
        try:
            self._writer.write(encode_frame(KIND_HANGUP))
            await asyncio.wait_for(self._writer.drain(), CLOSE_DRAIN_S)
        except TimeoutError:
            self._writer.transport.abort()   # a peer that reads nothing must not hold the connection open
            return
        except (ConnectionError, RuntimeError):
            pass
        self._writer.close()


class AudioSocketServer:
    """Accepts AudioSocket connections and hands each, by its UUID, to the handler."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                 first_frame_timeout: float = 5.0, idle_timeout: float = 5.0) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._first_frame_timeout = first_frame_timeout
        self._idle_timeout = idle_timeout
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, self._port, backlog=1024)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = None
        try:
            first = await read_frame(reader, timeout=self._first_frame_timeout)
            if first is None or first.kind != KIND_UUID or len(first.payload) != 16:
                log.warning("event=audiosocket_refused reason=no_uuid_frame")
                return
            conn = AudioSocketConnection(uuid.UUID(bytes=first.payload), reader, writer,
                                         idle_timeout=self._idle_timeout)
            await self._handler(conn)
        except (TimeoutError, ConnectionError) as exc:
            log.info("event=audiosocket_closed reason=%s", type(exc).__name__)
        except AudioSocketError as exc:
            log.warning("event=audiosocket_error error=%r", str(exc))
        except Exception:  # noqa: BLE001 - one call's capture must not take the server down
            log.exception("event=audiosocket_handler_failed")
        except asyncio.CancelledError:
            # Only close() cancels a connection's task, and nothing awaits its outcome: it ends here. (CPython
            # 3.11's start_server calls task.exception() on it, which for a cancelled task logs an error.)
            log.info("event=audiosocket_closed reason=cancelled")
        finally:
            if conn is not None:
                await conn.close()
            else:
                writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
