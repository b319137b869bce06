"""recordings.retention: which days are past retention, and a purge that deletes only those, on real files."""
from __future__ import annotations

import os
from datetime import date, datetime

import pytest

from recordings.files import recording_path, write_wav
from recordings.retention import expired, purge_recordings, purge_spool


def test_a_day_is_kept_its_retention_days_and_purged_the_day_after():
    assert not expired(date(2026, 1, 1), date(2026, 1, 31), 30)
    assert expired(date(2026, 1, 1), date(2026, 2, 1), 30)
    with pytest.raises(ValueError):
        expired(date(2026, 1, 1), date(2026, 2, 1), 0)


def test_the_purge_deletes_expired_days_only_and_leaves_odd_names_alone(tmp_path):
    old = write_wav(recording_path(tmp_path, "1764000000.1", datetime(2025, 11, 1, 9)), b"\x01\x00" * 800)
    kept = write_wav(recording_path(tmp_path, "1764000000.2", datetime(2026, 11, 30, 9)), b"\x01\x00" * 800)
    (tmp_path / "notes").mkdir()
    (old.parent / "README").write_text("not a recording")          # kept, even in an expired day
    (tmp_path / "2025" / "13" / "01").mkdir(parents=True)          # no such month
    outside = tmp_path.parent / "outside.wav"
    outside.write_bytes(b"x")
    (tmp_path / "2025" / "11" / "02").symlink_to(tmp_path.parent)    # a link is never followed

    size = old.stat().st_size
    dry = purge_recordings(tmp_path, today=date(2026, 12, 1), retention_days=365, dry_run=True)
    assert dry.deleted == 1 and old.exists()
    report = purge_recordings(tmp_path, today=date(2026, 12, 1), retention_days=365)

    assert report.deleted == 1 and report.days == ["2025-11-01"] and report.bytes == size
    assert not old.exists() and (old.parent / "README").exists() and "README" in report.skipped
    assert kept.exists() and outside.exists()
    assert "notes" in report.skipped and any("13" in s for s in report.skipped)
    assert report.failed == []


def test_the_spool_loses_only_recordings_older_than_a_day(tmp_path):
    stale, fresh = tmp_path / "1764000000.1.wav", tmp_path / "1764000000.2-call.wav"
    other = tmp_path / "notes.txt"      # a spool directory set by mistake keeps what is not a recording
    for path in (stale, fresh, other):
        path.write_bytes(b"a" * 10)
    os.utime(stale, (1_000_000, 1_000_000))
    os.utime(other, (1_000_000, 1_000_000))
    report = purge_spool(tmp_path, now=1_000_000 + 24 * 3600 + 1)
    assert report.deleted == 1 and not stale.exists() and fresh.exists() and other.exists()
    assert purge_spool(tmp_path / "missing").deleted == 0
