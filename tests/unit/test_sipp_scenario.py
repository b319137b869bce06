import struct
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sandbox.dtmf_pcap import (
    EVENT_CODES, PACKET_MS, PAYLOAD_TYPE, SAMPLE_RATE, TONE_MS, dtmf_packets, pcap_bytes, write_dtmf_pcaps,
)
from gateway.sandbox.sipp_scenario import (
    AFTER_PRESS_MS, DIGIT_GAP_MS, PAUSE_MS, CallerScript, agent_scenario, caller_scenario, parse_dtmf_script,
    press_offsets, sip_user,
)

TONE_SAMPLES = TONE_MS * SAMPLE_RATE // 1000


# -- parse_dtmf_script ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("script, steps", [
    ("", []),
    ("3", [("3", 0)]),
    ("123", [("1", 0), ("2", DIGIT_GAP_MS), ("3", DIGIT_GAP_MS)]),
    ("1 2 3", [("1", 0), ("2", DIGIT_GAP_MS), ("3", DIGIT_GAP_MS)]),
    ("9,2", [("9", 0), ("2", DIGIT_GAP_MS + PAUSE_MS)]),
    ("9,,2", [("9", 0), ("2", DIGIT_GAP_MS + 2 * PAUSE_MS)]),
    (",3", [("3", PAUSE_MS)]),
    (",,3", [("3", 2 * PAUSE_MS)]),
    ("6,2026#", [("6", 0), ("2", DIGIT_GAP_MS + PAUSE_MS), ("0", DIGIT_GAP_MS), ("2", DIGIT_GAP_MS),
                 ("6", DIGIT_GAP_MS), ("#", DIGIT_GAP_MS)]),
    ("*#", [("*", 0), ("#", DIGIT_GAP_MS)]),
    ("1,", [("1", 0)]),
    ("   ", []),
])
def test_dtmf_script_becomes_keys_with_the_gap_before_each(script, steps):
    assert parse_dtmf_script(script) == steps


@pytest.mark.parametrize("script, bad", [("12a", "a"), ("A", "A"), ("1;2", ";"), ("1\t2", "\t"), ("１", "１"),
                                         ("1-2", "-")])
def test_dtmf_script_with_a_non_key_is_rejected_naming_the_character(script, bad):
    with pytest.raises(ValueError) as info:
        parse_dtmf_script(script)
    assert repr(bad) in str(info.value)
    assert "is not a key (0-9, *, #)" in str(info.value)
    assert repr(script) in str(info.value)


# -- press_offsets ---------------------------------------------------------------------------------------------

def test_press_offsets_follow_the_scenario_timing():
    assert press_offsets(parse_dtmf_script("123")) == [
        ("1", 0), ("2", AFTER_PRESS_MS + DIGIT_GAP_MS), ("3", 2 * (AFTER_PRESS_MS + DIGIT_GAP_MS))]
    assert press_offsets(parse_dtmf_script("9,2")) == [("9", 0), ("2", AFTER_PRESS_MS + DIGIT_GAP_MS + PAUSE_MS)]
    # a pause before the first key delays the call's first press, not the offsets measured from it
    assert press_offsets(parse_dtmf_script(",,5")) == [("5", 0)]
    assert press_offsets([]) == []


SCRIPTS = st.text(alphabet="0123456789*#, ", max_size=16)


@given(SCRIPTS)
def test_press_offsets_strictly_increase_and_leave_room_for_each_tone(script):
    offsets = [at for _, at in press_offsets(parse_dtmf_script(script))]
    assert offsets[:1] in ([], [0])
    for before, after in zip(offsets, offsets[1:]):
        assert after - before >= AFTER_PRESS_MS + DIGIT_GAP_MS > TONE_MS


# -- sip_user ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("number, user", [
    ("13800138000", "13800138000"),
    ("+86 138 0013 8000", "+8613800138000"),
    ("0759-2345678", "07592345678"),
    ("", "anonymous"),
    ("   ", "anonymous"),
    ("anonymous", "anonymous"),
    ("1" * 64, "1" * 64),
])
def test_sip_user_is_the_number_without_layout(number, user):
    assert sip_user(number) == user


