"""`hotline announce add|remove|list` (art. 18): times in the hotline's civil time, clear errors, the latest added
wins."""
import json
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from gateway.announcement import prompt_name
from gateway.basics.clock import SHANGHAI
from gateway.cli import announce as cli_announce
from gateway.store.database import Store
from tests.conftest import store_section

TEXT = "赤坎区供水管道爆裂，正在抢修，预计今晚八点恢复供水。"


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(store=store_section(tmp_path / "state" / "hotline.sqlite"),
                           gateway=SimpleNamespace(tz=SHANGHAI), ivr=SimpleNamespace(espeak_voice="cmn-latn-pinyin"))


@pytest.fixture
def clock(monkeypatch):
    state = SimpleNamespace(now=datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI))
    monkeypatch.setattr(cli_announce, "now", lambda: state.now)
    return state


@pytest.fixture
def run(cli, config, clock):
    return cli(config, cli_announce)


async def stored(config):
    async with await Store.open(config.store.location) as store:
        return await store.list_announcements(datetime(2000, 1, 1, tzinfo=SHANGHAI), include_ended=True)


async def test_add_stores_the_announcement_with_its_prompt_and_says_until_when(run, config):
    code, out, err = await run("announce", "add", "--text", TEXT, "--until", "2026-12-01T20:00", "--by", "张主任")
    assert code == 0, err
    assert "announcement 1:" in out and "from 2026-12-01T09:00:00+08:00 until 2026-12-01T20:00:00+08:00" in out
    [a] = await stored(config)
    assert (a.text, a.created_by, a.prompt) == (TEXT, "张主任", prompt_name(TEXT, "cmn-latn-pinyin"))
    assert a.until == datetime(2026, 12, 1, 20, 0, tzinfo=SHANGHAI)


async def test_times_are_read_in_the_configured_zone_unless_an_offset_is_given(run, config):
    config.gateway.tz = ZoneInfo("Asia/Urumqi")      # UTC+6
    await run("announce", "add", "--text", "a", "--from", "2026-12-01T12:00", "--until", "2026-12-01T20:00+08:00",
              "--by", "li")
    [a] = await stored(config)
    assert a.starts_at == datetime(2026, 12, 1, 14, 0, tzinfo=SHANGHAI)
    assert a.until == datetime(2026, 12, 1, 20, 0, tzinfo=SHANGHAI)


async def test_add_json_and_relative_times(run, clock):
    code, out, _ = await run("announce", "add", "--text", TEXT, "--until", "+4h", "--from", "+1h", "--by", "li",
                             "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["state"], shown["starts_at"], shown["until"]) == (
        "to begin", "2026-12-01T10:00:00+08:00", "2026-12-01T13:00:00+08:00")


@pytest.mark.parametrize("argv, message", [
    (["--text", "  ", "--until", "+1h"], "text must not be empty"),
    (["--text", "停" * 151, "--until", "+1h"], "at most 150"),
    (["--text", "停水", "--until", "2026-12-01T08:59"], "not in the future"),
    (["--text", "停水", "--until", "+1h", "--from", "+2h"], "not after from"),
    (["--text", "停水", "--until", "tonight"], "time 'tonight': expected YYYY-MM-DDTHH:MM"),
    (["--text", "停水", "--until", "+1h", "--from", "2026-02-30T10:00"], "time '2026-02-30T10:00'"),
    (["--text", "停水", "--until", "+40d"], "at most 30 days"),
    (["--text", "停水", "--until", "+1h", "--by", " "], "--by must name the operator"),
])
async def test_bad_input_is_refused_with_a_clear_error_and_nothing_is_stored(run, config, argv, message):
    code, out, err = await run("announce", "add", *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err
    assert await stored(config) == []


async def test_the_operator_defaults_to_the_login_name(run, config, monkeypatch):
    monkeypatch.setattr(cli_announce.getpass, "getuser", lambda: "wang")
    await run("announce", "add", "--text", "停水", "--until", "+1h")
    assert (await stored(config))[0].created_by == "wang"


async def test_a_second_announcement_says_it_takes_the_place_of_the_first(run):
    await run("announce", "add", "--text", "停水", "--until", "+5h", "--by", "li")
    code, out, _ = await run("announce", "add", "--text", "停水更正", "--until", "+2h", "--by", "li")
    assert code == 0 and "takes the place of announcement 1" in out and "latest added wins" in out


async def test_list_shows_which_one_callers_hear(run, clock):
    await run("announce", "add", "--text", "停水", "--until", "+5h", "--by", "li")
    await run("announce", "add", "--text", "停水更正", "--until", "+2h", "--by", "li")
    await run("announce", "add", "--text", "明日停电", "--from", "+1d", "--until", "+2d", "--by", "li")
    code, out, _ = await run("announce", "list", "--json")
    assert code == 0
    assert [(a["id"], a["state"]) for a in json.loads(out)] == [(3, "to begin"), (2, "in force"), (1, "superseded")]
    clock.now += timedelta(hours=3)
    _, out, _ = await run("announce", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["id", "state", "from", "until", "by", "text"]
    assert [line.split()[:3] for line in lines[1:]] == [["3", "to", "begin"], ["1", "in", "force"]]


async def test_remove_stops_it_and_list_all_shows_it_removed(run, config, clock):
    await run("announce", "add", "--text", "停水", "--until", "+5h", "--by", "li")
    clock.now += timedelta(minutes=30)
    code, out, err = await run("announce", "remove", "1", "--by", "zhang")
    assert code == 0, err
    assert "announcement 1 removed at 2026-12-01T09:30:00+08:00 (by zhang)" in out
    _, out, _ = await run("announce", "list")
    assert out.strip() == "no announcement in force or to begin"
    _, out, _ = await run("announce", "list", "--all", "--json")
    [shown] = json.loads(out)
    assert (shown["state"], shown["removed_by"], shown["removed_at"]) == (
        "removed", "zhang", "2026-12-01T09:30:00+08:00")


async def test_removing_twice_or_an_unknown_id_removes_nothing(run):
    await run("announce", "add", "--text", "停水", "--until", "+5h", "--by", "li")
    await run("announce", "remove", "1", "--by", "li")
    code, _, err = await run("announce", "remove", "1", "--by", "li")
    assert code == 1 and "announcement 1 was removed before; nothing removed" in err
    code, _, err = await run("announce", "remove", "9", "--by", "li")
    assert code == 1 and "announcement 9 does not exist" in err


async def test_an_ended_announcement_is_listed_as_ended(run, clock):
    await run("announce", "add", "--text", "停水", "--until", "+1h", "--by", "li")
    clock.now += timedelta(hours=2)
    _, out, _ = await run("announce", "list", "--all", "--json")
    assert json.loads(out)[0]["state"] == "ended"
