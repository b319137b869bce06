"""sipp scenarios for scripted hotline callers (pure: text in, XML text out).

The caller sends RFC 2833/4733 DTMF by replaying pcaps (gateway.sandbox.dtmf_pcap writes one per key press). Every wait
in the scenario is a ``recv BYE`` with a timeout, so a server hang-up at any moment (a restricted number after its
announcement) ends the call cleanly instead of counting as an unexpected message.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

_KEYS = set("0123456789*#")
# One key press lasts 280 ms; AFTER_PRESS_MS + DIGIT_GAP_MS between presses keeps them distinct and well inside
# GET DATA's inter-digit timeout.
AFTER_PRESS_MS = 300
DIGIT_GAP_MS = 400
PAUSE_MS = 2500  # what a ',' in a DTMF script stands for: a caller waiting for the next prompt
_SIP_USER = re.compile(r"^[A-Za-z0-9+\-_.!~*'()&=$,;?/]{1,64}$")


@dataclass(frozen=True)
class CallerScript:
    """What a scripted caller does after the call is answered."""

    from_number: str
    dtmf: str = ""
    first_digit_after_ms: int = 1500
    hold_ms: int = 8000  # after the last digit: stay on the line this long, then hang up
    # True: the server must hang up within hold_ms, or the call counts as failed (benchmarks)
    expect_server_hangup: bool = False
    speak_after_ms: int = 1000  # with a speech pcap: the pause between the last key and speaking
    keys_after_speech: str = ""  # keys pressed once the caller has spoken (e.g. confirming a transfer)
    keys_after_speech_ms: int = 3000  # the pause between the end of speech and those keys


def parse_dtmf_script(script: str) -> list[tuple[str, int]]:
    """Split a DTMF script into (digit, gap before it in ms). ``,`` adds a pause, spaces are ignored.

    >>> parse_dtmf_script("3")
    [('3', 0)]
    """
    steps: list[tuple[str, int]] = []
    gap = 0
    for ch in script:
        if ch == ",":
            gap += PAUSE_MS
        elif ch == " ":
            continue
        elif ch in _KEYS:
            steps.append((ch, gap if steps or gap else 0))
            gap = DIGIT_GAP_MS
        else:
            raise ValueError(f"DTMF script {script!r}: {ch!r} is not a key (0-9, *, #) or ',' (pause)")
    return steps


# The 200 OK that answers the far end's BYE, the same in every scenario.
_OK_TO_BYE = """    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
"""


def sip_user(number: str) -> str:
    """The SIP From user for a caller number; a display form like '+86 138 0013 8000' loses its spaces."""
    user = number.replace(" ", "").replace("-", "")
    if not user:
        return "anonymous"
    if not _SIP_USER.match(user):
        raise ValueError(f"caller number {number!r} cannot be sent as a SIP user part")
    return user


def press_offsets(steps: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """(key, ms after the first press) for each press, following the scenario's own timing."""
    out: list[tuple[str, int]] = []
    at = 0
    for i, (key, gap) in enumerate(steps):
        if i:
            at += AFTER_PRESS_MS + gap
        out.append((key, at))
    return out


