"""The incident announcement in the call (art. 18): right after the welcome, before the wait for a key, cut short
by a key that is then the menu choice; never for a restricted caller; a fault costs the announcement, not the call."""
from datetime import timedelta

import pytest

from gateway.announcements_in_force import AnnouncementsInForce
from gateway.callflow import CallFlow, CallFlowSettings
from tests.unit.test_callflow import CALL_ID, MENU, MOBILE, NOW, SHANGHAI, FakeAGI, restrict

TEXT = "赤坎区供水管道爆裂，正在抢修，预计今晚八点恢复供水。"


class NoSynthesis:
    async def __call__(self, name, text, dest, *, voice):
        raise AssertionError("the file is there: nothing to make")


@pytest.fixture
async def live(store, tmp_path):
    """The store's announcements as the service wires them, with a sound file already made for ``TEXT``."""
    added = await store.add_announcement(text=TEXT, prompt="announce_00000000000000aa",
                                         starts_at=NOW - timedelta(hours=1),
                                         until=NOW + timedelta(hours=5), created_by="lead1", at=NOW - timedelta(hours=1))
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / f"{added.prompt}.wav").write_bytes(b"RIFF")
    announcements = AnnouncementsInForce(store, sound_dir=tmp_path / "zh", voice="v", clock=lambda: NOW,
                                         synthesise=NoSynthesis())
    await announcements.for_call("warm-up")       # what the service's background refresh does at start
    while announcements._making:
        await next(iter(announcements._making.values()))
    yield announcements, added
    await announcements.close()


def flow(store, announcements):
    return CallFlow(store, MENU, CallFlowSettings(prompt_dir="/p", deadline_s=5, tz=SHANGHAI), clock=lambda: NOW,
                    announcements=announcements)


async def heard(store, call_id=CALL_ID):
    rows = await store._db.execute_fetchall("SELECT announcement_id FROM calls WHERE call_id = ?", (call_id,))
    return rows[0]["announcement_id"]


async def test_the_announcement_plays_after_the_welcome_and_before_the_wait_for_a_key(store, live):
    announcements, added = live
    agi = FakeAGI(MOBILE, waits=["2"])
    await flow(store, announcements).entry(agi)
    assert agi.trace[1:4] == [("play", "welcome"), ("play", added.prompt), ("wait",)]
    assert agi.escapes[:2] == ["0123456789*#", "0123456789*#"], "barge-in during the announcement too"
    call = await store.get_call(CALL_ID)
    assert (call["request_type"], call["ivr_path"]) == ("help", ["welcome", "2"])
    assert await heard(store) == added.id


async def test_a_key_during_the_announcement_is_the_menu_choice(store, live):
    announcements, added = live
    agi = FakeAGI(MOBILE, keys={added.prompt: "3"})
    await flow(store, announcements).entry(agi)
    assert ("wait",) not in agi.trace, "the key was the choice: no wait for another"
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "complaint"
    assert (await store.get_call(CALL_ID))["ivr_path"] == ["welcome", "3"]
    assert await heard(store) == added.id


async def test_a_key_during_the_welcome_skips_the_announcement(store, live):
    announcements, added = live
    agi = FakeAGI(MOBILE, keys={"welcome": "1"})
    await flow(store, announcements).entry(agi)
    assert added.prompt not in agi.played
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "consultation"
    assert await heard(store) is None


async def test_an_invalid_key_gets_the_retry_prompt_not_the_announcement_again(store, live):
    announcements, added = live
    agi = FakeAGI(MOBILE, keys={added.prompt: "7"}, waits=["5"])
    await flow(store, announcements).entry(agi)
    assert agi.played == ["welcome", added.prompt, "retry", "transfer_agent"]
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "suggestion"


async def test_a_caller_hanging_up_during_it_is_counted_as_answered_by_it(store, live):
    announcements, added = live
    agi = FakeAGI(MOBILE, hang_up_at=added.prompt)
    await flow(store, announcements).entry(agi)
    call = await store.get_call(CALL_ID)
    assert (call["outcome"], call["queued_at"]) == ("abandoned", None)
    figures = await store.announcement_figures(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert figures == [{"id": added.id, "text": TEXT, "heard": 1, "answered": 1}]


async def test_a_restricted_caller_does_not_hear_it(store, live):
    announcements, added = live
    await restrict(store)
    agi = FakeAGI(MOBILE)
    await flow(store, announcements).entry(agi)
    assert agi.variables["HOTLINE_ACTION"] == "hangup"
    assert added.prompt not in agi.played and "welcome" not in agi.played
    assert await heard(store) is None


async def test_a_sound_file_gone_missing_costs_the_announcement_not_the_menu(store, live, caplog):
    announcements, added = live
    agi = FakeAGI(MOBILE, missing_prompt=added.prompt, waits=["4"])
    await flow(store, announcements).entry(agi)
    assert "event=announcement_playback_failed" in caplog.text
    assert agi.variables["HOTLINE_ACTION"] == "queue" and agi.variables["__HOTLINE_REQUEST_TYPE"] == "report"
    assert (await store.get_call(CALL_ID))["outcome"] == "ivr", "queued from the menu, not as a failed call"


async def test_a_store_fault_while_looking_it_up_costs_the_announcement_not_the_call(store, tmp_path, caplog):
    async def broken(now):
        raise OSError("database unreachable")
    store.list_announcements = broken
    announcements = AnnouncementsInForce(store, sound_dir=tmp_path, voice="v", clock=lambda: NOW)
    agi = FakeAGI(MOBILE, waits=["2"])
    await flow(store, announcements).entry(agi)
    assert agi.played == ["welcome", "transfer_agent"]
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "help"
    assert "event=announcement_lookup_failed" in caplog.text
    await announcements.close()


async def test_a_store_fault_while_recording_it_was_heard_costs_only_the_record(store, live, caplog):
    announcements, added = live

    async def broken(call_id, announcement_id):
        raise OSError("disk I/O error")
    store.mark_call_announcement = broken
    agi = FakeAGI(MOBILE, keys={added.prompt: "2"})
    await flow(store, announcements).entry(agi)
    assert agi.variables["__HOTLINE_REQUEST_TYPE"] == "help"
    assert await heard(store) is None


async def test_without_an_announcement_in_force_the_call_is_as_before(store, tmp_path):
    announcements = AnnouncementsInForce(store, sound_dir=tmp_path, voice="v", clock=lambda: NOW)
    agi = FakeAGI(MOBILE, waits=["2"])
    await flow(store, announcements).entry(agi)
    assert agi.trace[1:3] == [("play", "welcome"), ("wait",)]
    await announcements.close()
