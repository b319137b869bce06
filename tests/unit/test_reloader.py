"""The emergency list is re-read when its file changes; a bad file is refused and the previous list stays."""

import asyncio
import logging
import threading

import pytest

from linkage import reloader
from linkage.emergency_list import DEFAULT_EMERGENCY_PATH, EmergencyListError
from linkage.reloader import EmergencyListHolder

SMOKE = "山 上 有 烟雾"


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "emergency.toml"
    p.write_text(DEFAULT_EMERGENCY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return p


@pytest.fixture
async def holder(path):
    h = EmergencyListHolder(path, poll_s=0.02)
    await h.start()
    yield h
    await h.close()


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def until(predicate, timeout=3.0):
    async def wait():
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), timeout)


async def test_an_edited_file_takes_effect_without_a_restart(holder, path):
    before = holder.current
    assert before.match(SMOKE) is None
    edit(path, 'keywords = ["着火"', 'keywords = ["烟雾", "着火"')
    await until(lambda: holder.current is not before)
    assert holder.current.match(SMOKE).situation == "fire"
    assert before.match(SMOKE) is None          # a call holding the old list keeps a consistent view


async def test_a_new_centre_timeout_is_picked_up(holder, path):
    edit(path, 'dial = "PJSIP/centre-119"\nanswer_timeout_s = 20', 'dial = "PJSIP/centre-119"\nanswer_timeout_s = 45')
    await until(lambda: holder.current.get_centre("119").answer_timeout_s == 45)


async def test_an_invalid_file_is_refused_logged_once_and_the_old_list_stays(holder, path, caplog):
    caplog.set_level(logging.INFO, logger="linkage.reloader")
    good = holder.current
    edit(path, 'answer_timeout_s = 20', 'answer_timeout_s = -1')
    await until(lambda: holder.last_error is not None)
    await asyncio.sleep(0.15)                   # several more polls of the same bad file
    assert holder.current is good
    refused = [r.getMessage() for r in caplog.records if "event=emergency_list_refused" in r.getMessage()]
    assert len(refused) == 1
    assert f"file={path}" in refused[0] and "centres.110.answer_timeout_s" in refused[0]
    assert "\n" not in refused[0]
    ok, error = await holder.reload_now()
    assert not ok and "centres.110.answer_timeout_s" in error and str(path) in error
    assert holder.status()["refused"] == error
    edit(path, 'answer_timeout_s = -1', 'answer_timeout_s = 25')
    await until(lambda: holder.current is not good)
    assert holder.current.get_centre("110").answer_timeout_s == 25 and holder.last_error is None
    assert holder.status()["refused"] is None


async def test_a_situation_naming_an_unconfigured_centre_is_refused(holder, path):
    good = holder.current
    edit(path, 'centres = ["119"]', 'centres = ["119", "forestry"]')
    ok, error = await holder.reload_now()
    assert not ok and "unknown centre 'forestry'" in error and holder.current is good


async def test_broken_toml_and_a_deleted_file_keep_the_old_list(holder, path):
    good = holder.current
    path.write_text("[[situation]\n", encoding="utf-8")
    await until(lambda: holder.last_error is not None)
    assert "not valid TOML" in holder.last_error and holder.current is good
    path.unlink()
    ok, error = await holder.reload_now()
    assert not ok and "cannot read" in error and holder.current is good


async def test_reload_now_reports_success_and_listeners_hear_of_the_new_list(path):
    holder = EmergencyListHolder(path, poll_s=60)
    heard = []
    holder.on_change(heard.append)
    holder.on_change(lambda lst: 1 / 0)         # a failing listener does not stop the swap
    edit(path, 'keywords = ["着火"', 'keywords = ["烟雾", "着火"')
    assert await holder.reload_now() == (True, None)
    assert heard == [holder.current] and holder.current.match(SMOKE).situation == "fire"


async def test_the_file_is_read_off_the_event_loop(holder, path, monkeypatch):
    threads = set()
    real = reloader._snapshot

    def spy(p):
        threads.add(threading.get_ident())
        return real(p)

    monkeypatch.setattr(reloader, "_snapshot", spy)
    await until(lambda: threads)
    assert threading.get_ident() not in threads


def test_an_unusable_file_at_start_is_an_error(tmp_path):
    bad = tmp_path / "emergency.toml"
    bad.write_text("version = 1\n[[situation]]\nid = 'x'\n", encoding="utf-8")
    with pytest.raises(EmergencyListError):
        EmergencyListHolder(bad)
    assert EmergencyListHolder().current.get_centre("119") is not None   # the packaged default


async def test_close_stops_polling(path):
    holder = EmergencyListHolder(path, poll_s=0.01)
    await holder.start()
    await holder.close()
    good = holder.current
    edit(path, 'keywords = ["着火"', 'keywords = ["烟雾", "着火"')
    await asyncio.sleep(0.1)
    assert holder.current is good


async def test_a_valid_list_a_check_refuses_is_not_put_in_force_and_says_why(holder, path, caplog):
    before = holder.current
    refused = []

    async def broker_check(new):
        refused.append(new)
        raise RuntimeError("mosquitto is not running: centre-forest has no broker user")

    holder.add_check(broker_check)
    edit(path, 'name = "消防 119"', 'name = "消防119"')
    await until(lambda: holder.last_error is not None)
    assert holder.current is before and len(refused) == 1
    assert holder.last_error.startswith(f"{path}: centres: mosquitto is not running")
    assert "previous list stays in force" in holder.last_error and holder.status()["refused"] == holder.last_error
    assert "event=emergency_list_refused" in caplog.text
    assert await holder.reload_now() == (False, holder.last_error), "asked again, refused again"


async def test_a_list_every_check_accepts_is_put_in_force(holder, path):
    seen = []

    async def accept(new):
        seen.append(new)

    holder.add_check(accept)
    edit(path, 'name = "消防 119"', 'name = "消防119"')
    await until(lambda: holder.current.get_centre("119").label == "消防119")
    assert seen == [holder.current] and holder.last_error is None


async def test_an_invalid_file_never_reaches_the_checks(holder, path):
    called = []

    async def check(new):
        called.append(new)

    holder.add_check(check)
    edit(path, 'answer_timeout_s = 20', 'answer_timeout_s = 0')
    await until(lambda: holder.last_error is not None)
    assert called == []
