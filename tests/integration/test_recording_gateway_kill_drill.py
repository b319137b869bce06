"""Fault drill on the real stack: the gateway gets SIGKILL while two answered calls are being recorded, both callers
hang up while it is down (their hang-up events are lost), and the restarted gateway still files both recordings
(art. 20: the record of a call does not depend on the gateway being up when it ends).

Asterisk keeps recording without the gateway (MixMonitor is the dialplan's); the restarted gateway's sweep asks
Asterisk which channels still exist (AMI Status) and files every spool file whose call is over. Prints the calls,
what was filed, and the time from the restart to the last row.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from gateway.sandbox.processes import is_alive, wait_until
from gateway.sandbox.sipp_scenario import CallerScript
from gateway.sandbox.testcall import find_call, run_sipp_caller
from gateway.sandbox.voice_pcap import write_voice_pcap
from gateway.store.database import Store
from tests.audio_files import mixmonitor_wav, tone_pcm

pytestmark = pytest.mark.integration
NUMBERS = ("13800138181", "13800138182")


@pytest.fixture
def talking_agents(sandbox, tmp_path):
    wav = mixmonitor_wav(tmp_path / "agent.wav", tone_pcm(4.0, hz=1250, amplitude=8000))
    pcap = write_voice_pcap(wav, tmp_path / "agent.pcap", start_ms=0)
    sandbox.stack.start_simulated_agents(log=lambda *_: None, answer_after_ms=0, say_pcap=pcap)
    yield sandbox
    for proc in sandbox.stack.agents:
        proc.stop(timeout=3)


def test_recordings_of_calls_that_end_while_the_gateway_is_dead_are_filed_after_its_restart(sandbox, talking_agents,
                                                                                            tmp_path):
    cfg = sandbox.config
    caller_wav = mixmonitor_wav(tmp_path / "caller.wav", tone_pcm(3.0, hz=440, amplitude=8000))
    since = datetime.now(timezone.utc) - timedelta(seconds=1)

    async def two_calls():
        scripts = [CallerScript(from_number=n, dtmf="0", hold_ms=14_000, speak_after_ms=2000) for n in NUMBERS]
        return await asyncio.gather(*(run_sipp_caller(cfg, s, say=caller_wav, media_port=32000 + 10 * i)
                                      for i, s in enumerate(scripts)))

    async def answered() -> list[dict]:
        async with await Store.open(cfg.store.location) as store:
            calls = [await find_call(store, n, since) for n in NUMBERS]
        return [c for c in calls if c and c.get("agent")]

    async def drill():
        calls = asyncio.ensure_future(two_calls())
        deadline = time.monotonic() + 20
        while len(await answered()) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        up = await answered()
        assert len(up) == 2, up
        pid = sandbox.stack.gateway.pid()
        os.killpg(pid, signal.SIGKILL)
        assert wait_until(lambda: not is_alive(pid), 5)
        killed = time.monotonic()
        results = await calls                      # both callers hang up while the gateway is dead
        return up, results, killed

    up, results, killed = asyncio.run(drill())
    assert all(r.returncode == 0 for r in results), [r.errors for r in results]
    ended = time.monotonic()
    assert ended - killed > 1 and not sandbox.stack.gateway.pid()
    spool = cfg.speech.local_recording_dir / "calls"
    waiting = sorted(p.stem for p in spool.glob("*.wav"))
    ids = sorted(c["call_id"] for c in up)
    assert set(ids) <= set(waiting), (ids, waiting)          # recorded by Asterisk, not yet filed

    restart = time.monotonic()
    sandbox.hotline("stack", "up")
    deadline, rows = time.monotonic() + 40, []
    while time.monotonic() < deadline:
        rows = [r for r in (sandbox.store_query(lambda s, c=c: s.call_recording(c)) for c in ids) if r]
        if len(rows) == len(ids):
            break
        time.sleep(0.5)
    filed_after = time.monotonic() - restart
    filed = ", ".join(f"{r['duration_s']} s {r['state']}" for r in rows)
    print(f"\nrecording kill drill: {len(ids)} answered calls, gateway killed while both were bridged, both callers "
          f"hung up {ended - killed:.1f} s later with the gateway down; {len(waiting)} files waiting in the spool; "
          f"after the restart {len(rows)} filed ({filed}), "
          f"the last {filed_after:.1f} s after `stack up` began")
    assert len(rows) == len(ids), sandbox.gateway_log()[-3000:]
    assert all(r["state"] == "converted" and r["duration_s"] > 1 and r["agent"] in {"agent1", "agent2"}
               for r in rows), rows
    assert not any((spool / f"{c}.wav").exists() for c in ids)
