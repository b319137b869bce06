"""Recordings of answered calls: filing a MixMonitor WAV (its header possibly not yet rewritten), the fallback to the
original when conversion fails, empty files, the rows, the sweep, retention marking rows, and the list command.
Conversion to a compact format runs ffmpeg: on the real stack (tests/integration/test_call_recording_real.py)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from datetime import datetime
from types import SimpleNamespace

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.cli import recordings as cli_recordings
from recordings import call_files
from recordings.call_files import file_call_recording, read_wav_pcm, spool_path
from recordings.filer import CallRecordingFiler
from recordings.retention import purge_all
from tests.audio_files import mixmonitor_wav, tone_pcm
from tests.conftest import store_section

AT = datetime(2026, 12, 1, 10, tzinfo=SHANGHAI)


def test_the_pcm_is_read_whatever_the_header_says(tmp_path):
    pcm = tone_pcm(0.5)
    assert read_wav_pcm(mixmonitor_wav(tmp_path / "a.wav", pcm, header_final=False)) == pcm
    (tmp_path / "b.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError):
        read_wav_pcm(tmp_path / "b.wav")


def test_a_call_is_filed_by_its_day_with_size_and_checksum(tmp_path):
    source = mixmonitor_wav(spool_path(tmp_path / "spool", "1764554400.12"), tone_pcm(2.0), header_final=False)
    filed = file_call_recording(source, tmp_path / "rec", "1764554400.12", AT, fmt="wav")
    assert filed.state == "converted" and filed.note is None and not source.exists()
    assert filed.path == tmp_path / "rec/2026/12/01/1764554400.12-call.wav"
    assert filed.duration_s == 2.0 and filed.size == filed.path.stat().st_size and filed.peak > 5000
    assert filed.sha256 == hashlib.sha256(filed.path.read_bytes()).hexdigest()
    assert oct(filed.path.stat().st_mode & 0o777) == "0o640"


def test_a_file_that_cannot_be_converted_keeps_the_original_and_says_so(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("ffmpeg: Unknown encoder 'libnothing'")
    monkeypatch.setattr(call_files, "_convert", broken)
    pcm = tone_pcm(1.0)
    source = mixmonitor_wav(tmp_path / "spool/calls/c2.wav", pcm)
    filed = file_call_recording(source, tmp_path / "rec", "c2", AT, fmt="ogg", codec="libnothing")
    assert filed.state == "original" and filed.format == "wav" and "conversion to ogg failed" in filed.note
    assert read_wav_pcm(filed.path) == pcm and not source.exists()


def test_an_empty_recording_is_not_a_recording(tmp_path):
    source = mixmonitor_wav(tmp_path / "spool/calls/c3.wav", b"", header_final=False)
    filed = file_call_recording(source, tmp_path / "rec", "c3", AT, fmt="wav")
    assert filed.path is None and filed.state == "empty" and not source.exists()
    assert not (tmp_path / "rec").exists()
    garbage = tmp_path / "spool/calls/c4.wav"
    garbage.write_bytes(b"\x00" * 10)
    assert file_call_recording(garbage, tmp_path / "rec", "c4", AT, fmt="wav").path is None
    assert garbage.exists()      # unreadable: left where it was, for an operator to look at


def filer(store, tmp_path):
    return CallRecordingFiler(store, spool=tmp_path / "spool", recordings_dir=tmp_path / "rec", fmt="wav",
                              codec="", bitrate="", clock=lambda: AT)


async def an_answered_call(store, call_id: str) -> str:
    await store.enter_call(call_id=call_id, number="+8613800138000", channel="PJSIP/caller-1", at=AT)
    ticket = await store.queue_call(call_id, ivr_path=["0"], request_type="unspecified", emergency=None,
                                    priority=0, ticket_query=None, ticket_type=None, due=None, at=AT)
    await store.update_call(call_id, outcome="answered", agent="agent1", answered_at=AT)
    return ticket


async def test_the_filer_writes_the_row_with_the_call_s_ticket_and_agent(store, tmp_path, caplog):
    ticket = await an_answered_call(store, "c5")
    mixmonitor_wav(spool_path(tmp_path / "spool", "c5"), tone_pcm(1.5))
    f = filer(store, tmp_path)
    with caplog.at_level(logging.INFO):
        await f.on_event({"Event": "UserEvent", "UserEvent": "HotlineLinkage", "Call": "c5"})     # not ours
        assert f.pending == 0
        await f.on_event({"Event": "UserEvent", "UserEvent": "HotlineRecording", "Call": "c5"})
        await f.on_event({"Event": "UserEvent", "UserEvent": "HotlineRecording", "Call": "c5"})   # a repeat
        assert f.pending == 1
        await f.close(grace_s=5)
    row = await store.call_recording("c5")
    assert row["ticket_id"] == ticket and row["agent"] == "agent1" and row["state"] == "converted"
    assert row["duration_s"] == 1.5 and row["recorded_at"] == AT
    assert "event=call_recording_filed" in caplog.text


async def test_a_recording_that_never_appears_is_logged_not_raised(store, tmp_path, caplog, monkeypatch):
    from recordings import filer as filer_module
    real = filer_module._settled
    monkeypatch.setattr(filer_module, "_settled", lambda path: real(path, timeout_s=0.3))
    with caplog.at_level(logging.INFO):
        assert await filer(store, tmp_path).file("never") is None
    assert "event=call_recording_missing" in caplog.text and await store.call_recording("never") is None


class StatusAMI:
    """Answers AMI ``Status`` with the channels it is given (None: the AMI is not connected)."""

    def __init__(self, live):
        self.live = live
        self.ready = live is not None

    def on_event(self, name, handler):
        pass

    async def action_list(self, action, timeout=5.0):
        assert action == {"Action": "Status"}
        return {"Response": "Success"}, [{"Event": "Status", "Uniqueid": u} for u in self.live]


def aged(path, seconds):
    os.utime(path, (time.time() - seconds, time.time() - seconds))
    return path


async def test_without_asterisk_the_sweep_files_only_what_was_quiet_for_ten_minutes(store, tmp_path):
    await an_answered_call(store, "c6")
    aged(mixmonitor_wav(spool_path(tmp_path / "spool", "c6"), tone_pcm(1.0)), 3600)
    aged(mixmonitor_wav(spool_path(tmp_path / "spool", "c7"), tone_pcm(1.0)), 60)     # maybe a call on hold
    f = filer(store, tmp_path)
    f.attach(StatusAMI(None))
    assert await f.sweep() == 1
    await f.close(grace_s=5)
    assert (await store.call_recording("c6"))["state"] == "converted"
    assert await store.call_recording("c7") is None and spool_path(tmp_path / "spool", "c7").exists()


async def test_asked_asterisk_the_sweep_files_every_call_whose_channel_is_gone(store, tmp_path):
    for call_id in ("g1", "g2", "live"):
        await an_answered_call(store, call_id)
        aged(mixmonitor_wav(spool_path(tmp_path / "spool", call_id), tone_pcm(1.0)), 60)
    mixmonitor_wav(spool_path(tmp_path / "spool", "g3"), tone_pcm(1.0))    # just hung up: still being closed
    f = filer(store, tmp_path)
    f.attach(StatusAMI({"live", "1764554400.99"}))
    assert await f.sweep() == 2
    await f.close(grace_s=5)
    assert [await store.call_recording(c) is not None for c in ("g1", "g2", "live", "g3")] == [
        True, True, False, False]


async def test_retention_deletes_the_file_and_marks_the_row_and_the_list_shows_it(store, store_location, tmp_path, cli):
    await an_answered_call(store, "c8")
    mixmonitor_wav(spool_path(tmp_path / "spool", "c8"), tone_pcm(1.0))
    await filer(store, tmp_path).file("c8")
    path = (await store.call_recording("c8"))["path"]
    reports = purge_all(tmp_path / "rec", tmp_path / "spool", at=datetime(2027, 12, 3, tzinfo=SHANGHAI),
                        retention_days=365)
    assert reports["recordings"].paths == [path] and not os.path.exists(path)
    assert await store.mark_recordings_purged(reports["recordings"].paths, at=AT) == 1
    row = await store.call_recording("c8")
    assert row["state"] == "purged" and row["purged_at"] == AT
    config = SimpleNamespace(store=store_section(store_location))
    code, out, _ = await cli(config, cli_recordings)("recordings", "list", "--call", "c8", "--json")
    [listed] = json.loads(out)
    assert code == 0 and listed["call_id"] == "c8" and listed["state"] == "purged" and listed["duration_s"] == 1.0
    code, out, _ = await cli(config, cli_recordings)("recordings", "list")
    assert "c8" in out and "purged" in out
