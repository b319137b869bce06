"""Fallback speech capture: a file Asterisk recorded (MixMonitor r()) instead of a live AudioSocket stream.

Used when the AudioSocket spy cannot be had. Asterisk records the caller's own audio from queue entry on; when an
agent answers, the gateway takes what was said before the answer (AgentConnect's HoldTime), recognises it and
deletes the files: the recording keeps running through the agent conversation, which is not ours to keep.
"""
from __future__ import annotations

import asyncio
import logging
import math
import re
import struct
from pathlib import Path
from typing import Any

from ivr.speech.capture import MAX_AUDIO_BYTES, STREAM_WAIT_S, CaptureResult

log = logging.getLogger("ivr.speech.recorded_capture")
BYTES_PER_SECOND = 16000     # 8 kHz 16-bit mono, as MixMonitor writes .wav
FEED_BYTES = 3200            # 0.1 s per recogniser call
# The dialplan names the files after the call id, an Asterisk uniqueid ("1764500000.12"); a value of another
# shape in an AMI event is no call of ours, and joined to the directory it could name a file outside it.
_CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def read_pcm_prefix(path: Path, limit_bytes: int) -> bytes:
    """The first ``limit_bytes`` of PCM in a WAV that may still be being written (its sizes not yet final).

    Blocking: run it in an executor.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path.name}: not a WAV file")
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return b""
            kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if kind == b"data":
                data = f.read(limit_bytes)
                return data[: len(data) - len(data) % 2]
            f.seek(size + (size & 1), 1)


def recording_files(local_dir: Path, call_id: str) -> tuple[Path, Path]:
    """(the caller's own audio, the whole call) for a call, as the gateway sees them."""
    return local_dir / f"{call_id}.wav", local_dir / f"{call_id}-call.wav"


async def transcribe_recording(local_dir: Path, call_id: str, *, hold_s: float, recogniser: Any | None,
                               max_bytes: int = MAX_AUDIO_BYTES) -> CaptureResult | None:
    """Recognise what the caller said while queued; None when there is no recording of this call. A
    ``hold_s`` that is no number of seconds (negative, infinite) takes at most ``max_bytes``."""
    if not _CALL_ID.match(call_id) or ".." in call_id:
        return None
    own, whole = recording_files(local_dir, call_id)
    if not own.exists():
        return None
    limit = min(max_bytes, int(hold_s * BYTES_PER_SECOND)) if math.isfinite(hold_s) and hold_s >= 0 else max_bytes
    loop = asyncio.get_running_loop()
    try:
        pcm = await loop.run_in_executor(None, read_pcm_prefix, own, limit)
    except (OSError, ValueError) as exc:
        log.warning("call=%s event=recording_unreadable error=%s", call_id, exc)
        pcm = b""
    finally:
        for path in (own, whole):
            path.unlink(missing_ok=True)
    transcript = ""
    if recogniser is not None and pcm:
        transcript = await recogniser.transcribe(pcm, call_id=call_id, wait_s=STREAM_WAIT_S, piece_bytes=FEED_BYTES)
    log.info("call=%s event=recording_transcribed audio_s=%.1f transcript_chars=%d", call_id,
             len(pcm) / BYTES_PER_SECOND, len(transcript))
    return CaptureResult(call_id=call_id, pcm=pcm, transcript=transcript, ended_by="agent_answered")