@pytest.mark.parametrize("number", ["<unknown>", "138@evil", "中文号码", "1" * 65, "138\r\nVia: x", "a]]>b",
                                    '"13800138000"', "138:0013"])
def test_sip_user_rejects_what_cannot_be_a_sip_user_part(number):
    with pytest.raises(ValueError, match="cannot be sent as a SIP user part"):
        sip_user(number)


# -- caller_scenario ------------------------------------------------------------------------------------------------

def scenario(script: CallerScript, n_pcaps: int | None = None) -> ET.Element:
    n = len(parse_dtmf_script(script.dtmf)) if n_pcaps is None else n_pcaps
    pcaps = [Path(f"/tmp/call/dtmf_{i:03d}.pcap") for i in range(n)]
    return ET.fromstring(caller_scenario(script, pcaps).encode("iso-8859-1"))


def played(root: ET.Element) -> list[str]:
    return [e.get("play_pcap_audio") for e in root.iter("exec") if e.get("play_pcap_audio") is not None]


def test_scenario_is_xml_with_one_pcap_play_per_key_press_in_order():
    root = scenario(CallerScript(from_number="13800138000", dtmf="6,2026#"))
    assert root.tag == "scenario"
    assert played(root) == [f"/tmp/call/dtmf_{i:03d}.pcap" for i in range(6)]


def test_scenario_without_dtmf_plays_nothing_and_hangs_up_after_hold():
    root = scenario(CallerScript(from_number="13800138000", dtmf="", hold_ms=2000))
    assert played(root) == []
    last_wait = [e for e in root if e.tag == "recv" and e.get("request") == "BYE"][-1]
    assert (last_wait.get("timeout"), last_wait.get("ontimeout")) == ("2000", "hangup")


def test_scenario_sends_the_caller_number_as_the_from_user():
    root = scenario(CallerScript(from_number="+86 138 0013 8000", dtmf="3"))
    messages = [e.text for e in root.iter("send")]
    invite = next(m for m in messages if "INVITE sip:" in m)
    assert "From: <sip:+8613800138000@[local_ip]:[local_port]>" in invite
    assert "Contact: <sip:+8613800138000@[local_ip]:[local_port]>" in invite
    bye = next(m for m in messages if "BYE sip:" in m)
    assert "From: <sip:+8613800138000@" in bye


def test_from_user_inside_cdata_is_sent_literally():
    # CDATA is not entity-decoded: an '&' allowed in a SIP user part must not become '&amp;' on the wire.
    root = scenario(CallerScript(from_number="a&b", dtmf=""))
    invite = next(e.text for e in root.iter("send") if "INVITE sip:" in e.text)
    assert "From: <sip:a&b@" in invite


def test_scenario_offers_telephone_event_101():
    root = scenario(CallerScript(from_number="1", dtmf=""))
    invite = next(e.text for e in root.iter("send") if "INVITE sip:" in e.text)
    assert f"a=rtpmap:{PAYLOAD_TYPE} telephone-event/8000" in invite
    assert f"RTP/AVP 0 8 {PAYLOAD_TYPE}" in invite


def test_scenario_rejects_pcaps_that_do_not_match_the_key_presses():
    with pytest.raises(ValueError, match="2 key presses but 1 pcap files"):
        caller_scenario(CallerScript(from_number="1", dtmf="12"), [Path("/tmp/a.pcap")])


def test_scenario_rejects_a_bad_caller_number_and_a_bad_script():
    with pytest.raises(ValueError):
        caller_scenario(CallerScript(from_number="<unknown>", dtmf=""), [])
    with pytest.raises(ValueError):
        caller_scenario(CallerScript(from_number="1", dtmf="x"), [])


