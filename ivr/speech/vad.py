"""Voice activity detection for the caller's description: when has the caller finished speaking? (pure)

Energy-based on 20 ms frames, which is enough on a telephone line where the capture holds only the caller's own
voice (ChanSpy option o: no music or prompts mixed in). Speech starts after a few voiced frames in a row; it ends
after a stretch of silence following speech, when the caller says nothing at all for a while, or at the cap.
"""
from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass, replace

FRAME_MS = 20


@dataclass(frozen=True)
class VADSettings:
    speech_dbfs: float = -40.0        # a frame louder than this is voiced
    start_frames: int = 3             # voiced frames in a row that start speech (60 ms)
    end_silence_ms: int = 1500        # silence after speech that ends it
    no_speech_ms: int = 10_000        # nothing said at all: give up
    max_ms: int = 60_000              # the longest description: 60 s (capture.MAX_AUDIO_BYTES)


@dataclass(frozen=True)
class VADState:
    elapsed_ms: int = 0
    voiced_run: int = 0
    speaking: bool = False
    heard_speech: bool = False
    silence_ms: int = 0
    ended: str | None = None          # None while capturing; else "silence", "no_speech", "max_duration"


def frame_dbfs(pcm: bytes) -> float:
    """Level of a signed 16-bit little-endian frame in dBFS (-inf for digital silence)."""
    usable = len(pcm) - len(pcm) % 2
    if usable == 0:
        return -math.inf
    samples = array("h", pcm[:usable])
    if sys.byteorder == "big":
        samples.byteswap()
    energy = sum(s * s for s in samples) / len(samples)
    if energy == 0:
        return -math.inf
    return 10 * math.log10(energy / (32768.0 * 32768.0))


def step(state: VADState, pcm: bytes, settings: VADSettings = VADSettings()) -> VADState:
    """The state after one more frame of audio."""
    if state.ended:
        return state
    frame_ms = max(1, len(pcm) * 1000 // 16000) if pcm else FRAME_MS
    voiced = frame_dbfs(pcm) > settings.speech_dbfs
    elapsed = state.elapsed_ms + frame_ms
    run = state.voiced_run + 1 if voiced else 0
    silence = 0 if voiced else state.silence_ms + frame_ms
    speaking = (state.speaking or run >= settings.start_frames) and silence < settings.end_silence_ms
    heard = state.heard_speech or run >= settings.start_frames
    ended = None
    if elapsed >= settings.max_ms:
        ended = "max_duration"
    elif heard and silence >= settings.end_silence_ms:
        ended = "silence"
    elif not heard and elapsed >= settings.no_speech_ms:
        ended = "no_speech"
    return replace(state, elapsed_ms=elapsed, voiced_run=run, speaking=speaking, heard_speech=heard,
                   silence_ms=silence, ended=ended)
