"""Where the caller's recorded description is kept, and writing it (blocking: call it in an executor)."""
from __future__ import annotations

import os
import re
import wave
from datetime import datetime
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def recording_path(base: Path, call_id: str, at: datetime) -> Path:
    """``base/YYYY/MM/DD/<call id>.wav``; the call id is made filename-safe."""
    return base / f"{at:%Y}" / f"{at:%m}" / f"{at:%d}" / f"{_SAFE.sub('_', call_id) or 'call'}.wav"


def write_wav(path: Path, pcm: bytes, *, sample_rate: int = 8000) -> Path:
    """Write 16-bit mono PCM as WAV, readable only by the service (recordings are personal data, art. 20)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm[: len(pcm) - len(pcm) % 2])
    tmp.replace(path)
    return path
