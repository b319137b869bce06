"""Converting a call's recording (recordings.call_files) to each configured format: seconds of CPU per minute of
call, the real-time factor, and bytes per second of audio kept, for calls of 1, 5 and 15 minutes of 8 kHz speech-like
audio (a tone sweep with noise). Also: two conversions at once, as the filer allows (recordings/filer.py).

    .venv/bin/python bench/recording_convert.py [--formats ogg:libopus:16k,mp3::32k,wav::]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import math
import random
import resource
import struct
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recordings.call_files import file_call_recording  # noqa: E402

AT = datetime(2026, 12, 1, 10)


def speechlike(seconds: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    out = bytearray()
    for i in range(8000 * seconds):
        hz = 300 + 200 * math.sin(i / 4000)
        out += struct.pack("<h", int(5000 * math.sin(2 * math.pi * hz * i / 8000) + rng.gauss(0, 600)))
    return bytes(out)


def mixmonitor_file(path: Path, pcm: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
                     + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16) + b"data" + len(pcm).to_bytes(4, "little") + pcm)
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def convert(tmp: Path, name: str, pcm: bytes, fmt: str, codec: str, bitrate: str):
    source = mixmonitor_file(tmp / "spool" / f"{name}.wav", pcm)
    return file_call_recording(source, tmp / "rec", name, AT, fmt=fmt, codec=codec, bitrate=bitrate)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--formats", default="ogg:libopus:16k,mp3::32k,wav::")
    args = parser.parse_args()
    audio = {minutes: speechlike(60 * minutes) for minutes in (1, 5, 15)}
    print(f"{'format':<16} {'call':>6} {'wall s':>7} {'cpu s':>7} {'RTF':>7} {'bytes/s':>8} state")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for spec in args.formats.split(","):
            fmt, codec, bitrate = (spec.split(":") + ["", ""])[:3]
            for minutes, pcm in audio.items():
                cpu0, wall0 = children_cpu() + time.process_time(), time.perf_counter()
                filed = convert(tmp, f"c{minutes}-{fmt}", pcm, fmt, codec, bitrate)
                wall, cpu = time.perf_counter() - wall0, children_cpu() + time.process_time() - cpu0
                print(f"{spec:<16} {minutes:>4}mn {wall:>7.2f} {cpu:>7.2f} {wall / (60 * minutes):>7.4f} "
                      f"{filed.size / (60 * minutes):>8.0f} {filed.state}")
        fmt, codec, bitrate = (args.formats.split(",")[0].split(":") + ["", ""])[:3]
        wall0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda n: convert(tmp, f"par{n}", audio[5], fmt, codec, bitrate), range(4)))
        print(f"four 5-minute calls, two at a time ({fmt}): {time.perf_counter() - wall0:.2f} s wall")


if __name__ == "__main__":
    main()