@given(dtmf=SCRIPTS, first=st.integers(0, 5000), hold=st.integers(0, 60000))
@settings(max_examples=50)
def test_scenario_waits_match_press_offsets_and_every_jump_has_a_label(dtmf, first, hold):
    root = scenario(CallerScript(from_number="13800138000", dtmf=dtmf, first_digit_after_ms=first, hold_ms=hold))
    labels = [e.get("id") for e in root.iter("label")]
    assert len(labels) == len(set(labels))
    for e in root.iter("recv"):
        for attr in ("ontimeout", "next"):
            if e.get(attr):
                assert e.get(attr) in labels
        if e.get("timeout"):
            assert int(e.get("timeout")) >= 1
    # the time between two pcap plays is what press_offsets (and so the RTP timestamps) assume
    elapsed, plays = 0, []
    for e in root:
        if e.tag == "recv" and e.get("request") == "BYE" and e.get("ontimeout", "").startswith("w"):
            elapsed += int(e.get("timeout"))
        elif e.tag == "nop" and e.find("action/exec[@play_pcap_audio]") is not None:
            plays.append(elapsed)
    offsets = [at for _, at in press_offsets(parse_dtmf_script(dtmf))]
    assert [p - plays[0] for p in plays] == offsets
    if plays:
        assert plays[0] >= max(first, 1)


# -- agent_scenario ---------------------------------------------------------------------------------------------------

def test_agent_rings_then_answers_and_waits_for_the_callers_bye():
    root = ET.fromstring(agent_scenario(answer_after_ms=1200).encode("iso-8859-1"))
    assert [e.get("milliseconds") for e in root.iter("pause")] == ["1200"]
    assert not any("BYE " in (e.text or "") for e in root.iter("send"))
    bye = [e for e in root.iter("recv") if e.get("request") == "BYE"]
    assert len(bye) == 1 and bye[0].get("timeout") is None


def test_agent_that_hangs_up_sends_its_bye_in_the_dialog_after_the_talk_time():
    root = ET.fromstring(agent_scenario(answer_after_ms=0, hang_up_after_ms=900).encode("iso-8859-1"))
    labels = {e.get("id") for e in root.iter("label")}
    wait = next(e for e in root.iter("recv") if e.get("request") == "BYE")
    assert (wait.get("timeout"), wait.get("ontimeout")) == ("900", "agentbye")
    assert {wait.get("ontimeout")} | {e.get("next") for e in root.iter("send") if e.get("next")} <= labels
    invite = next(e for e in root.iter("recv") if e.get("request") == "INVITE")
    assert invite.get("rrs") == "true", "[next_url] needs the INVITE's Contact"
    bye = next(e.text for e in root.iter("send") if "BYE " in (e.text or ""))
    assert "BYE [next_url] SIP/2.0" in bye
    # the dialog as the agent sees it: its own tag on the INVITE's To, the caller's From as the far end
    assert "From: [$local_party];tag=[pid]SIPpTag01[call_number]" in bye
    assert "To: [$remote_party]" in bye
    assert next(e for e in root.iter("recv") if e.get("response") == "200") is not None


# -- dtmf_pcap: the pcap read back with struct ------------------------------------------------------------------------

@dataclass
class RTPEvent:
    pcap_time_us: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    event: int
    end: bool
    volume: int
    duration: int


def ip_checksum_ok(header: bytes) -> bool:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def read_pcap(data: bytes) -> list[RTPEvent]:
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, major, minor, zone, snaplen, linktype) == (0xA1B2C3D4, 2, 4, 0, 65535, 1)
    events, at = [], 24
    while at < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, at)
        at += 16
        assert incl == orig and usec < 1_000_000
        frame = data[at:at + incl]
        assert len(frame) == incl
        at += incl
        assert frame[12:14] == b"\x08\x00"                  # Ethernet: IPv4
        ip = frame[14:]
        assert ip[0] == 0x45                                 # IPv4, 20-byte header
        total_len, proto = struct.unpack_from("!H", ip, 2)[0], ip[9]
        assert total_len == len(ip) and proto == 17          # UDP
        assert ip_checksum_ok(ip[:20])
        sport, dport, udp_len, _ = struct.unpack_from("!HHHH", ip, 20)
        rtp = ip[28:]
        assert udp_len == 8 + len(rtp) and len(rtp) == 16    # 12-byte RTP header + 4-byte telephone-event
        b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", rtp, 0)
        assert b0 >> 6 == 2 and b0 & 0x3F == 0               # version 2, no padding/extension/CSRC
        assert b1 & 0x7F == PAYLOAD_TYPE
        event, flags, duration = struct.unpack_from("!BBH", rtp, 12)
        assert flags & 0x40 == 0                             # reserved bit
        events.append(RTPEvent(sec * 1_000_000 + usec, bool(b1 & 0x80), seq, ts, ssrc, event, bool(flags & 0x80),
                               flags & 0x3F, duration))
    assert at == len(data)
    return events


