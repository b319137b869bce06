"""Speech capture while the caller waits in the queue: ChanSpy into AudioSocket, VAD, vosk, triage.

On ``QueueCallerJoin`` the gateway originates ``AudioSocket/host:port/UUID`` running ``ChanSpy(<caller>,qEuow)``:
only the caller's own voice (o), the exact channel (u), no beep (q), ends with the caller (E), and what the
gateway writes back is whispered to the caller (w), so the "please describe your matter" prompt plays while the
queue keeps ringing agents (measured: heard from 0.17 s; Playback before Queue() would delay queue entry by the
prompt's length). The caller never waits longer for a human because of this: an agent answering ends the capture
at once, and what was said so far is recognised and filed.

Each live capture holds a recogniser stream from queue entry on. A caller who joins when every stream is busy is
recorded instead: the same spy, its audio kept and recognised once a stream is free (``take_recording`` when an
agent answers). Asterisk cannot record a caller already in Queue() for us without AMI "system" rights (the
MixMonitor action), and a ChanSpy into a Local channel hands the other half nothing but silence (measured).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from gateway.contract import CALL_ID_VAR, CAPTURE_AUDIOSOCKET, CAPTURE_DONE, CAPTURE_RECORD, CAPTURE_VAR
from ami_handlers.queue_events import channel_vars
from ivr.speech.audiosocket import KIND_AUDIO, KIND_DTMF, AudioSocketConnection, AudioSocketError
from ivr.speech.recogniser import SpeechCapacityError
from ivr.speech.vad import VADSettings, VADState, step
from recordings.files import recording_path, write_wav

log = logging.getLogger("ivr.speech.capture")

MAX_AUDIO_BYTES = 60 * 16000   # 60 s of 8 kHz 16-bit: the longest description kept
PROMPT_FRAME_S = 0.02
SPY_CONNECT_TIMEOUT_S = 3.0    # measured: the spy connects 0.10-0.13 s after QueueCallerJoin
FALLBACK_FOR_S = 60.0          # after a spy that never connected, new calls are recorded instead for this long
# A recording keeps: when every recogniser stream is busy (the reason it was recorded), wait this long for one.
STREAM_WAIT_S = 60.0


@dataclass
class CaptureSession:
    call_id: str
    channel: str
    uuid: uuid.UUID
    stream: Any | None = None      # the recogniser stream held for this call from queue entry until filed
    live: bool = True              # False: recorded only (no stream was free), recognised once a stream is
    started: float = field(default_factory=time.monotonic)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended_by: str | None = None
    transcript: str = ""
    audio_seconds: float = 0.0


@dataclass(frozen=True)
class CaptureResult:
    call_id: str
    pcm: bytes
    transcript: str
    ended_by: str


# What the service does with a finished capture (store the recording, triage, update the draft).
ResultSink = Callable[[CaptureResult], Awaitable[None]]


def read_fault(exc: BaseException) -> str:
    """How a capture ends when its AudioSocket read fails: the reason logged and handed on with the result."""
    if isinstance(exc, TimeoutError):
        return "read_timeout"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    return "read_error"


class SpeechCapture:
    """Starts a spy per queued call, consumes its AudioSocket stream, hands the result to ``on_result``.

    A session is registered from queue entry until its capture is filed or given up, and a live one holds its
    recogniser stream all that time; every way out (the end of speech, an agent answering, a read error, timeout or reset,
    the caller hanging up, a spy that never connects, cancellation) forgets the session, frees the stream and sets
    ``done``. What was captured before a fault is filed like any other capture.
    """

    def __init__(self, ami: Any, *, audiosocket_host: str, audiosocket_port: Callable[[], int],
                 recogniser: Any | None, on_result: ResultSink, prompt_pcm: bytes = b"",
                 vad: VADSettings = VADSettings(), forced_mode: str | None = None) -> None:
        self.ami = ami
        self.host = audiosocket_host
        self.port = audiosocket_port
        self.recogniser = recogniser
        self.on_result = on_result
        self.prompt_pcm = prompt_pcm
        self.vad = vad
        self._by_uuid: dict[uuid.UUID, CaptureSession] = {}
        self._by_call: dict[str, CaptureSession] = {}      # live captures: an agent answering waits for these
        self._recording: dict[str, CaptureSession] = {}    # recorded only: an agent answering waits for nothing
        self._tasks: set[asyncio.Task] = set()
        self._filing: set[asyncio.Task] = set()
        self._forced_mode = forced_mode
        self._audiosocket_broken_until = 0.0

    @property
    def open_sessions(self) -> int:
        """Captures registered now (queued callers being spied on or about to be, or recorded only)."""
        return len(self._by_call) + len(self._recording)

    def mode(self) -> str:
        """How the next call's description is captured: live over AudioSocket, or recorded (the fallback)."""
        if self._forced_mode == CAPTURE_RECORD or time.monotonic() < self._audiosocket_broken_until:
            return CAPTURE_RECORD
        return CAPTURE_AUDIOSOCKET

    def use_recording_only(self) -> None:
        """No AudioSocket at all (its port could not be bound): every call is recorded instead."""
        self._forced_mode = CAPTURE_RECORD

    def _audiosocket_failed(self, session: CaptureSession, reason: str) -> None:
        self._audiosocket_broken_until = time.monotonic() + FALLBACK_FOR_S
        log.warning("call=%s event=audiosocket_unusable reason=%s fallback=record for_s=%.0f", session.call_id,
                    reason, FALLBACK_FOR_S)
        self._give_up(session, reason)

    def _give_up(self, session: CaptureSession, reason: str) -> None:
        """End a session that captured nothing: forgotten, its stream freed, its waiters released."""
        self._forget(session)
        if session.stream is not None:
            session.stream.close()
        session.ended_by = session.ended_by or reason
        session.done.set()

    def attach(self, ami: Any) -> None:
        ami.on_event("QueueCallerJoin", self.on_queue_join)
        ami.on_event("DTMFEnd", self.on_dtmf)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- AMI side ---------------------------------------------------------------------------------------------------
    async def on_queue_join(self, event: Mapping[str, Any]) -> None:
        variables = channel_vars(event)
        call_id = variables.get(CALL_ID_VAR)
        channel = event.get("Channel")
        # recorded by Asterisk instead, or back in the queue after a linkage offer
        if (not call_id or not channel or call_id in self._by_call or call_id in self._recording
                or variables.get(CAPTURE_VAR) in {CAPTURE_RECORD, CAPTURE_DONE}):
            return
        # The stream is taken now, not when the spy connects: a call that cannot have one is recorded instead
        # (the same spy, its audio kept for recognition once a stream is free), and an agent answering it
        # waits for nothing.
        live = True
        try:
            stream = self.recogniser.stream(call_id=call_id) if self.recogniser is not None else None
        except SpeechCapacityError:
            stream, live = None, False
            log.info("call=%s event=capture_recording reason=recogniser_busy", call_id)
        session = CaptureSession(call_id=call_id, channel=channel, uuid=uuid.uuid4(), stream=stream, live=live)
        self._by_uuid[session.uuid] = session
        (self._by_call if live else self._recording)[call_id] = session
        # Async Originate answers "queued" at once; panoramisk-style waiting for OriginateResponse is not needed.
        self._spawn(self._originate(session))

    async def _originate(self, session: CaptureSession) -> None:
        try:
            await self.ami.action({
                "Action": "Originate",
                "Channel": f"AudioSocket/{self.host}:{self.port()}/{session.uuid}",
                "Application": "ChanSpy",
                "Data": f"{session.channel},qEuow",
                "Async": "true",
            })
            log.info("call=%s event=capture_originated", session.call_id)
        except asyncio.CancelledError:
            if not session.connected.is_set():
                self._give_up(session, "cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - no capture is a lost transcript, never a lost call
            if not session.connected.is_set():
                self._audiosocket_failed(session, f"originate_failed:{type(exc).__name__}")
            return
        # An async Originate that fails (no app_audiosocket, nothing listening) says so only in an event of a
        # class we do not read; a spy that never connects tells the same.
        try:
            await asyncio.wait_for(session.connected.wait(), SPY_CONNECT_TIMEOUT_S)
        except TimeoutError:
            if not session.done.is_set() and not session.connected.is_set():
                self._audiosocket_failed(session, "spy_never_connected")
        except asyncio.CancelledError:
            if not session.connected.is_set():
                self._give_up(session, "cancelled")
            raise

    async def on_dtmf(self, event: Mapping[str, Any]) -> None:
        if event.get("Digit") != "#" or event.get("Direction", "Received") != "Received":
            return
        call_id = channel_vars(event).get(CALL_ID_VAR)
        session = self._by_call.get(call_id or "") or self._recording.get(call_id or "")
        if session is not None:
            session.ended_by = session.ended_by or "pound"
            session.stop.set()

    async def finish_for_call(self, call_id: str, *, timeout: float = 2.0) -> CaptureSession | None:
        """An agent answered: end the capture at once and wait (bounded) until what was said is filed."""
        session = self._by_call.get(call_id)
        if session is None:
            return None
        session.ended_by = session.ended_by or "agent_answered"
        session.stop.set()
        try:
            await asyncio.wait_for(session.done.wait(), timeout)
        except TimeoutError:
            log.warning("call=%s event=capture_finish_slow timeout_s=%s", call_id, timeout)
        return session

    async def take_recording(self, call_id: str) -> bool:
        """An agent answered a call that was recorded only: end the recording and wait until it is recognised and
        filed. False when there is none (not recorded, or already filed)."""
        session = self._recording.get(call_id)
        if session is None:
            return False
        session.ended_by = session.ended_by or "agent_answered"
        session.stop.set()
        await session.done.wait()
        return True

    def _forget(self, session: CaptureSession) -> None:
        for registry, key in ((self._by_uuid, session.uuid), (self._by_call, session.call_id),
                              (self._recording, session.call_id)):
            if registry.get(key) is session:
                del registry[key]

    # -- AudioSocket side -------------------------------------------------------------------------------------------
    async def handle_connection(self, conn: AudioSocketConnection) -> None:
        session = self._by_uuid.get(conn.uuid)
        if session is None or session.connected.is_set():
            log.warning("event=audiosocket_unknown_uuid")
            return
        session.connected.set()
        prompt = asyncio.create_task(self._whisper_prompt(conn))
        audio = bytearray()
        ended_by = "eof"
        try:
            ended_by = await self._consume(conn, session, audio) or ended_by
        except (AudioSocketError, TimeoutError, ConnectionError) as exc:
            # What the caller said up to the fault is still theirs to have filed.
            ended_by = read_fault(exc)
            log.info("call=%s event=capture_read_failed reason=%s error=%s", session.call_id, ended_by,
                     type(exc).__name__)
        except asyncio.CancelledError:
            ended_by = "cancelled"
            raise
        finally:
            session.ended_by = session.ended_by or ended_by
            # the spy is gone for good; the call stays registered until filed, so that an agent answering
            # meanwhile waits for the transcript instead of popping without it
            self._by_uuid.pop(session.uuid, None)
            filing = asyncio.ensure_future(self._file(session, bytes(audio)))
            self._filing.add(filing)
            filing.add_done_callback(self._filing.discard)
            # Shut the prompt and the socket after the filing has started: a second cancellation here must not
            # lose what was captured (the filing task runs on, and close() awaits it).
            prompt.cancel()
            await asyncio.gather(prompt, return_exceptions=True)
            await conn.close()
        if not filing.done():
            await asyncio.shield(filing)

    async def _file(self, session: CaptureSession, pcm: bytes) -> None:
        """Recognise the rest, hand the result on, free the stream and release whoever waits for it."""
        try:
            transcript = ""
            if session.stream is not None:
                transcript = await session.stream.finish()   # frees the stream, also when decoding fails
            elif self.recogniser is not None and pcm:
                transcript = await self.recogniser.transcribe(pcm, call_id=session.call_id, wait_s=STREAM_WAIT_S)
            session.transcript = transcript
            session.audio_seconds = len(pcm) / 16000
            log.info("call=%s event=capture_ended by=%s audio_s=%.1f transcript_chars=%d", session.call_id,
                     session.ended_by, session.audio_seconds, len(transcript))
            await self.on_result(CaptureResult(session.call_id, pcm, transcript, session.ended_by or "eof"))
        except Exception:  # a capture that cannot be filed must not leave the call waiting
            log.exception("call=%s event=capture_filing_failed", session.call_id)
        finally:
            if session.stream is not None:
                session.stream.close()   # idempotent after finish(); frees the stream if finish was cancelled
            self._forget(session)
            session.done.set()

    async def _consume(self, conn: AudioSocketConnection, session: CaptureSession, audio: bytearray) -> str | None:
        state = VADState()
        frames = conn.frames()
        stream = session.stream
        deadline = session.started + self.vad.max_ms / 1000
        no_speech_deadline = session.started + self.vad.no_speech_ms / 1000
        stop_wait = asyncio.ensure_future(session.stop.wait())
        # One read stays pending across timeouts: cancelling it would close the frame generator.
        next_frame: asyncio.Future | None = None
        try:
            while True:
                # A caller who sends no media (DTX, or a test caller without RTP) gives the spy no frames at all:
                # wall-clock limits apply as well as the frame-counting VAD.
                now = time.monotonic()
                if now >= deadline:
                    return "max_duration"
                if not state.heard_speech and now >= no_speech_deadline:
                    return "no_speech"
                limit = (self.vad.end_silence_ms / 1000 if state.heard_speech
                         else min(deadline, no_speech_deadline) - now)
                if next_frame is None:
                    next_frame = asyncio.ensure_future(anext(frames))
                done, _ = await asyncio.wait({next_frame, stop_wait}, timeout=max(limit, 0.01),
                                             return_when=asyncio.FIRST_COMPLETED)
                if stop_wait in done:
                    return session.ended_by
                if next_frame not in done:
                    if state.heard_speech:
                        return "silence"
                    continue
                try:
                    frame = next_frame.result()
                except StopAsyncIteration:
                    return "caller_gone"
                finally:
                    next_frame = None
                if frame.kind == KIND_DTMF and frame.payload == b"#":
                    return "pound"
                if frame.kind != KIND_AUDIO:
                    continue
                if len(audio) < MAX_AUDIO_BYTES:
                    audio += frame.payload[: MAX_AUDIO_BYTES - len(audio)]
                if stream is not None:
                    try:
                        await stream.feed(frame.payload)
                    except Exception as exc:  # noqa: BLE001 - the audio is kept and filed without the recogniser
                        log.error("call=%s event=speech_feed_failed error=%s", session.call_id, type(exc).__name__)
                        stream = None
                state = step(state, frame.payload, self.vad)
                if state.ended:
                    return state.ended
        finally:
            stop_wait.cancel()
            pending = [f for f in (stop_wait, next_frame) if f is not None]
            if next_frame is not None:
                next_frame.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await frames.aclose()

    async def _whisper_prompt(self, conn: AudioSocketConnection) -> None:
        """Play the invitation to the caller through the spy's whisper, paced in real time."""
        frame = 320
        start = time.monotonic()
        for i, offset in enumerate(range(0, len(self.prompt_pcm), frame)):
            await conn.send_audio(self.prompt_pcm[offset:offset + frame])
            delay = start + (i + 1) * PROMPT_FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def close(self, *, filing_timeout: float = 5.0) -> None:
        """Stop starting spies; let captures already ended finish filing (bounded); free what is left."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._filing:
            await asyncio.wait(set(self._filing), timeout=filing_timeout)
        for task in list(self._filing):
            task.cancel()
        await asyncio.gather(*self._filing, return_exceptions=True)
        for session in [*self._by_call.values(), *self._recording.values()]:
            self._give_up(session, "shutdown")


async def store_recording(base: Path, result: CaptureResult, at: datetime) -> Path | None:
    """Keep the caller's description as a WAV file (in an executor: file I/O)."""
    if not result.pcm:
        return None
    path = recording_path(base, result.call_id, at)
    return await asyncio.get_running_loop().run_in_executor(None, write_wav, path, result.pcm)
