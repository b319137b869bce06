"""The ``[recordings]`` settings: how long callers' recordings are kept and in which format (art. 20)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.config_checks import SettingsReader
from recordings.call_files import FORMATS as RECORDING_FORMATS

__all__ = ["RecordingsSection", "read_recordings"]

_FFMPEG_WORD = re.compile(r"[A-Za-z0-9_]{0,32}")


@dataclass(frozen=True)
class RecordingsSection:
    retention_days: int           # natural days a day's recordings are kept after it (art. 20)
    format: str                   # the compact format calls are kept in (ffmpeg's name: ogg, mp3, wav)
    codec: str                    # its ffmpeg encoder ("" = the format's default)
    bitrate: str                  # e.g. "16k" ("" = the encoder's default)


def read_recordings(r: SettingsReader) -> RecordingsSection:
    return RecordingsSection(
        retention_days=r.get("recordings.retention_days", int, check=lambda v: 1 <= v <= 3650,
                             reason="must be 1-3650 natural days"),
        format=r.get("recordings.format", str, check=lambda v: v in RECORDING_FORMATS,
                     reason=f"must be one of {', '.join(sorted(RECORDING_FORMATS))}"),
        codec=r.get("recordings.codec", str, check=_FFMPEG_WORD.fullmatch, reason="must be an ffmpeg encoder name"),
        bitrate=r.get("recordings.bitrate", str, check=_FFMPEG_WORD.fullmatch, reason="must be like 16k"))
