"""A full state disk (SQLite's own SQLITE_FULL, from a capped database; ENOSPC for files) never costs a caller the
menu, the agent or the screen-pop, is logged once, shows in the status, and heals without a restart. The same on
a real tiny file system runs in tests/integration/test_full_disk.py."""
import errno
import json
import logging
import os
from pathlib import Path

import pytest

from gateway.basics.status_file import STATUS_FILE_BYTES, write_status_file
from gateway.basics.write_health import WriteHealth, failure_kind, unless_disk_fails
from gateway.store.database import Store
from gateway.store.outbox import Outbox, OutboxFull, SpillingOutboxStore
from ivr.speech.capture import CaptureResult
from ivr.triage.prefill import TicketPrefill
from tests.unit.test_callflow import MOBILE, NOW, FakeAGI, flow, restrict

TOPIC = "hotline/agents/agent1/screenpop"


async def fill(store: Store) -> None:
    """Cap the database at its current size: SQLite then refuses every new page with SQLITE_FULL. The pages it
    has keep some room, as a real disk's last blocks do: fill the tables a call writes until each refuses."""
    pages = (await store._db.execute_fetchall("PRAGMA page_count"))[0][0]
    await store._db.execute(f"PRAGMA max_page_count = {pages}")
    for size in (3000, 300, 30, 1):
        await _until_refused(lambda i, size=size: store.outbox_add("filler", {"pad": "x" * size},
                                                                    message_id=f"filler-{size}-{i}", at=NOW))
    await _until_refused(lambda i: store.enter_call(call_id=f"filler.{i}", number=None, channel="x", at=NOW))
    await _until_refused(lambda i: store.create_ticket_draft(call_id=f"filler.{i}", request_type=None,
                                                             created_at=NOW))


async def _until_refused(write) -> None:
    for i in range(100_000):
        try:
            await write(i)
        except Exception:  # noqa: BLE001
            return
    raise AssertionError("the capped database never refused a write")


async def free(store: Store) -> None:
    await store._db.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "hotline.db")
    yield s
    await s.close()


def test_disk_failures_are_told_apart_from_the_writers_own_errors():
    import sqlite3
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = 0x0A0A                                      # SQLITE_IOERR_READ: an extended code
    assert failure_kind(full) == "disk_full" and failure_kind(io) == "io_error"
    assert failure_kind(OSError(errno.ENOSPC, "No space left on device")) == "disk_full"
    assert failure_kind(OSError(errno.EIO, "Input/output error")) == "io_error"
    assert failure_kind(ValueError("callback_number: not a number")) is None
    assert failure_kind(sqlite3.IntegrityError("UNIQUE constraint failed")) is None


# -- calls -------------------------------------------------------------------------------------------------------

async def test_a_caller_goes_through_the_menu_to_the_queue_when_the_store_is_full(store, caplog):
    await fill(store)
    caplog.set_level(logging.INFO)
    for i in range(20):
        agi = FakeAGI(MOBILE, keys={"welcome": "3"}, uniqueid=f"1772330400.{100 + i}")
        await flow(store).entry(agi)
        assert agi.variables["HOTLINE_ACTION"] == "queue"
        assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "complaint", "the menu ran, not the fault path"
        assert agi.played == ["welcome", "transfer_agent"]
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert sum("event=state_write_failed" in m for m in messages) == 1, messages
    assert not [m for m in messages if "gateway_fault" in m or "exc=" in m], messages
    assert store.health.failed_writes > 20 and store.health.failing("store") == "disk_full"


async def test_a_restricted_caller_is_still_refused_when_the_store_is_full(store):
    await restrict(store)
    await fill(store)
    agi = FakeAGI(MOBILE)
    await flow(store).entry(agi)
    assert agi.played[0] == "restricted_intro"
    assert agi.variables["HOTLINE_ACTION"] == "hangup"


async def test_calls_are_recorded_again_once_the_disk_has_room(store, caplog):
    await fill(store)
    await flow(store).entry(FakeAGI(MOBILE, keys={"welcome": "1"}, uniqueid="1772330400.1"))
    assert await store.get_call("1772330400.1") is None
    await free(store)
    caplog.set_level(logging.WARNING)
    agi = FakeAGI(MOBILE, keys={"welcome": "1"}, uniqueid="1772330400.2")
    await flow(store).entry(agi)
    assert (await store.get_call("1772330400.2"))["request_type"] == "consultation"
    assert agi.variables["__HOTLINE_TICKET_ID"]
    assert store.health.ok
    assert any("event=state_write_recovered target=store kind=disk_full" in r.getMessage() for r in caplog.records)


# -- screen-pops -------------------------------------------------------------------------------------------------

class FullDisk:
    """The store's outbox methods, refusing every write with SQLite's SQLITE_FULL while ``full`` (as a disk
    whose WAL cannot grow does: deletes too); reads go through."""

    def __init__(self, store: Store) -> None:
        self.store, self.full = store, False

    def _refuse(self) -> None:
        import sqlite3
        if self.full:
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorcode = sqlite3.SQLITE_FULL
            raise exc

    async def outbox_add(self, *args, **kwargs):
        self._refuse()
        return await self.store.outbox_add(*args, **kwargs)

    async def outbox_remove(self, seq):
        self._refuse()
        return await self.store.outbox_remove(seq)

    async def outbox_mark_attempt(self, seq, error):
        self._refuse()
        return await self.store.outbox_mark_attempt(seq, error)

    async def outbox_claim(self, claimant, limit=100):
        self._refuse()
        return await self.store.outbox_claim(claimant, limit)

    async def outbox_pending(self, limit=100):
        return await self.store.outbox_pending(limit)


