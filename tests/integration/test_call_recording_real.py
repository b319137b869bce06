"""Recording of an answered call on the real stack (art. 20): the sipp caller and the sipp agent each play a tone of
their own pitch; Asterisk's MixMonitor records the conversation, the gateway converts it (ogg/Opus through ffmpeg)
and files it with the call and its ticket. The file holds both parties; the console serves it with HTTP Range to
the agent who answered and 403 to the other, and audits both; `hotline recordings purge --as-of` a day past the
retention deletes it and marks its row."""
from __future__ import annotations

import asyncio
import json
import os
import math
import struct
import time
import wave
from datetime import timedelta

import aiohttp
import numpy as np
import pytest
from pydub import AudioSegment

from gateway.mqtt.passwords import mqtt_password
from gateway.sandbox.testcall import place_call
from gateway.sandbox.voice_pcap import write_voice_pcap

pytestmark = pytest.mark.integration
NUMBER = "13800138160"
CALLER_HZ, AGENT_HZ = 440, 1250


def tone_wav(path, hz: int, seconds: float = 3.0):
    frames = b"".join(struct.pack("<h", int(9000 * math.sin(2 * math.pi * hz * i / 8000)))
                      for i in range(int(8000 * seconds)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)
    return path


def band_energy(samples: np.ndarray, hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    freqs = np.fft.rfftfreq(len(samples), 1 / 8000)
    band = (freqs > hz - 30) & (freqs < hz + 30)
    return float(spectrum[band].sum() / max(1e-9, np.median(spectrum) * band.sum()))


@pytest.fixture
def talking_agents(sandbox, tmp_path):
    pcap = write_voice_pcap(tone_wav(tmp_path / "agent.wav", AGENT_HZ), tmp_path / "agent.pcap", start_ms=0)
    sandbox.stack.start_simulated_agents(log=lambda *_: None, answer_after_ms=0, say_pcap=pcap)
    yield sandbox
    for proc in sandbox.stack.agents:
        proc.stop(timeout=3)


async def console_get(cfg, agent: str, path: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    base = f"http://{cfg.console.host}:{cfg.console.port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        login = await http.post(f"{base}/api/login",
                                json={"agent": agent, "password": mqtt_password(cfg.state_dir, agent)})
        assert login.status == 200, await login.text()
        async with http.get(base + path, headers=headers or {}) as response:
            return response.status, await response.read(), dict(response.headers)


def test_a_call_is_recorded_with_both_parties_converted_served_to_its_agent_and_purged(sandbox, talking_agents,
                                                                                        tmp_path):
    cfg = sandbox.config
    caller_wav = tone_wav(tmp_path / "caller.wav", CALLER_HZ)
    # 0: straight to an agent; the caller speaks 4 s after the key (the agent answers at once and speaks at once),
    # then stays 6 s and hangs up
    result = asyncio.run(place_call(cfg, NUMBER, "0", hold_s=6, full=True, say=caller_wav, speak_after_ms=4000))
    assert result["answered_by"] in {"agent1", "agent2"}, result
    call_id = result["call_id"]
    deadline, row = time.monotonic() + 20, None
    while time.monotonic() < deadline and row is None:
        row = sandbox.store_query(lambda s: s.call_recording(call_id))
        time.sleep(0.3)
    assert row is not None, sandbox.gateway_log()[-3000:]
    assert (row["state"], row["format"], row["ticket_id"], row["agent"]) == (
        "converted", "ogg", result["ticket"]["id"], result["answered_by"])
    assert row["path"].endswith(f"{call_id}-call.ogg") and row["size"] > 0 and row["duration_s"] > 2
    assert not (cfg.speech.local_recording_dir / "calls" / f"{call_id}.wav").exists()   # taken from the spool

    audio = AudioSegment.from_file(row["path"], format="ogg").set_channels(1).set_frame_rate(8000).set_sample_width(2)
    samples = np.frombuffer(audio.raw_data, dtype=np.int16)
    assert audio.max > 1000
    caller, agent = band_energy(samples, CALLER_HZ), band_energy(samples, AGENT_HZ)
    print(f"recording {row['duration_s']} s, {row['size']} bytes; caller tone x{caller:.0f}, agent tone x{agent:.0f}"
          " over the median")
    assert caller > 20 and agent > 20, (caller, agent)

    listed = json.loads(sandbox.hotline("recordings", "list", "--call", call_id, "--json").stdout)
    assert [r["state"] for r in listed] == ["converted"]

    # the console: its agent hears a Range of it, the other agent gets 403; both are audited
    other = "agent2" if result["answered_by"] == "agent1" else "agent1"
    url = f"/api/recordings/{row['public_id']}"
    status, body, headers = asyncio.run(console_get(cfg, result["answered_by"], url, {"Range": "bytes=0-999"}))
    data = open(row["path"], "rb").read()
    assert status == 206 and body == data[:1000] and headers["Content-Type"] == "audio/ogg"
    assert asyncio.run(console_get(cfg, other, url))[0] == 403
    audit = sandbox.store_query(lambda s: s.recording_access_audit(call_id))
    assert [(a["viewer"], a["allowed"]) for a in audit] == [(result["answered_by"], True), (other, False)]

    # retention: kept through its last day, purged the day after, and the row says so
    kept_until = row["recorded_at"].date() + timedelta(days=cfg.recordings.retention_days)
    sandbox.hotline("recordings", "purge", "--as-of", kept_until.isoformat())
    assert open(row["path"], "rb").read() == data
    purged = sandbox.hotline("recordings", "purge", "--as-of", (kept_until + timedelta(days=1)).isoformat())
    assert "deleted" in purged.stdout
    after = sandbox.store_query(lambda s: s.call_recording(call_id))
    assert after["state"] == "purged" and after["purged_at"] is not None
    assert not os.path.exists(row["path"])
    assert asyncio.run(console_get(cfg, result["answered_by"], url))[0] == 404
