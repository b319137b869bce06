"""Shutdown lets background work finish, within a bound, before the store closes; what cannot finish is
cancelled and said so."""
import asyncio
import logging
import wave
from types import SimpleNamespace

from gateway.service import GatewayService, SpeechParts, finish_background

CALL_ID = "1764222222.12"


async def test_background_work_that_ends_within_the_grace_is_awaited_to_its_end():
    done = []

    async def work(delay):
        await asyncio.sleep(delay)
        done.append(delay)

    tasks = {asyncio.create_task(work(d)) for d in (0.05, 0.1, 0.2)}
    assert await finish_background(tasks, grace_s=5) == 0
    assert sorted(done) == [0.05, 0.1, 0.2]


async def test_background_work_past_the_grace_is_cancelled_awaited_and_logged(caplog):
    cleaned = []

    async def stuck():
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append("cleaned up")

    caplog.set_level(logging.WARNING, logger="gateway.service")
    task = asyncio.create_task(stuck(), name="recorded-capture-x")
    started = asyncio.get_running_loop().time()
    assert await finish_background({task}, grace_s=0.1) == 1
    assert asyncio.get_running_loop().time() - started < 2
    assert task.cancelled() and cleaned == ["cleaned up"]
    assert any("event=background_work_cancelled task=recorded-capture-x" in r.getMessage() for r in caplog.records)


class SlowRecogniser:
    """Takes ``per_feed_s`` for each 0.1 s of audio, like a busy vosk."""

    def __init__(self, per_feed_s: float) -> None:
        self.per_feed_s = per_feed_s

    def stream(self, *, call_id):
        delay = self.per_feed_s

        class Stream:
            async def feed(self, pcm):
                await asyncio.sleep(delay)

            async def drain(self):
                pass

            async def finish(self):
                return "路灯坏了"
        return Stream()

    async def transcribe(self, pcm, *, call_id, wait_s, piece_bytes=3200):
        stream = self.stream(call_id=call_id)
        for i in range(0, len(pcm), piece_bytes):
            await stream.feed(pcm[i:i + piece_bytes])
        return await stream.finish()


class NoLiveCapture:
    async def finish_for_call(self, call_id):
        return None

    async def take_recording(self, call_id):
        return False


def a_service(tmp_path, recogniser, filed: list, pops: list) -> tuple[GatewayService, set]:
    with wave.open(str(tmp_path / f"{CALL_ID}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 8000 * 2)           # 2 s of the caller's description

    async def prefill(result):
        filed.append(result.transcript)

    async def handle(event):
        pops.append(event["Event"])

    config = SimpleNamespace(speech=SimpleNamespace(local_recording_dir=tmp_path, max_seconds=30))
    background: set[asyncio.Task] = set()
    service = GatewayService(config, status_file=tmp_path / "status.json", store=None, ami=None, publisher=None,
                             screenpopper=SimpleNamespace(handle=handle), fastagi=None,
                             speech=SpeechParts(NoLiveCapture(), prefill, recogniser, None), background=background)
    return service, background


AGENT_CONNECT = {"Event": "AgentConnect", "HoldTime": "2", "ChanVariable": f"HOTLINE_CALL_ID={CALL_ID}"}


async def test_a_recorded_capture_still_being_recognised_at_shutdown_is_filed_and_popped_before_the_store_closes(
        tmp_path):
    filed, pops = [], []
    service, background = a_service(tmp_path, SlowRecogniser(0.01), filed, pops)
    await service._on_agent_connect(AGENT_CONNECT)
    assert pops == ["AgentConnect"] and len(background) == 1     # the first pop went at once
    assert await finish_background(background, grace_s=5) == 0
    assert filed == ["路灯坏了"] and pops == ["AgentConnect", "AgentConnect"]


async def test_a_recognition_longer_than_the_grace_is_cancelled_and_logged_for_its_call(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    filed, pops = [], []
    service, background = a_service(tmp_path, SlowRecogniser(1.0), filed, pops)
    await service._on_agent_connect(AGENT_CONNECT)
    assert await finish_background(background, grace_s=0.2) == 1
    assert filed == [] and pops == ["AgentConnect"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"call={CALL_ID} event=recorded_capture_cancelled reason=shutdown" in m for m in messages)


async def test_no_recognition_is_started_once_the_gateway_is_stopping(tmp_path):
    filed, pops = [], []
    service, background = a_service(tmp_path, SlowRecogniser(0.01), filed, pops)
    service._stopping.set()
    await service._on_agent_connect(AGENT_CONNECT)
    assert pops == ["AgentConnect"] and not background
