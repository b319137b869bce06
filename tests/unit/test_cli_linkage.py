"""`hotline linkage list|match|handoffs`."""

import argparse
import json
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from gateway.cli import linkage as cli_linkage
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from linkage.emergency_list import DEFAULT_EMERGENCY_PATH, load_emergency_list
from tests.conftest import store_section

T0 = datetime(2026, 11, 27, 9, 30, tzinfo=SHANGHAI)


@pytest.fixture
def config(tmp_path):
    return SimpleNamespace(store=store_section(tmp_path / "hotline.sqlite"))


@pytest.fixture
def run(config, capsys):
    parser = argparse.ArgumentParser(prog="hotline")
    cli_linkage.register(parser.add_subparsers(dest="command", required=True))

    async def run(*argv: str, cfg=config):
        args = parser.parse_args(argv)
        capsys.readouterr()
        code = await args.func(args, cfg)
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_list_shows_situations_in_order_and_centres(run):
    code, out, _ = await run("linkage", "list")
    assert code == 0 and str(DEFAULT_EMERGENCY_PATH) in out
    assert "power > 119 > 110" in out and "PJSIP/centre-119" in out and "电线断落" in out
    code, out, _ = await run("linkage", "list", "--json")
    listing = json.loads(out)
    fallen = next(s for s in listing["situations"] if s["id"] == "fallen_wire")
    loaded = load_emergency_list().get("fallen_wire")
    assert fallen == {"id": "fallen_wire", "name": "电线断落", "menu_key": "6", "centres": ["power", "119", "110"],
                      "confirm": True, "category": "供电", "keywords": len(loaded.keywords),
                      "frames": len(loaded.frames), "cancel": len(loaded.cancel)}
    assert fallen["frames"] >= 1 and fallen["keywords"] >= 14
    fire = next(c for c in listing["centres"] if c["name"] == "119")
    assert (fire["dial"], fire["answer_timeout_s"], fire["push"]) == ("PJSIP/centre-119", 20.0, "mqtt")


@pytest.mark.parametrize("text,expected", [
    ("救命 啊 我 家 着火 了", {"situation": "fire", "centre": "119", "centres": ["119"], "confirm": True,
                          "keyword": "着火", "how": "keyword", "heard": ["着火"]}),
    ("电线 着火 了 还 冒烟", {"situation": "fallen_wire", "centre": "power", "centres": ["power", "119", "110"],
                         "confirm": True, "keyword": "电线着火", "how": "keyword"}),
    ("我 想 咨询 一下 消防检查 需要 准备 什么", {"situation": None, "centre": None, "centres": [],
                                      "confirm": False, "keyword": None, "how": None}),
])
async def test_match_json_says_where_a_transcript_would_go(run, text, expected):
    code, out, _ = await run("linkage", "match", text, "--json")
    record = json.loads(out)
    assert code == 0 and {k: record[k] for k in expected} == expected


async def test_match_explains_a_frame_a_sound_alike_and_a_cancelling_context(run):
    frame = json.loads((await run("linkage", "match", "阿婆 喺 楼梯 跌咗 落嚟 起唔到身", "--json"))[1])
    assert frame["situation"] == "medical" and frame["how"] == "frame"
    assert frame["heard"][0].startswith("frame ") and "摔倒" in " ".join(frame["heard"])
    homophone = json.loads((await run("linkage", "match", "我 爸 突然 喘 不 过 起 来", "--json"))[1])
    assert homophone["situation"] == "medical" and "喘不过气 (heard 喘不过起, pinyin)" in homophone["heard"]
    # a two-character phrase heard only by sound is not enough alone (拿到 is not 拿刀) ...
    assert json.loads((await run("linkage", "match", "楼上 火在 烧", "--json"))[1])["situation"] is None
    # ... but counts beside a second phrase of the same situation
    backed = json.loads((await run("linkage", "match", "楼上 火在 烧 好 多 浓烟", "--json"))[1])
    assert backed["situation"] == "fire" and "火灾 (heard 火在, pinyin)" in backed["heard"]
    cancelled = json.loads((await run("linkage", "match", "上个月 着火 的 事 处理 得 怎么样", "--json"))[1])
    assert cancelled["situation"] is None and cancelled["cancelled"] == ["fire: 上个月"]
    code, out, _ = await run("linkage", "match", "上个月 着火 的 事 处理 得 怎么样")
    assert code == 0 and "set aside: fire: 上个月" in out


async def test_match_in_words(run):
    assert "fire (火灾) on '着火': 119, after the caller confirms" in (await run("linkage", "match", "着火了"))[1]
    assert "ordinary queue" in (await run("linkage", "match", "路灯坏了"))[1]


async def test_the_configured_list_is_used_and_an_invalid_one_is_refused_with_its_field(run, tmp_path):
    path = tmp_path / "emergency.toml"
    path.write_text(DEFAULT_EMERGENCY_PATH.read_text(encoding="utf-8").replace(
        'id = "fire"\nname = "火灾"\ncentres = ["119"]\nmenu_key = "2"\ncategory = "消防安全"\nconfirm = true',
        'id = "fire"\nname = "火灾"\ncentres = ["119"]\nmenu_key = "2"\ncategory = "消防安全"\nconfirm = false'),
        encoding="utf-8")
    cfg = SimpleNamespace(linkage=SimpleNamespace(emergency_list=str(path)))
    code, out, _ = await run("linkage", "match", "着火了", "--json", cfg=cfg)
    assert code == 0 and json.loads(out)["confirm"] is False
    empty = SimpleNamespace(linkage=SimpleNamespace(emergency_list=""))
    assert json.loads((await run("linkage", "match", "着火了", "--json", cfg=empty))[1])["confirm"] is True
    path.write_text(path.read_text(encoding="utf-8").replace('push = "mqtt"', 'push = "pigeon"', 1), encoding="utf-8")
    for command in (("list",), ("match", "着火了", "--json")):
        code, out, err = await run("linkage", *command, cfg=cfg)
        assert code == 2 and out == "" and f"{path}: centres.110.push" in err and "'pigeon'" in err
    code, _, err = await run("linkage", "list", "--file", str(DEFAULT_EMERGENCY_PATH), cfg=cfg)
    assert code == 0


