"""Filing the recording of an answered call (blocking: call these in an executor).

Asterisk's MixMonitor writes the whole conversation, both parties mixed, as 8 kHz 16-bit WAV into its spool
(``<spool>/calls/<uniqueid>.wav``). Once the call is over the gateway reads it, converts it to the configured
compact format (pydub, which runs ffmpeg) and keeps it beside the caller's description under
``recordings_dir/YYYY/MM/DD/<call id>-call.<ext>``. A file that cannot be converted is kept as the original WAV,
and the result says why; a file with no audio at all is not a recording (deleted, reported as empty).

MixMonitor writes the WAV header's sizes only when it closes the file; the PCM after the ``data`` chunk header is
read directly, so a header not (yet) rewritten costs nothing.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["FORMATS", "CALLS_SUBDIR", "FiledRecording", "asterisk_calls_dir", "file_call_recording", "read_wav_pcm",
           "spool_path"]

# format -> file extension; ffmpeg's muxer names
FORMATS = {"ogg": "ogg", "mp3": "mp3", "wav": "wav"}
CALLS_SUBDIR = "calls"
SAMPLE_RATE = 8000
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_MIN_AUDIO_S = 0.2      # less than this is not a conversation (a call torn down as it was bridged)


@dataclass(frozen=True)
class FiledRecording:
    path: Path | None          # None: nothing kept (empty or unreadable)
    format: str
    duration_s: float
    size: int
    sha256: str
    state: str                 # "converted", "original" (conversion failed: the WAV is kept), or "empty"
    note: str | None = None
    peak: int = 0              # the loudest sample: 0 means digital silence


def asterisk_calls_dir(asterisk_spool: str) -> str:
    """Where MixMonitor writes the calls' recordings, as Asterisk sees it (``speech.asterisk_recording_dir``)."""
    return f"{asterisk_spool.rstrip('/')}/{CALLS_SUBDIR}"


def spool_path(spool: Path, call_id: str) -> Path:
    """Where MixMonitor writes a call's recording, as the gateway sees Asterisk's spool."""
    return spool / CALLS_SUBDIR / f"{_SAFE.sub('_', call_id)}.wav"


def read_wav_pcm(path: Path) -> bytes:
    """The PCM of a 16-bit WAV, whatever its header's sizes say (ValueError: not a WAV)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        if chunk == b"data":
            pcm = data[at + 8:]
            return pcm[: len(pcm) - len(pcm) % 2]
        at += 8 + size + (size & 1)
    raise ValueError("a WAV file without a data chunk")


def file_call_recording(source: Path, target_dir: Path, call_id: str, at: datetime, *, fmt: str, codec: str = "",
                        bitrate: str = "") -> FiledRecording:
    """Convert ``source`` into ``target_dir/YYYY/MM/DD/<call id>-call.<ext>`` and remove it. The result says what
    was kept; the source is removed only once something was kept (or it held no audio)."""
    try:
        pcm = read_wav_pcm(source)
    except (OSError, ValueError) as exc:
        return FiledRecording(None, fmt, 0.0, 0, "", "empty", note=f"unreadable: {exc}")
    duration = len(pcm) / (2 * SAMPLE_RATE)
    if duration < _MIN_AUDIO_S:
        source.unlink(missing_ok=True)
        return FiledRecording(None, fmt, duration, 0, "", "empty", note="no audio")
    day_dir = target_dir / f"{at:%Y}" / f"{at:%m}" / f"{at:%d}"
    day_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    stem = f"{_SAFE.sub('_', call_id) or 'call'}-call"
    peak = _peak(pcm)
    note, state = None, "converted"
    try:
        target = _convert(pcm, day_dir / f"{stem}.{FORMATS[fmt]}", fmt=fmt, codec=codec, bitrate=bitrate)
    except Exception as exc:  # noqa: BLE001 - ffmpeg missing, an unknown encoder, a full disk: keep the original
        note, state, fmt = f"conversion to {fmt} failed ({type(exc).__name__}): original kept", "original", "wav"
        target = day_dir / f"{stem}.wav"
        shutil.copyfile(source, target)
        os.chmod(target, 0o640)
    source.unlink(missing_ok=True)
    return FiledRecording(target, fmt, round(duration, 2), target.stat().st_size, _sha256(target), state, note, peak)


def _convert(pcm: bytes, target: Path, *, fmt: str, codec: str, bitrate: str) -> Path:
    from pydub import AudioSegment   # imported here: pydub warns at import when ffmpeg is missing

    audio = AudioSegment(data=pcm, sample_width=2, frame_rate=SAMPLE_RATE, channels=1)
    tmp = target.with_name(target.name + ".tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "wb") as out:
            audio.export(out, format=fmt, codec=codec or None, bitrate=bitrate or None)
        if tmp.stat().st_size == 0:
            raise OSError("the encoder wrote nothing")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _peak(pcm: bytes) -> int:
    from pydub import AudioSegment

    return AudioSegment(data=pcm, sample_width=2, frame_rate=SAMPLE_RATE, channels=1).max


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()
