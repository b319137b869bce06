"""`hotline recordings purge` on real files, and the service's daily purge."""
import argparse
import asyncio
import json
import logging
from datetime import datetime
from types import SimpleNamespace

import pytest

from gateway.basics.clock import SHANGHAI
from gateway.cli import recordings as cli_recordings
from recordings.daily_purge import purge_recordings_daily
from gateway.store.database import Store
from recordings.files import recording_path, write_wav
from tests.conftest import store_section


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(speech=SimpleNamespace(recordings_dir=tmp_path / "rec", local_recording_dir=tmp_path / "spool"),
                           recordings=SimpleNamespace(retention_days=30),
                           store=store_section(tmp_path / "hotline.sqlite"))


@pytest.fixture
def run(config, capsys, monkeypatch):
    monkeypatch.setattr(cli_recordings, "now", lambda: datetime(2026, 12, 1, 10, tzinfo=SHANGHAI))
    parser = argparse.ArgumentParser(prog="hotline")
    cli_recordings.register(parser.add_subparsers(dest="command", required=True))

    async def run(*argv: str):
        args = parser.parse_args(argv)
        code = await args.func(args, config)
        return code, capsys.readouterr()

    return run


async def test_purge_deletes_the_days_past_retention(run, config):
    old = write_wav(recording_path(config.speech.recordings_dir, "a", datetime(2026, 10, 1)), b"\0\0" * 100)
    new = write_wav(recording_path(config.speech.recordings_dir, "b", datetime(2026, 11, 20)), b"\0\0" * 100)
    code, out = await run("recordings", "purge", "--dry-run")
    assert code == 0 and "would delete 1 files" in out.out and old.exists()
    code, out = await run("recordings", "purge", "--json")
    assert code == 0 and json.loads(out.out)["recordings"]["days"] == ["2026-10-01"]
    assert not old.exists() and new.exists()


async def test_the_daily_purge_runs_and_keeps_running(config, caplog):
    old = write_wav(recording_path(config.speech.recordings_dir, "a", datetime(2025, 1, 1)), b"\0\0" * 100)
    with caplog.at_level(logging.INFO, logger="recordings.daily_purge"):
        store = await Store.open(config.store.location)
        task = asyncio.create_task(purge_recordings_daily(
            store, config.speech.recordings_dir, config.speech.local_recording_dir,
            retention_days=config.recordings.retention_days, first_after_s=0, every_s=0.05))
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    assert not old.exists()
    assert sum("event=recordings_purged" in r.getMessage() for r in caplog.records) >= 2
