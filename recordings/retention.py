"""How long recordings are kept, and purging them (Zhanjiang 12345 hotline rules, art. 20: callers' data is kept
as long as the office keeps its records, and no longer).

Two places hold caller audio:
- the recordings directory, by the day of the call: ``YYYY/MM/DD/<call id>.wav`` (the caller's description,
  ``recordings.files``) and ``<call id>-call.<ext>`` (the conversation, ``recordings.call_files``): a day's
  recordings are kept ``retention_days`` natural days after that day and purged from the day after; the caller of
  the purge marks the rows of the conversations it deleted (``PurgeReport.paths``);
- the fallback spool, where Asterisk records a queued caller when live capture cannot be used; the gateway reads
  and deletes a file when an agent answers, so what is left is a caller who hung up in the queue. Those files are
  purged once older than ``SPOOL_MAX_AGE_S``.

``expired`` is the decision (pure); the purge functions do file I/O and block: call them in an executor.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from gateway.basics.clock import SHANGHAI

__all__ = ["SPOOL_MAX_AGE_S", "PurgeReport", "expired", "purge_all", "purge_recordings", "purge_spool"]

log = logging.getLogger(__name__)

SPOOL_MAX_AGE_S = 24 * 3600     # no caller waits in the queue for a day
_YEAR, _TWO = re.compile(r"\d{4}"), re.compile(r"\d{2}")
# Only files that are recordings are ever deleted, so that a directory configured by mistake (a spool of "/tmp")
# loses nothing else: WAVs, named by call id as recordings.files and the dialplan's MixMonitor name them.
_RECORDING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.(?:wav|ogg|mp3)")


@dataclass
class PurgeReport:
    """What a purge removed and what it left alone (names it could not read as a day, files it could not delete)."""
    deleted: int = 0
    bytes: int = 0
    days: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)      # what was deleted (would be, on a dry run)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def expired(day: date, today: date, retention_days: int) -> bool:
    """True once a recording made on ``day`` has been kept ``retention_days`` natural days after it."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    return today > day + timedelta(days=retention_days)


def purge_recordings(base: Path, *, today: date, retention_days: int, dry_run: bool = False) -> PurgeReport:
    """Delete the recordings of every expired day under ``base`` (and the emptied day directories). Directories
    that are not ``YYYY/MM/DD`` and symbolic links are left alone and reported."""
    report = PurgeReport()
    if not base.is_dir():
        return report
    for year in sorted(base.iterdir()):
        for month in _children(year, _YEAR, report):
            for day_dir in _children(month, _TWO, report):
                if not _TWO.fullmatch(day_dir.name) or day_dir.is_symlink() or not day_dir.is_dir():
                    report.skipped.append(str(day_dir.relative_to(base)))
                    continue
                try:
                    day = date(int(year.name), int(month.name), int(day_dir.name))
                except ValueError:
                    report.skipped.append(str(day_dir.relative_to(base)))
                    continue
                if expired(day, today, retention_days):
                    report.days.append(day.isoformat())
                    _delete_files(day_dir, report, dry_run)
                    if not dry_run:
                        _remove_if_empty(day_dir, month, year)
    return report


def purge_spool(spool: Path, *, now: float | None = None, max_age_s: float = SPOOL_MAX_AGE_S,
                dry_run: bool = False) -> PurgeReport:
    """Delete fallback recordings older than ``max_age_s`` (abandoned calls): WAV files directly in ``spool``."""
    report = PurgeReport()
    if not spool.is_dir():
        return report
    cutoff = (time.time() if now is None else now) - max_age_s
    for path in sorted(spool.iterdir()):
        try:
            if path.is_symlink() or not path.is_file():
                continue
            stat = path.stat()
        except OSError:
            continue
        if stat.st_mtime < cutoff and _RECORDING_NAME.fullmatch(path.name):
            _delete(path, stat.st_size, report, dry_run)
    return report


def purge_all(recordings_dir: Path, spool: Path, *, at: datetime, retention_days: int,
              dry_run: bool = False) -> dict[str, PurgeReport]:
    """Both purges as of ``at`` (an aware time; the day is the hotline's, Asia/Shanghai)."""
    return {
        "recordings": purge_recordings(recordings_dir, today=at.astimezone(SHANGHAI).date(),
                                       retention_days=retention_days, dry_run=dry_run),
        "spool": purge_spool(spool, now=at.timestamp(), dry_run=dry_run),
    }


def _children(directory: Path, name: re.Pattern[str], report: PurgeReport) -> list[Path]:
    if directory.is_symlink() or not directory.is_dir() or not name.fullmatch(directory.name):
        report.skipped.append(directory.name)
        return []
    return sorted(directory.iterdir())


def _delete_files(day_dir: Path, report: PurgeReport, dry_run: bool) -> None:
    for path in sorted(day_dir.iterdir()):
        if path.is_file() and not path.is_symlink() and _RECORDING_NAME.fullmatch(path.name):
            _delete(path, path.stat().st_size, report, dry_run)
        else:
            report.skipped.append(path.name)


def _delete(path: Path, size: int, report: PurgeReport, dry_run: bool) -> None:
    if not dry_run:
        try:
            path.unlink()
        except OSError as exc:
            report.failed.append(f"{path.name}: {exc.strerror or exc}")
            return
    report.deleted += 1
    report.bytes += size
    report.paths.append(str(path))


def _remove_if_empty(*directories: Path) -> None:
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:     # not empty (another day, a file that could not go): it stays
            return
