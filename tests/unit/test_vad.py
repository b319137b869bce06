import math
import struct

from hypothesis import given, strategies as st

from ivr.speech.vad import VADSettings, VADState, frame_dbfs, step

SILENCE = b"\x00\x00" * 160
QUIET = struct.pack("<160h", *([30, -30] * 80))          # about -60 dBFS: line noise
SPEECH = struct.pack("<160h", *([8000, -8000] * 80))     # about -12 dBFS
S = VADSettings(speech_dbfs=-40.0, start_frames=3, end_silence_ms=200, no_speech_ms=1000, max_ms=2000)


def run(frames, settings=S):
    state = VADState()
    for f in frames:
        state = step(state, f, settings)
    return state


def test_frame_level_of_silence_noise_and_speech():
    assert frame_dbfs(SILENCE) == -math.inf
    assert -65 < frame_dbfs(QUIET) < -55
    assert -13 < frame_dbfs(SPEECH) < -11
    assert frame_dbfs(b"") == -math.inf and frame_dbfs(b"\x01") == -math.inf


def test_speech_then_silence_ends_on_silence():
    state = run([SPEECH] * 10 + [QUIET] * 9)
    assert state.heard_speech and state.ended is None
    assert step(state, QUIET, S).ended == "silence"


def test_two_loud_frames_are_not_speech_yet():
    state = run([SPEECH, SPEECH, QUIET] + [QUIET] * 20)
    assert not state.heard_speech and state.ended is None


def test_nothing_said_gives_up_after_no_speech_ms():
    assert run([QUIET] * 49).ended is None
    assert run([QUIET] * 50).ended == "no_speech"


def test_a_caller_who_never_pauses_is_cut_at_the_cap():
    assert run([SPEECH] * 100).ended == "max_duration"


def test_a_pause_shorter_than_end_silence_does_not_end_speech():
    state = run([SPEECH] * 5 + [QUIET] * 5 + [SPEECH] * 5)
    assert state.ended is None and state.speaking


def test_ended_state_is_final():
    ended = run([QUIET] * 50)
    assert step(ended, SPEECH, S) is ended


@given(st.lists(st.binary(max_size=400), max_size=200))
def test_any_audio_bytes_never_crash_and_time_only_grows(frames):
    state = VADState()
    for f in frames:
        new = step(state, f, S)
        assert new.elapsed_ms >= state.elapsed_ms
        state = new