def caller_scenario(script: CallerScript, pcaps: list[Path], speech: Path | None = None, *,
                    speech_ms: int = 0, later_pcaps: list[Path] = ()) -> str:
    """The sipp UAC scenario XML for one scripted caller; ``pcaps`` holds one file per key press, in order
    (see gateway.sandbox.dtmf_pcap.write_dtmf_pcaps); ``speech`` an RTP pcap of what the caller then says
    (gateway.sandbox.voice_pcap)."""
    # Not XML-escaped: the user goes into CDATA, which is sent as written; _SIP_USER admits no '<', '>' or ']'.
    user = sip_user(script.from_number)
    steps = parse_dtmf_script(script.dtmf)
    if len(pcaps) != len(steps):
        raise ValueError(f"{len(steps)} key presses but {len(pcaps)} pcap files")
    body: list[str] = []
    label = 0

    def wait(ms: int) -> None:
        nonlocal label
        label += 1
        body.append(f'  <recv request="BYE" timeout="{max(ms, 1)}" ontimeout="w{label}" next="gotbye"/>')
        body.append(f'  <label id="w{label}"/>')

    wait(script.first_digit_after_ms)
    for (_, gap), pcap in zip(steps, pcaps):
        if gap:
            wait(gap)
        body.append(f'  <nop><action><exec play_pcap_audio="{escape(str(pcap))}"/></action></nop>')
        wait(AFTER_PRESS_MS)
    if speech is not None:
        wait(script.speak_after_ms)
        body.append(f'  <nop><action><exec play_pcap_audio="{escape(str(speech))}"/></action></nop>')
    later = parse_dtmf_script(script.keys_after_speech)
    if len(later) != len(later_pcaps):
        raise ValueError(f"{len(later)} later key presses but {len(later_pcaps)} pcap files")
    if later:
        wait(speech_ms + script.keys_after_speech_ms)
        for (_, gap), pcap in zip(later, later_pcaps):
            if gap:
                wait(gap)
            body.append(f'  <nop><action><exec play_pcap_audio="{escape(str(pcap))}"/></action></nop>')
            wait(AFTER_PRESS_MS)
    # The final wait ends either with the server's BYE or with our own (or, when the server must hang up, fails).
    on_timeout = "" if script.expect_server_hangup else ' ontimeout="hangup"'
    body.append(f'  <recv request="BYE" timeout="{max(script.hold_ms, 1)}"{on_timeout}/>')
    steps_xml = "\n".join(body)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hotline scripted caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Subject: hotline scripted caller
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{steps_xml}
  <label id="gotbye"/>
  <nop><action><log message="hangup_by=server"/></action></nop>
  <send next="end">
{_OK_TO_BYE}  </send>
  <label id="hangup"/>
  <nop><action><log message="hangup_by=caller"/></action></nop>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <label id="end"/>
  <ResponseTimeRepartition value="100, 500, 1000, 2000, 5000"/>
</scenario>
"""


def agent_scenario(*, answer_after_ms: int, hang_up_after_ms: int | None = None,
                   plays: Sequence[tuple[int, Path]] = ()) -> str:
    """A sipp UAS phone (an agent, a centre, a citizen called by the hotline): rings for ``answer_after_ms``,
    answers, and waits for the BYE (any length of call); with ``hang_up_after_ms`` it ends the call that long after
    the answer unless the far end did first; ``plays`` are (pause in ms, pcap) pairs sent in turn once the call is
    up: speech (gateway.sandbox.voice_pcap) or key presses (gateway.sandbox.dtmf_pcap)."""
    speak = "".join((f'  <pause milliseconds="{pause}"/>\n' if pause > 0 else "")
                    + f'  <nop><action><exec play_pcap_audio="{escape(str(pcap))}"/></action></nop>\n'
                    for pause, pcap in plays)
    # sipp allows no action between an optional receive and the next mandatory one: a speaking phone waits for the ACK
    ack_optional = "" if plays else ' optional="true"'
    if hang_up_after_ms is None:
        invite = '<recv request="INVITE" crlf="true"/>'
        end = _AWAIT_BYE
    else:
        # rrs: [next_url] is then the Contact of Asterisk's INVITE, where the agent's own BYE must go; the
        # dialog's From and To are the INVITE's To (with the tag this agent gave it) and From.
        invite = """<recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="remote_party"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="local_party"/>
    </action>
  </recv>"""
        end = _hang_up_after(hang_up_after_ms)
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="hotline simulated agent">
  {invite}
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="{max(answer_after_ms, 0)}"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <recv request="ACK"{ack_optional} rtd="true" crlf="true"/>
{speak}{end}
</scenario>
"""


_AWAIT_BYE = """  <recv request="BYE"/>
  <send>
""" + _OK_TO_BYE + """  </send>"""


def _hang_up_after(ms: int) -> str:
    return f"""  <recv request="BYE" timeout="{max(ms, 1)}" ontimeout="agentbye"/>
  <send next="end">
{_OK_TO_BYE}  </send>
  <label id="agentbye"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$local_party];tag=[pid]SIPpTag01[call_number]
      To: [$remote_party]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <label id="end"/>"""
