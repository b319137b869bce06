"""A scripted caller's voice as an RTP (G.711 mu-law) pcap for sipp's ``play_pcap_audio`` (pure but for files)."""
from __future__ import annotations

import audioop  # audioop-lts on Python >= 3.13 (pyproject)
import struct
import wave
from pathlib import Path

from gateway.sandbox.dtmf_pcap import pcap_bytes

SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
PCMU = 0


def voice_packets(pcm: bytes, *, seq: int, timestamp: int, ssrc: int) -> list[bytes]:
    """RTP packets of 8 kHz 16-bit mono PCM as PCMU, 20 ms each; the first carries the marker bit."""
    ulaw = audioop.lin2ulaw(pcm[: len(pcm) - len(pcm) % 2], 2)
    packets = []
    for i, off in enumerate(range(0, len(ulaw), SAMPLES_PER_PACKET)):
        chunk = ulaw[off:off + SAMPLES_PER_PACKET].ljust(SAMPLES_PER_PACKET, b"\xff")  # 0xff: mu-law silence
        header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | PCMU, (seq + i) & 0xFFFF,
                             (timestamp + i * SAMPLES_PER_PACKET) & 0xFFFFFFFF, ssrc)
        packets.append(header + chunk)
    return packets


def read_pcm_8k(wav_path: Path) -> bytes:
    """16-bit mono 8 kHz frames of a WAV file; other formats are refused with the reason."""
    with wave.open(str(wav_path)) as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, 8000):
            raise ValueError(f"{wav_path}: need 8 kHz 16-bit mono WAV, got {w.getframerate()} Hz "
                             f"{8 * w.getsampwidth()}-bit {w.getnchannels()} channel(s)")
        return w.readframes(w.getnframes())


def write_voice_pcap(wav_path: Path, out: Path, *, start_ms: int, ssrc: int = 0x484C4E45, seq: int = 30000) -> Path:
    """The caller's speech from ``wav_path`` as one pcap, timestamped ``start_ms`` after the first key press."""
    pcm = read_pcm_8k(wav_path)
    out.write_bytes(pcap_bytes(voice_packets(pcm, seq=seq, timestamp=160_000 + start_ms * 8, ssrc=ssrc)))
    return out
