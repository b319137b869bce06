"""SpeechCapture against a synthetic AudioSocket client and a fake AMI (the real path is an integration test)."""
import asyncio
import struct
import time
import uuid

import pytest

from ivr.speech.audiosocket import KIND_AUDIO, KIND_DTMF, KIND_UUID, AudioSocketServer, encode_frame
from ivr.speech.capture import SpeechCapture
from ivr.speech.vad import VADSettings

SPEECH = struct.pack("<160h", *([8000, -8000] * 80))
QUIET = b"\x00\x00" * 160
CALL = "1795764832.7"
JOIN = {"Event": "QueueCallerJoin", "Channel": "PJSIP/hotline-trunk-00000007",
        "ChanVariable": [f"HOTLINE_CALL_ID={CALL}", "HOTLINE_REQUEST_TYPE=complaint"]}


class FakeAMI:
    def __init__(self, fail=False):
        self.actions = []
        self.handlers = {}
        self.fail = fail

    def on_event(self, name, cb):
        self.handlers.setdefault(name, []).append(cb)

    async def action(self, action):
        self.actions.append(dict(action))
        if self.fail:
            raise ConnectionError("AMI down")
        return {"Response": "Success"}


class FakeRecogniser:
    def __init__(self):
        self.fed = bytearray()

    def stream(self, *, call_id):
        rec = self

        class Stream:
            async def feed(self, pcm):
                rec.fed += pcm

            async def finish(self):
                return f"heard {len(rec.fed)} bytes"

            def close(self):
                pass
        return Stream()


@pytest.fixture
async def rig():
    results = []

    async def sink(result):
        results.append(result)

    ami = FakeAMI()
    holder = {}
    capture = SpeechCapture(ami, audiosocket_host="127.0.0.1", audiosocket_port=lambda: holder["server"].port,
                            recogniser=FakeRecogniser(), on_result=sink, prompt_pcm=b"\x01\x00" * 800,
                            vad=VADSettings(end_silence_ms=200, no_speech_ms=1500, max_ms=5000))
    capture.attach(ami)
    server = AudioSocketServer(capture.handle_connection, port=0)
    holder["server"] = server
    await server.start()
    yield capture, ami, server, results
    await server.close()


