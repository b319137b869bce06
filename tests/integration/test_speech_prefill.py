"""Speech pre-fill on the real stack: the caller speaks while queued; the answering agent gets the filled ticket."""
from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import unicodedata
from pathlib import Path

import aiomqtt
import pytest

from gateway.contract import screenpop_topic
from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.testcall import place_call

pytestmark = pytest.mark.integration
KOREAN = "안녕하세요 저는 집 앞 도로에 문제가 있어서 전화했습니다 빨리 고쳐 주세요"


@pytest.fixture(scope="module")
def korean_wav(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("speech")
    raw, wav = out / "raw.wav", out / "ko8k.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), KOREAN], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
    return wav


class Subscriber:
    """An agent's screen-pop subscription, in a thread with its own loop, for the length of one call."""

    def __init__(self, sandbox, agent: str) -> None:
        self.cfg = sandbox.config
        self.agent = agent
        self.messages: list[dict] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        try:
            async with aiomqtt.Client(self.cfg.mqtt.host, self.cfg.mqtt.port, username=self.agent,
                                      password=mqtt_password(self.cfg.state_dir, self.agent),
                                      identifier=f"test-{self.agent}") as client:
                await client.subscribe(screenpop_topic(self.agent), qos=1)
                await client.subscribe("hotline/#", qos=1)  # the ACL must keep everything else out
                self.ready.set()
                messages = client.messages
                while not self.stop.is_set():
                    try:
                        msg = await asyncio.wait_for(anext(messages), 0.2)
                    except TimeoutError:
                        continue
                    self.messages.append({"topic": str(msg.topic), **json.loads(msg.payload)})
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.ready.set()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10) and self.error is None, self.error
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)


def test_caller_speaks_while_queued_and_the_agent_gets_the_filled_ticket(sandbox, slow_agents, korean_wav):
    with Subscriber(sandbox, "agent1") as agent1, Subscriber(sandbox, "agent2") as agent2:
        result = asyncio.run(place_call(sandbox.config, "13800138010", "3", hold_s=24, full=True,
                                        say=korean_wav, speak_after_ms=6000))
        # the pop is published on AgentConnect; give it a moment to cross the broker
        for _ in range(50):
            if agent1.messages or agent2.messages:
                break
            threading.Event().wait(0.1)

    assert result["answered_by"] in {"agent1", "agent2"}, result
    ticket = result["ticket"]
    assert ticket["type"] == "complaint"
    transcript = ticket["transcript"] or ""
    assert any(unicodedata.name(ch, "").startswith("HANGUL") for ch in transcript), transcript

    answering, other = (agent1, agent2) if result["answered_by"] == "agent1" else (agent2, agent1)
    assert other.messages == [], "an agent must never receive another agent's screen-pop"
    pops = [m for m in answering.messages if m["topic"] == screenpop_topic(answering.agent)]
    assert pops, answering.messages
    pop = pops[-1]
    assert pop["call_id"] == result["call_id"]
    assert pop["ticket"]["id"] == ticket["id"] and pop["ticket"]["type"] == "complaint"
    assert pop["caller_number"] == "+8613800138010"
    assert pop["ivr_path"] == ["welcome", "3"]
    assert pop["transcript"] == transcript

    recordings = list(sandbox.config.speech.recordings_dir.rglob(f"{result['call_id']}.wav"))
    assert len(recordings) == 1 and recordings[0].stat().st_mode & 0o777 == 0o640


@pytest.fixture
def recording_fallback(sandbox):
    """The gateway restarted with speech.capture = "record": Asterisk records, the gateway recognises the file."""
    original = sandbox.config_path.read_text()
    sandbox.config_path.write_text(original.replace("[speech]\n", '[speech]\ncapture = "record"\n'))
    sandbox.stack.gateway.stop(timeout=10)
    sandbox.hotline("stack", "up")
    yield sandbox
    sandbox.config_path.write_text(original)
    sandbox.stack.gateway.stop(timeout=10)
    sandbox.hotline("stack", "up")


def test_without_audiosocket_the_recorded_file_fills_the_ticket(sandbox, recording_fallback, slow_agents, korean_wav):
    result = asyncio.run(place_call(sandbox.config, "13800138012", "3", hold_s=24, full=True, say=korean_wav,
                                    speak_after_ms=6000))

    assert result["answered_by"] in {"agent1", "agent2"}, result
    transcript = result["ticket"]["transcript"] or ""
    assert any(unicodedata.name(ch, "").startswith("HANGUL") for ch in transcript), result["ticket"]
    log = sandbox.gateway_log()
    assert f"call={result['call_id']} event=recording_transcribed" in log
    assert f"call={result['call_id']} event=capture_originated" not in log, "no spy when Asterisk records"
    # Asterisk's own files are gone (they ran on through the agent conversation); our copy of the description stays
    local = sandbox.config.speech.local_recording_dir
    assert not list(local.glob(f"{result['call_id']}*.wav"))
    assert list(sandbox.config.speech.recordings_dir.rglob(f"{result['call_id']}.wav"))


@pytest.fixture
def one_recogniser_stream(sandbox):
    """The gateway restarted with a single recogniser stream: a second queued caller finds the pool busy."""
    original = sandbox.config_path.read_text()
    sandbox.config_path.write_text(original.replace("[speech]\n", "[speech]\nstreams = 1\n"))
    sandbox.stack.gateway.stop(timeout=10)
    sandbox.hotline("stack", "up")
    yield sandbox
    sandbox.config_path.write_text(original)
    sandbox.stack.gateway.stop(timeout=10)
    sandbox.hotline("stack", "up")


def test_a_caller_queued_while_every_recogniser_stream_is_busy_is_recorded_and_still_transcribed(
        sandbox, one_recogniser_stream, slow_agents, korean_wav):
    async def two_callers():
        first = asyncio.create_task(place_call(sandbox.config, "13800138014", "3", hold_s=26, full=True,
                                               say=korean_wav, speak_after_ms=6000))
        await asyncio.sleep(1.0)   # the second joins the queue while the first's capture holds the only stream
        second = await place_call(sandbox.config, "13800138015", "3", hold_s=26, full=True, say=korean_wav,
                                  speak_after_ms=6000)
        return await first, second

    live, recorded = asyncio.run(two_callers())

    log = sandbox.gateway_log()
    figures = (f"live call {live['call_id']}: answered by {live['answered_by']}, transcript "
               f"{live['ticket']['transcript']!r}; busy-pool call {recorded['call_id']}: answered by "
               f"{recorded['answered_by']}, transcript {recorded['ticket']['transcript']!r}")
    print("\n" + figures)
    assert live["answered_by"] and recorded["answered_by"], figures
    assert f"call={live['call_id']} event=capture_originated" in log, figures
    assert f"call={recorded['call_id']} event=capture_recording reason=recogniser_busy" in log, figures
    assert f"call={recorded['call_id']} event=capture_finish_slow" not in log, "its agent waited for nothing"
    for call in (live, recorded):
        transcript = call["ticket"]["transcript"] or ""
        assert any(unicodedata.name(ch, "").startswith("HANGUL") for ch in transcript), figures
    assert list(sandbox.config.speech.recordings_dir.rglob(f"{recorded['call_id']}.wav"))
    # nothing stays registered or open once both callers are gone
    status = {}
    for _ in range(50):
        status = sandbox.stack.gateway_status()
        if status.get("capture_sessions") == 0 and status.get("speech_streams") == 0:
            break
        threading.Event().wait(0.1)
    assert (status.get("capture_sessions"), status.get("speech_streams")) == (0, 0), status
