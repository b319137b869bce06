"""The announcement a call hears (art. 18): read from the store within seconds of a change, played only once this
gateway has its sound file, made in the background; a store or a synthesiser that fails costs the announcement,
never the call."""
import asyncio
import logging
from datetime import datetime, timedelta

import pytest

from gateway.announcement import Announcement
from gateway.announcements_in_force import AnnouncementsInForce
from gateway.basics.clock import SHANGHAI
from ivr.prompts import PromptBuildError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)


def announcement(id, text="停水通知", hours=10):
    return Announcement(id=id, text=text, prompt=f"announce_{id:016d}", starts_at=T0,
                        until=T0 + timedelta(hours=hours), created_by="lead1", created_at=T0)


class FakeStore:
    def __init__(self, *listed):
        self.listed = list(listed)
        self.reads = 0
        self.fail: Exception | None = None
        self.marked: list[tuple[str, int]] = []
        self.mark_fails = False

    async def list_announcements(self, now):
        self.reads += 1
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return [a for a in self.listed if a.until > now]

    async def mark_call_announcement(self, call_id, announcement_id):
        if self.mark_fails:
            raise OSError("database gone")
        self.marked.append((call_id, announcement_id))


class FakeSynthesiser:
    """Stands in for espeak-ng: writes a few bytes where the WAV would go, or fails as told."""

    def __init__(self):
        self.made: list[tuple[str, str, str]] = []
        self.fail = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, name, text, dest, *, voice):
        await self.gate.wait()
        if self.fail:
            raise PromptBuildError(f"prompt {name!r}: espeak-ng failed")
        dest.write_bytes(b"RIFF....WAVE")
        self.made.append((name, text, voice))


@pytest.fixture
def clock():
    class Clock:
        now = T0
    return Clock


def live(store, tmp_path, clock, synth, fresh_s=3.0):
    return AnnouncementsInForce(store, sound_dir=tmp_path / "zh", voice="cmn-latn-pinyin", clock=lambda: clock.now,
                                fresh_s=fresh_s, synthesise=synth)


async def settle(announcements):
    for _ in range(20):
        await asyncio.sleep(0)
    while announcements._making:
        await asyncio.gather(*announcements._making.values(), return_exceptions=True)


async def test_the_first_call_goes_on_without_it_while_the_file_is_made_then_calls_hear_it(tmp_path, clock, caplog):
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    with caplog.at_level(logging.WARNING):
        assert await a.for_call("c1") is None
    assert "event=announcement_not_ready announcement=1" in caplog.text
    await settle(a)
    assert synth.made == [("announce_0000000000000001", "停水通知", "cmn-latn-pinyin")]
    assert (tmp_path / "zh" / "announce_0000000000000001.wav").read_bytes() == b"RIFF....WAVE"
    assert not [p for p in (tmp_path / "zh").iterdir() if p.name.startswith(".")], "no partial file left"
    assert (await a.for_call("c2")).id == 1


async def test_a_file_already_there_is_used_without_making_it_again(tmp_path, clock):
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "announce_0000000000000001.wav").write_bytes(b"made by the other gateway")
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    await a.for_call("c1")
    await settle(a)
    assert (await a.for_call("c2")).id == 1 and synth.made == []


async def test_the_background_refresh_makes_files_before_any_call(tmp_path, clock):
    store, synth = FakeStore(announcement(1), announcement(2, text="明日停电")), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth, fresh_s=0.01)
    await a.start()
    try:
        for _ in range(200):
            if len(synth.made) == 2:
                break
            await asyncio.sleep(0.01)
        assert sorted(name for name, _, _ in synth.made) == ["announce_0000000000000001", "announce_0000000000000002"]
        assert (await a.for_call("c1")).id == 2, "the latest added"
    finally:
        await a.close()


async def test_a_change_reaches_calls_once_the_list_is_older_than_fresh_s(tmp_path, clock, monkeypatch):
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    monotonic = [100.0]
    monkeypatch.setattr("gateway.announcements_in_force.time.monotonic", lambda: monotonic[0])
    await a.for_call("c1")
    await settle(a)
    assert (await a.for_call("c2")).id == 1
    store.listed = []                              # removed
    monotonic[0] += 2.9
    assert (await a.for_call("c3")).id == 1, "within fresh_s the list read before holds"
    monotonic[0] += 0.2
    assert await a.for_call("c4") is None
    assert store.reads == 2


