"""`hotline call`: place one scripted sipp call into the sandbox and report what the gateway made of it."""
from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from gateway.config import Config
from gateway.basics.phone import mask, normalise
from gateway.sandbox.dtmf_pcap import write_dtmf_pcaps
from gateway.sandbox.sipp_scenario import (AFTER_PRESS_MS, CallerScript, caller_scenario, parse_dtmf_script,
                                   press_offsets)
from gateway.sandbox.voice_pcap import read_pcm_8k, write_voice_pcap
from gateway.store.database import Store

SETTLED = {"blocked", "answered", "abandoned"}


def free_udp_port_pair() -> int:
    """An even UDP port whose +1..+3 neighbours are free too (sipp uses mp..mp+3 for media)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1] & ~1
        if port + 3 < 65536 and all(_udp_free(port + i) for i in range(4)):
            return port
    raise RuntimeError("no free UDP port range for sipp media")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class SippResult:
    returncode: int
    hangup_by: str | None   # "server" (Asterisk sent BYE) or "caller"; None if the call never got that far
    errors: str


async def run_sipp_caller(config: Config, script: CallerScript, *, say: Path | None = None,
                          timeout_s: float = 120.0, media_port: int | None = None) -> SippResult:
    """Run one sipp UAC call and say how it ended; ``say``: an 8 kHz mono WAV the caller speaks after the keys.
    ``media_port``: sipp's first RTP port (it takes four); callers placed at once each need their own, since a
    free port picked here may be picked again before the sipp before has bound it."""
    with tempfile.TemporaryDirectory(prefix="hotline-call-") as tmp:
        scenario = Path(tmp) / "caller.xml"
        presses = press_offsets(parse_dtmf_script(script.dtmf))
        speech, speech_ms = None, 0
        start = (presses[-1][1] + AFTER_PRESS_MS if presses else 0) + script.speak_after_ms
        if say is not None:
            speech = write_voice_pcap(say, Path(tmp) / "speech.pcap", start_ms=start)
            speech_ms = len(read_pcm_8k(say)) // 16
        later = [(key, start + speech_ms + script.keys_after_speech_ms + at)
                 for key, at in press_offsets(parse_dtmf_script(script.keys_after_speech))]
        later_pcaps = write_dtmf_pcaps(later, Path(tmp) / "later", first_seq=40000)
        scenario.write_text(caller_scenario(script, write_dtmf_pcaps(presses, Path(tmp)), speech,
                                            speech_ms=speech_ms, later_pcaps=later_pcaps))
        argv = ["sipp", f"{config.sip.bind}:{config.sip.port}", "-sf", str(scenario), "-s",
                config.sip.hotline_number, "-m", "1", "-i", "127.0.0.1", "-mp", str(media_port or free_udp_port_pair()),
                "-nostdin", "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-trace_err", "-trace_logs"]
        proc = await asyncio.create_subprocess_exec(*argv, cwd=tmp, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        errors = "".join(p.read_text(errors="replace")[-800:] for p in Path(tmp).glob("*_errors.log"))
        logs = "".join(p.read_text(errors="replace") for p in Path(tmp).glob("*_logs.log"))
        hangup_by = next((who for who in ("server", "caller") if f"hangup_by={who}" in logs), None)
        return SippResult(proc.returncode or 0, hangup_by, (err.decode(errors="replace")[-400:] + errors).strip())


async def find_call(store: Store, number: str | None, since: datetime) -> dict | None:
    e164 = normalise(number).e164 if number else None
    for call in await store.list_calls(limit=50):
        started = call.get("started_at")
        if started is None or started < since:
            continue
        if e164 is None or call.get("number") == e164:
            return call
    return None


async def place_call(config: Config, number: str, dtmf: str, *, hold_s: float = 8.0, full: bool = False,
                     say: Path | None = None, speak_after_ms: int = 1000, keys_after_speech: str = "",
                     keys_after_speech_ms: int = 3000) -> dict:
    """Place the call, wait for its record to settle, and return a JSON-ready summary."""
    script = CallerScript(from_number=number, dtmf=dtmf, hold_ms=int(hold_s * 1000), speak_after_ms=speak_after_ms,
                          keys_after_speech=keys_after_speech, keys_after_speech_ms=keys_after_speech_ms)
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    started = time.monotonic()
    sipp = await run_sipp_caller(config, script, say=say)
    store = await Store.open(config.store.location, **config.store.pool)
    try:
        call = None
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            call = await find_call(store, number, since)
            if call and call.get("outcome") in SETTLED:
                break
            await asyncio.sleep(0.2)
        draft = await store.ticket_draft_for_call(call["call_id"]) if call else None
    finally:
        await store.close()
    result = {
        "from": number if full else mask(number),
        "dtmf": dtmf,
        "sipp_ok": sipp.returncode == 0,
        "hangup_by": sipp.hangup_by,
        "duration_s": round(time.monotonic() - started, 2),
        "call_id": None, "blocked": False, "ivr_path": [], "type": None, "emergency": None,
        "queued": False, "answered_by": None, "outcome": None,
    }
    if sipp.returncode != 0:
        result["sipp_error"] = sipp.errors
    if call:
        outcome = call.get("outcome")
        result.update({
            "call_id": call["call_id"], "blocked": outcome == "blocked", "ivr_path": call.get("ivr_path") or [],
            "type": call.get("request_type"), "emergency": call.get("emergency"),
            "queued": call.get("queued_at") is not None, "answered_by": call.get("agent"), "outcome": outcome,
        })
    if draft:
        result["ticket"] = {"id": draft["ticket_id"], **{
            k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in draft.items()
            if k in {"type", "category", "unit", "address", "callback_number", "emergency", "due", "summary",
                     "transcript", "status", "public_id"}}}
    elif not call:
        result["note"] = "no call record: the gateway did not see this call (down?); the dialplan queued it"
    return result