@pytest.mark.parametrize("key, code", [*((str(d), d) for d in range(10)), ("*", 10), ("#", 11)])
def test_one_key_press_is_an_rfc4733_event_with_its_code(key, code):
    packets = read_pcap(pcap_bytes(dtmf_packets(key, seq=1000, timestamp=160_000, ssrc=0x1234)))
    assert {p.event for p in packets} == {code}
    assert {p.timestamp for p in packets} == {160_000}      # one event: one timestamp, its start
    assert {p.ssrc for p in packets} == {0x1234}
    assert [p.seq for p in packets] == list(range(1000, 1000 + len(packets)))
    assert [p.pcap_time_us for p in packets] == [i * PACKET_MS * 1000 for i in range(len(packets))]


def test_marker_only_on_the_first_packet_and_end_bit_on_the_last_three():
    packets = read_pcap(pcap_bytes(dtmf_packets("5", seq=1, timestamp=0, ssrc=1)))
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    assert [p.end for p in packets] == [False] * (len(packets) - 3) + [True] * 3
    assert {p.duration for p in packets[-3:]} == {TONE_SAMPLES}
    updates = [p.duration for p in packets[:-3]]
    assert updates == sorted(set(updates)) and updates[-1] < TONE_SAMPLES
    assert updates[0] == PACKET_MS * SAMPLE_RATE // 1000


def test_sequence_numbers_wrap_at_16_bits():
    packets = read_pcap(pcap_bytes(dtmf_packets("1", seq=65534, timestamp=0, ssrc=1)))
    assert [p.seq for p in packets[:4]] == [65534, 65535, 0, 1]


def test_unknown_key_is_refused():
    with pytest.raises(ValueError, match="'A' is not a DTMF key"):
        dtmf_packets("A", seq=1, timestamp=0, ssrc=1)


def check_presses(keys_offsets, paths):
    """Several presses: one SSRC, sequence numbers and timestamps rising, each tone after the one before."""
    files = [read_pcap(p.read_bytes()) for p in paths]
    assert len(files) == len(keys_offsets)
    all_packets = [p for f in files for p in f]
    assert len({p.ssrc for p in all_packets}) <= 1
    seqs = [p.seq for p in all_packets]
    assert all(b == a + 1 for a, b in zip(seqs, seqs[1:]))
    starts = [f[0].timestamp for f in files]
    for (key, offset), f in zip(keys_offsets, files):
        assert {p.event for p in f} == {EVENT_CODES[key]}
        assert f[0].timestamp - starts[0] == offset * SAMPLE_RATE // 1000
    for before, after in zip(files, files[1:]):
        # Asterisk drops a telephone-event that is older than the last one it ended
        assert after[0].timestamp > before[0].timestamp
        assert after[0].timestamp >= before[-1].timestamp + before[-1].duration


def test_later_key_has_a_later_timestamp(tmp_path):
    # sip-tester's own files give '9' timestamp 67840 and '2' a lower one: Asterisk lost the 2.
    presses = press_offsets(parse_dtmf_script("9,2"))
    paths = write_dtmf_pcaps(presses, tmp_path / "pcaps")
    assert [p.name for p in paths] == ["dtmf_000.pcap", "dtmf_001.pcap"]
    check_presses(presses, paths)


def test_same_key_twice_is_two_events(tmp_path):
    presses = press_offsets(parse_dtmf_script("33"))
    paths = write_dtmf_pcaps(presses, tmp_path)
    check_presses(presses, paths)
    first, second = (read_pcap(p.read_bytes()) for p in paths)
    assert first[0].marker and second[0].marker and first[0].timestamp != second[0].timestamp


@given(SCRIPTS)
@settings(max_examples=40, deadline=None)
def test_any_dtmf_script_gives_pcaps_with_rising_timestamps(script):
    presses = press_offsets(parse_dtmf_script(script))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_dtmf_pcaps(presses, Path(tmp))
        check_presses(presses, paths)
