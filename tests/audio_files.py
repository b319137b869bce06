"""Audio the tests make: tones, and WAV files as Asterisk's MixMonitor leaves them."""
from __future__ import annotations

import math
import struct
from pathlib import Path


def tone_pcm(seconds: float, hz: float = 400.0, amplitude: int = 6000) -> bytes:
    """8 kHz 16-bit mono PCM of a sine tone."""
    return b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * hz * i / 8000)))
                    for i in range(int(8000 * seconds)))


def mixmonitor_wav(path: Path, pcm: bytes, *, header_final: bool = True) -> Path:
    """An 8 kHz 16-bit mono WAV; with ``header_final`` False its RIFF and data sizes are still 0, as MixMonitor's
    are until it closes the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    riff, data = (36 + len(pcm), len(pcm)) if header_final else (0, 0)
    path.write_bytes(b"RIFF" + riff.to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
                     + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16) + b"data" + data.to_bytes(4, "little") + pcm)
    return path