async def test_handoffs_show_timings_result_and_push_state(run, config):
    async with await Store.open(config.store.location) as store:
        first = await store.add_handoff(call_id="c1", centre="power", trigger="speech", mode="blind",
                                        requested_at=T0, situation="fallen_wire", ticket_id="2026112700001")
        await store.update_handoff(first, ring_at=T0 + timedelta(seconds=1), result="no_answer",
                                   ended_at=T0 + timedelta(seconds=31))
        second = await store.add_handoff(call_id="c1", centre="119", trigger="speech", mode="blind",
                                         requested_at=T0 + timedelta(seconds=31), situation="fallen_wire")
        await store.update_handoff(second, ring_at=T0 + timedelta(seconds=32), answered_at=T0 + timedelta(seconds=38),
                                   result="answered")
        pid = await store.add_push(push_id="p1", handoff_id=second, call_id="c1", centre="119", adapter="http", at=T0)
        await store.update_push(pid, state="sent", attempts=3)
        await store.add_handoff(call_id="c2", centre="120", trigger="menu", mode="threeway", requested_at=T0)
    code, out, _ = await run("linkage", "handoffs", "--call", "c1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "CALL", "SITUATION", "CENTRE"] and len(lines) == 3
    assert "119" in lines[1] and "+1.0s" in lines[1] and "+7.0s" in lines[1] and "answered" in lines[1]
    assert "http sent x3" in lines[1] and "no_answer" in lines[2]
    code, out, _ = await run("linkage", "handoffs", "--json", "--limit", "2")
    records = json.loads(out)
    assert len(records) == 2 and records[0]["id"] == second
    assert records[0]["answered_at"] == "2026-11-27T09:30:38.000+08:00"
    assert records[0]["pushes"][0]["state"] == "sent" and records[0]["pushes"][0]["attempts"] == 3


async def test_no_handoffs_yet(run):
    assert await run("linkage", "handoffs") == (0, "no hand-offs\n", "")
    assert (await run("linkage", "handoffs", "--limit", "-1"))[0] == 2


async def test_handoffs_show_a_resumed_push_and_why_a_push_failed(run, config):
    async with await Store.open(config.store.location) as store:
        hid = await store.add_handoff(call_id="c3", centre="water", trigger="menu", mode="blind", requested_at=T0,
                                      situation="water_main_burst")
        resumed = await store.add_push(push_id="p3", handoff_id=hid, call_id="c3", centre="water", adapter="http",
                                       at=T0)
        await store.update_push(resumed, state="sent", attempts=3, resumed_at=T0 + timedelta(minutes=1))
        failed = await store.add_push(push_id="p4", handoff_id=hid, call_id="c3", centre="water", adapter="http",
                                      at=T0 + timedelta(seconds=1))
        await store.update_push(failed, state="failed", attempts=2, last_error="not resumed after the restart: "
                                "centre water now takes push = 'mqtt', not 'http'")
    code, out, _ = await run("linkage", "handoffs", "--call", "c3")
    assert code == 0
    assert "http sent x3 (resumed after a restart)" in out
    assert "http failed x2: not resumed after the restart: centre water now takes push = 'mqtt'" in out
    records = json.loads((await run("linkage", "handoffs", "--json", "--call", "c3"))[1])
    assert {p["push_id"]: p["resumed_at"] is not None for p in records[0]["pushes"]} == {"p3": True, "p4": False}


async def test_list_says_when_the_running_gateway_refused_the_file(run, tmp_path):
    listed = tmp_path / "emergency.toml"
    listed.write_text(DEFAULT_EMERGENCY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    state = tmp_path / "state"
    (state / "run").mkdir(parents=True)
    cfg = SimpleNamespace(state_dir=state, linkage=SimpleNamespace(emergency_list=listed))
    assert (await run("linkage", "list", cfg=cfg))[0] == 0, "no gateway running here: nothing to say"
    reason = (f"{listed}: centres: mosquitto is not running (no live pid in /x/run/mosquitto.pid): a new centre's "
              "broker user cannot be made to take effect; the previous list stays in force")
    (state / "run" / "gateway.status.json").write_text(json.dumps({"emergency_list": {
        "file": str(listed), "loaded_at": "2026-12-01T02:00:00+00:00", "refused": reason, "unmet": None}}))
    code, out, err = await run("linkage", "list", cfg=cfg)
    assert code == 1 and f"# REFUSED by the running gateway: {reason}" in out and "REFUSED" in err
    code, out, _ = await run("linkage", "list", "--json", cfg=cfg)
    assert code == 1 and json.loads(out)["gateway"]["refused"] == reason
    code, _, _ = await run("linkage", "list", "--file", str(DEFAULT_EMERGENCY_PATH), cfg=cfg)
    assert code == 0, "another file than the gateway's: its refusal is not this file's"