async def connect_spy(ami, server):
    """Play Asterisk: read the originated channel's UUID and connect as that AudioSocket channel."""
    channel = ami.actions[-1]["Channel"]
    call_uuid = uuid.UUID(channel.rsplit("/", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(KIND_UUID, call_uuid.bytes))
    await writer.drain()
    return reader, writer


async def test_queue_join_originates_a_whispering_spy_on_the_exact_caller_channel(rig):
    capture, ami, server, _ = rig
    await capture.on_queue_join(JOIN)
    await asyncio.sleep(0.05)
    [action] = ami.actions
    assert action["Action"] == "Originate" and action["Async"] == "true"
    assert action["Channel"].startswith(f"AudioSocket/127.0.0.1:{server.port}/")
    assert action["Application"] == "ChanSpy"
    assert action["Data"] == "PJSIP/hotline-trunk-00000007,qEuow"


async def test_speech_then_silence_files_the_audio_and_transcript(rig):
    capture, ami, server, results = rig
    await capture.on_queue_join(JOIN)
    await asyncio.sleep(0.05)
    reader, writer = await connect_spy(ami, server)
    writer.write(b"".join(encode_frame(KIND_AUDIO, SPEECH) for _ in range(20))
                 + b"".join(encode_frame(KIND_AUDIO, QUIET) for _ in range(15)))
    await writer.drain()
    for _ in range(150):
        if results:
            break
        await asyncio.sleep(0.02)
    [result] = results
    assert result.call_id == CALL and result.ended_by == "silence"
    assert result.pcm.startswith(SPEECH * 20)
    assert result.transcript.startswith("heard ")
    # the invitation prompt was whispered back on the socket as 20 ms audio frames
    data = await asyncio.wait_for(reader.read(), 3)
    assert data.startswith(encode_frame(KIND_AUDIO, b"\x01\x00" * 160))
    writer.close()
    assert await capture.finish_for_call(CALL) is None  # finished sessions are forgotten


async def test_an_agent_answering_ends_the_capture_at_once(rig):
    capture, ami, server, results = rig
    await capture.on_queue_join(JOIN)
    await asyncio.sleep(0.05)
    _, writer = await connect_spy(ami, server)
    writer.write(b"".join(encode_frame(KIND_AUDIO, SPEECH) for _ in range(10)))
    await writer.drain()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    session = await capture.finish_for_call(CALL, timeout=2)
    assert time.monotonic() - started < 0.5
    assert session.ended_by == "agent_answered" and session.done.is_set()
    assert results and results[0].pcm == SPEECH * 10
    writer.close()


async def test_pound_from_ami_dtmf_or_the_socket_ends_the_description(rig):
    capture, ami, server, results = rig
    await capture.on_queue_join(JOIN)
    await asyncio.sleep(0.05)
    _, writer = await connect_spy(ami, server)
    writer.write(encode_frame(KIND_AUDIO, SPEECH) * 5 + encode_frame(KIND_DTMF, b"#"))
    await writer.drain()
    for _ in range(100):
        if results:
            break
        await asyncio.sleep(0.02)
    assert results[0].ended_by == "pound"
    writer.close()

    results.clear()
    await capture.on_queue_join({**JOIN, "ChanVariable": ["HOTLINE_CALL_ID=other"]})
    await asyncio.sleep(0.05)
    _, writer = await connect_spy(ami, server)
    await asyncio.sleep(0.05)
    await capture.on_dtmf({"Event": "DTMFEnd", "Digit": "#", "Direction": "Received",
                           "ChanVariable": ["HOTLINE_CALL_ID=other"]})
    for _ in range(100):
        if results:
            break
        await asyncio.sleep(0.02)
    assert results[0].ended_by == "pound"
    writer.close()


async def test_a_caller_sending_no_media_ends_as_no_speech_by_the_clock(rig):
    capture, ami, server, results = rig
    await capture.on_queue_join(JOIN)
    await asyncio.sleep(0.05)
    _, writer = await connect_spy(ami, server)
    started = time.monotonic()
    for _ in range(150):
        if results:
            break
        await asyncio.sleep(0.02)
    assert results and results[0].ended_by == "no_speech" and results[0].pcm == b""
    assert time.monotonic() - started < 2.5
    writer.close()


async def test_calls_without_a_call_id_are_not_spied_on(rig):
    capture, ami, _, _ = rig
    await capture.on_queue_join({"Event": "QueueCallerJoin", "Channel": "PJSIP/x-1"})
    await asyncio.sleep(0.02)
    assert ami.actions == []


async def test_originate_failure_loses_the_transcript_not_the_call():
    ami = FakeAMI(fail=True)

    async def sink(_):
        raise AssertionError("nothing to file")

    capture = SpeechCapture(ami, audiosocket_host="127.0.0.1", audiosocket_port=lambda: 9, recogniser=None,
                            on_result=sink)
    assert capture.mode() == "audiosocket"
    await capture.on_queue_join(JOIN)
    await asyncio.sleep(0.05)
    assert await capture.finish_for_call(CALL, timeout=0.1) is None
    # the next calls are recorded instead, and the spy is not tried for them
    assert capture.mode() == "record"


async def test_a_spy_that_never_connects_switches_new_calls_to_recording(rig, monkeypatch):
    capture, ami, server, results = rig
    monkeypatch.setattr("ivr.speech.capture.SPY_CONNECT_TIMEOUT_S", 0.2)
    await capture.on_queue_join(JOIN)
    await asyncio.sleep(0.4)
    assert capture.mode() == "record"
    assert await capture.finish_for_call(CALL, timeout=0.1) is None
    recorded = {**JOIN, "ChanVariable": ["HOTLINE_CALL_ID=second", "HOTLINE_CAPTURE=record"]}
    await capture.on_queue_join(recorded)
    await asyncio.sleep(0.05)
    assert len(ami.actions) == 1, "a call Asterisk records gets no spy"


async def test_a_caller_joining_while_every_stream_is_busy_is_recorded_and_the_answer_waits_for_nothing(rig):
    capture, ami, server, results = rig
    capture.recogniser = BusyThenFree()
    await capture.on_queue_join(JOIN)
    await capture.on_queue_join(JOIN)   # the same caller joining again gets no second spy
    await asyncio.sleep(0.05)
    assert len(ami.actions) == 1
    _, writer = await connect_spy(ami, server)
    writer.write(encode_frame(KIND_AUDIO, SPEECH) * 10)
    await writer.drain()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert await capture.finish_for_call(CALL, timeout=2) is None
    assert time.monotonic() - started < 0.05
    assert await capture.take_recording(CALL) is True
    [result] = results
    assert result.pcm == SPEECH * 10 and result.transcript == f"recorded {len(SPEECH) * 10} bytes"
    assert capture.open_sessions == 0 and await capture.take_recording(CALL) is False
    writer.close()


class BusyThenFree:
    """Every live stream refused; a recording is transcribed once it asks."""

    def stream(self, *, call_id):
        from ivr.speech.recogniser import SpeechCapacityError
        raise SpeechCapacityError("all busy")

    async def transcribe(self, pcm, *, call_id, wait_s):
        return f"recorded {len(pcm)} bytes"