async def test_pops_the_full_store_refuses_wait_in_memory_behind_the_stored_ones_in_order(store):
    disk = FullDisk(store)
    outbox_store = SpillingOutboxStore(disk)
    outbox = Outbox(outbox_store, clock=lambda: NOW)
    await outbox.put(TOPIC, {"n": 0}, message_id="m0")
    disk.full = True
    seqs = [await outbox.put(TOPIC, {"n": i}, message_id=f"m{i}") for i in range(1, 6)]
    assert all(seq < 0 for seq in seqs) and outbox_store.spilled == 5
    pending = await outbox_store.outbox_pending(1000)
    assert [r["message_id"] for r in pending] == [f"m{i}" for i in range(6)]

    # the publisher sends m0 (a stored row the full store will not delete) and m1 (from memory)
    for row in pending[:2]:
        await outbox_store.outbox_remove(row["seq"])
    await outbox_store.outbox_mark_attempt(pending[2]["seq"], "broker away")
    assert [r["message_id"] for r in await outbox_store.outbox_pending(1000)] == [f"m{i}" for i in range(2, 6)], \
        "a sent row is not sent again although the store kept it"
    assert outbox_store.unremoved == 1

    disk.full = False
    after = await outbox_store.outbox_pending(1000)
    assert [r["message_id"] for r in after] == [f"m{i}" for i in range(2, 6)]
    assert outbox_store.spilled == 0 and all(r["seq"] > 0 for r in after), "memory went back to the store"
    assert outbox_store.unremoved == 0
    assert [r["message_id"] for r in await store.outbox_pending(1000)] == [f"m{i}" for i in range(2, 6)], \
        "the delete the full store refused was done later"


async def test_the_memory_spill_is_bounded_and_says_so(store):
    disk = FullDisk(store)
    outbox_store = SpillingOutboxStore(disk, limit=3)
    disk.full = True
    for i in range(3):
        await outbox_store.outbox_add(TOPIC, {"n": i}, message_id=f"m{i}", at=NOW)
    assert await outbox_store.outbox_add(TOPIC, {"n": 0}, message_id="m0", at=NOW) < 0   # a repeat is no new row
    with pytest.raises(OutboxFull):
        await outbox_store.outbox_add(TOPIC, {"n": 3}, message_id="m3", at=NOW)


async def test_other_store_errors_are_not_taken_for_a_full_disk(store):
    outbox_store = SpillingOutboxStore(store)
    with pytest.raises(ValueError):
        await outbox_store.outbox_add(TOPIC, {"n": 1}, message_id="", at=NOW)
    assert outbox_store.spilled == 0


# -- recordings and the pre-fill ---------------------------------------------------------------------------------

async def test_a_recording_the_disk_refuses_costs_only_the_file(store, tmp_path, monkeypatch, caplog):
    from ivr.speech import capture
    offers = []

    async def on_emergency(**kwargs):
        offers.append(kwargs)

    health = WriteHealth()
    prefill = TicketPrefill(store, recordings_dir=tmp_path / "rec", clock=lambda: NOW, on_emergency=on_emergency,
                            health=health)
    await flow(store).entry(FakeAGI(MOBILE, keys={"welcome": "2"}, uniqueid="1772330400.9"))

    def no_space(path, pcm):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(capture, "write_wav", no_space)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        await prefill(CaptureResult(call_id="1772330400.9", pcm=b"\x00\x01" * 800, transcript="家里着火了",
                                    ended_by="silence"))
    draft = await store.ticket_draft_for_call("1772330400.9")
    assert draft["transcript"] == "家里着火了" and draft["emergency_situation"] == "fire"
    assert len(offers) == 3
    assert health.failing("recording") == "disk_full"
    assert sum("state_write_failed" in r.getMessage() for r in caplog.records) == 1


# -- the status file ---------------------------------------------------------------------------------------------

def test_the_status_file_is_rewritten_in_place_when_no_new_file_can_be_made(tmp_path, monkeypatch):
    path = tmp_path / "run" / "gateway.status.json"
    write_status_file(path, json.dumps({"ami_ready": True, "n": 1}))
    assert path.stat().st_size == STATUS_FILE_BYTES
    inode = path.stat().st_ino

    def refuse(self, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "replace", refuse)
    write_status_file(path, json.dumps({"ami_ready": False, "state_writes": {"ok": False}}))
    assert json.loads(path.read_text()) == {"ami_ready": False, "state_writes": {"ok": False}}
    assert path.stat().st_ino == inode and not (tmp_path / "run" / "gateway.status.tmp").exists()


def test_without_an_old_status_file_the_failure_is_raised(tmp_path, monkeypatch):
    def refuse(self, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "replace", refuse)
    with pytest.raises(OSError):
        write_status_file(tmp_path / "gateway.status.json", "{}")
    assert os.listdir(tmp_path) == []


async def test_a_write_the_call_goes_on_without_gives_none_on_a_full_disk_and_raises_anything_else(caplog):
    async def full():
        raise OSError(errno.ENOSPC, "No space left on device")

    async def bad_value():
        raise ValueError("not a ticket id")

    async def fine():
        return "T-1"

    caplog.set_level(logging.DEBUG, logger="test.disk")
    logger = logging.getLogger("test.disk")
    assert await unless_disk_fails(full(), logger, "draft_skipped", call="c1") is None
    assert "event=draft_skipped" in caplog.text and "kind=disk_full" in caplog.text
    assert await unless_disk_fails(fine(), logger, "draft_skipped") == "T-1"
    with pytest.raises(ValueError):
        await unless_disk_fails(bad_value(), logger, "draft_skipped")
