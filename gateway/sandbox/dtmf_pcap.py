"""RFC 4733 (2833) DTMF as pcap files for sipp's ``play_pcap_audio`` (pure: bytes out).

sip-tester's own dtmf_2833_N.pcap files each carry a fixed RTP timestamp (digit 9's is 67840, digit 2's far
lower). Asterisk drops a telephone-event whose timestamp is older than the last one it ended, so "9 then 2" from
those files loses the 2. We write one file per key press instead, with one SSRC, rising sequence numbers and
timestamps that follow the scripted timing.
"""
from __future__ import annotations

import struct
from pathlib import Path

EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
SAMPLE_RATE = 8000
PACKET_MS = 20
TONE_MS = 280           # as long as sip-tester's recorded digits
END_REPEATS = 3         # RFC 4733 2.5.1.4: the end packet is sent three times
PAYLOAD_TYPE = 101
VOLUME = 10
_SRC = bytes([10, 0, 0, 1])
_DST = bytes([10, 0, 0, 2])


def _ipv4_udp(payload: bytes, sport: int = 40000, dport: int = 40002) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, _SRC, _DST)
    checksum = 0
    for i in range(0, 20, 2):
        checksum += (header[i] << 8) | header[i + 1]
    checksum = (checksum & 0xFFFF) + (checksum >> 16)
    checksum = ~((checksum & 0xFFFF) + (checksum >> 16)) & 0xFFFF
    header = header[:10] + struct.pack("!H", checksum) + header[12:]
    return header + udp


def _ethernet(ip_packet: bytes) -> bytes:
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip_packet


def dtmf_packets(key: str, *, seq: int, timestamp: int, ssrc: int) -> list[bytes]:
    """RTP packets (bytes) of one key press: a marked start, updates every 20 ms, three end packets."""
    if key not in EVENT_CODES:
        raise ValueError(f"{key!r} is not a DTMF key")
    event = EVENT_CODES[key]
    steps = TONE_MS // PACKET_MS
    packets = []
    # The last update is the first end packet; END_REPEATS counts it (14 updates would otherwise give 4 ends).
    for i in range(steps - 1 + END_REPEATS):
        end = i >= steps - 1
        duration = min(i + 1, steps) * PACKET_MS * SAMPLE_RATE // 1000
        marker = 0x80 if i == 0 else 0
        rtp = struct.pack("!BBHII", 0x80, marker | PAYLOAD_TYPE, (seq + i) & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
        rtp += struct.pack("!BBH", event, (0x80 if end else 0) | VOLUME, duration)
        packets.append(rtp)
    return packets


def pcap_bytes(rtp_packets: list[bytes]) -> bytes:
    """A classic pcap (Ethernet) with one RTP packet every 20 ms."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, rtp in enumerate(rtp_packets):
        usec = i * PACKET_MS * 1000
        frame = _ethernet(_ipv4_udp(rtp))
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
    return b"".join(out)


def write_dtmf_pcaps(presses: list[tuple[str, int]], out_dir: Path, *, ssrc: int = 0x484C4E45,
                     first_seq: int = 1000) -> list[Path]:
    """One pcap per key press; ``presses`` are (key, start offset in ms from the first press)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    seq = first_seq
    for n, (key, offset_ms) in enumerate(presses):
        packets = dtmf_packets(key, seq=seq, timestamp=160_000 + offset_ms * SAMPLE_RATE // 1000, ssrc=ssrc)
        seq += len(packets)
        path = out_dir / f"dtmf_{n:03d}.pcap"
        path.write_bytes(pcap_bytes(packets))
        paths.append(path)
    return paths