async def test_many_calls_finding_the_list_old_share_one_read(tmp_path, clock):
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    await asyncio.gather(*(a.for_call(f"c{n}") for n in range(50)))
    assert store.reads == 1


async def test_an_announcement_that_has_ended_is_not_heard(tmp_path, clock):
    store, synth = FakeStore(announcement(1, hours=1)), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    await a.for_call("c1")
    await settle(a)
    clock.now = T0 + timedelta(hours=1)            # the list is fresh, but its until has come
    assert await a.for_call("c2") is None


async def test_a_store_that_fails_costs_the_announcement_not_the_call_and_is_logged_once(tmp_path, clock, caplog,
                                                                                          monkeypatch):
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    monotonic = [100.0]
    monkeypatch.setattr("gateway.announcements_in_force.time.monotonic", lambda: monotonic[0])
    await a.for_call("c1")
    await settle(a)
    store.fail = OSError("connection refused")
    with caplog.at_level(logging.INFO):
        for n in range(3):
            monotonic[0] += 5
            assert await a.for_call(f"c{n}") is None
        assert caplog.text.count("event=announcement_lookup_failed") == 1
        store.fail = None
        monotonic[0] += 5
        assert (await a.for_call("c9")).id == 1
    assert "event=announcement_lookup_recovered" in caplog.text


async def test_a_store_that_hangs_costs_the_call_at_most_the_lookup_timeout(tmp_path, clock, monkeypatch):
    monkeypatch.setattr("gateway.announcements_in_force.LOOKUP_TIMEOUT_S", 0.05)
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()

    async def hangs(now):
        await asyncio.sleep(30)
    store.list_announcements = hangs
    a = live(store, tmp_path, clock, synth)
    async with asyncio.timeout(1):
        assert await a.for_call("c1") is None
    await a.close()


async def test_a_file_that_cannot_be_made_is_logged_and_tried_again_a_minute_later(tmp_path, clock, caplog,
                                                                                    monkeypatch):
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    synth.fail = True
    monotonic = [100.0]
    monkeypatch.setattr("gateway.announcements_in_force.time.monotonic", lambda: monotonic[0])
    a = live(store, tmp_path, clock, synth)
    with caplog.at_level(logging.ERROR):
        await a.for_call("c1")
        await settle(a)
    assert "event=announcement_prompt_failed announcement=1" in caplog.text
    assert not list((tmp_path / "zh").iterdir()), "no partial file left"
    synth.fail = False
    monotonic[0] += 10
    assert await a.for_call("c2") is None
    await settle(a)
    assert synth.made == [], "not tried again within the minute"
    monotonic[0] += 60
    await a.for_call("c3")
    await settle(a)
    assert (await a.for_call("c4")).id == 1


async def test_a_prompt_name_that_could_leave_the_directory_is_never_made(tmp_path, clock, caplog):
    bad = Announcement(id=7, text="x", prompt="../../etc/passwd", starts_at=T0, until=T0 + timedelta(hours=1),
                       created_by="x", created_at=T0)
    store, synth = FakeStore(bad), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    assert await a.for_call("c1") is None
    await settle(a)
    assert synth.made == [] and "event=announcement_prompt_refused announcement=7" in caplog.text


async def test_heard_is_recorded_and_a_failing_record_is_only_logged(tmp_path, clock, caplog):
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    a = live(store, tmp_path, clock, synth)
    await a.heard("c1", announcement(1))
    assert store.marked == [("c1", 1)]
    store.mark_fails = True
    await a.heard("c2", announcement(1))            # does not raise
    assert "event=announcement_mark_failed" in caplog.text


async def test_close_stops_a_file_being_made(tmp_path, clock):
    store, synth = FakeStore(announcement(1)), FakeSynthesiser()
    synth.gate.clear()
    a = live(store, tmp_path, clock, synth)
    await a.for_call("c1")
    await asyncio.sleep(0)
    assert a._making
    await a.close()
    assert synth.made == []
