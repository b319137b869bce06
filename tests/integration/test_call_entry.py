"""Calls through the real stack: sipp callers with RFC 2833 DTMF, sipp agents, Asterisk 22, the gateway."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

# restricted_intro + the spoken date + restricted_outro last well over this (espeak-ng at 210 wpm)
ANNOUNCEMENT_MIN_S = 8.0


def test_restricted_caller_hears_end_date_and_is_hung_up_never_queued(sandbox, agents):
    number = "13911112222"
    sandbox.hotline("restrict", "add", "+86 139 1111 2222", "--reason", "辱骂话务员", "--operator", "test")
    completed_before = sandbox.queue_completed()

    result = sandbox.call(number, dtmf="3", hold_s=60)

    assert result["sipp_ok"], result
    assert result["hangup_by"] == "server", "Asterisk must end the call after the announcement"
    assert ANNOUNCEMENT_MIN_S < result["duration_s"] < 60, result
    assert result["blocked"] and result["outcome"] == "blocked"
    assert not result["queued"] and result["answered_by"] is None
    assert result["ivr_path"] == [], "nothing of the IVR runs for a restricted caller"
    assert sandbox.queue_completed() == completed_before
    attempts = sandbox.store_query(lambda s: s.blocked_attempts("+8613911112222"))
    assert [a["call_id"] for a in attempts] == [result["call_id"]]
    log = sandbox.gateway_log()
    assert "event=blocked" in log and "until=" in log
    assert number not in log, "the full caller number must never reach a log line"


def test_complaint_key_reaches_an_agent_and_the_record_says_complaint(sandbox, agents):
    result = sandbox.call("13800138000", dtmf="3", hold_s=8)

    assert result["sipp_ok"], result
    assert result["ivr_path"] == ["welcome", "3"]
    assert result["type"] == "complaint"
    assert result["queued"] and result["answered_by"] in {"agent1", "agent2"}, result
    listed = json.loads(sandbox.hotline("calls", "list", "--json", "--limit", "5").stdout)
    mine = [c for c in listed if c["call_id"] == result["call_id"]]
    assert mine and mine[0]["number"] == "138****8000" and mine[0]["request_type"] == "complaint"


def test_emergency_fire_key_is_queued_at_top_priority(sandbox, agents):
    result = sandbox.call("13800138001", dtmf="9,2", hold_s=8)

    assert result["sipp_ok"], result
    assert result["emergency"] == "119"
    assert result["ivr_path"][:3] == ["welcome", "9", "emergency"]
    call = sandbox.store_query(lambda s: s.get_call(result["call_id"]))
    assert call["priority"] == 10
    assert result["answered_by"] in {"agent1", "agent2"}, result


def test_garbage_then_silence_reaches_an_agent(sandbox, agents):
    # 7 is no option; then the caller says nothing at all
    result = sandbox.call("075912345678"[:11], dtmf="7", hold_s=45)

    assert result["sipp_ok"], result
    assert "invalid" in result["ivr_path"]
    assert result["type"] == "unspecified"
    assert result["answered_by"] in {"agent1", "agent2"}, result


def test_progress_query_unknown_ticket_then_agent(sandbox, agents):
    result = sandbox.call("13800138002", dtmf="6,20269999#", hold_s=20)

    assert result["sipp_ok"], result
    call = sandbox.store_query(lambda s: s.get_call(result["call_id"]))
    assert call["ticket_query"] == "20269999"
    assert result["answered_by"] in {"agent1", "agent2"}, result


def test_caller_hanging_up_in_the_menu_is_recorded_as_abandoned(sandbox, gateway_running):
    # no key, hang up 3 s into the welcome: Asterisk sends the HANGUP line mid-playback
    result = sandbox.call("13800138003", dtmf="", hold_s=2)

    assert result["hangup_by"] == "caller"
    assert result["outcome"] == "abandoned", result
    assert not result["queued"]


def test_with_the_gateway_stopped_a_call_still_reaches_an_agent(sandbox, agents):
    assert sandbox.stack.gateway.stop(timeout=10)
    try:
        before = sandbox.queue_completed()
        result = sandbox.call("13800138004", dtmf="3", hold_s=8)
        assert result["sipp_ok"], result
        assert result["call_id"] is None  # the gateway never saw it...
        assert sandbox.queue_completed() == before + 1  # ...and an agent answered all the same
    finally:
        sandbox.hotline("stack", "up")


def test_a_silent_caller_is_queued_within_10_s_of_the_welcome_ending(sandbox, agents):
    import wave

    with wave.open(str(sandbox.config.prompt_build_dir / "welcome.wav")) as w:
        welcome_s = w.getnframes() / w.getframerate()

    result = sandbox.call("13800138007", dtmf="", hold_s=welcome_s + 15)

    assert result["type"] == "unspecified" and "timeout" in result["ivr_path"], result
    assert result["answered_by"] in {"agent1", "agent2"}, result
    call = sandbox.store_query(lambda s: s.get_call(result["call_id"]))
    in_gateway_s = (call["queued_at"] - call["started_at"]).total_seconds()
    assert in_gateway_s - welcome_s < 10.0, f"queued {in_gateway_s - welcome_s:.1f} s after the welcome ended"
