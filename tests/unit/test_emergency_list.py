import pytest
from hypothesis import given, strategies as st

from ivr.menu import EMERGENCIES, load_menu, QueueAction
from linkage.emergency_list import (DEFAULT_EMERGENCY_PATH, EmergencyList, EmergencyListError, load_emergency_list,
                                    parse_emergency_list)
from ivr.triage.units import load_units


@pytest.fixture(scope="module")
def emergencies():
    return EmergencyList.load()


@pytest.mark.parametrize("text,situation,centre", [
    ("救命 啊 我 家 着火 了", "fire", "119"),
    ("对面 楼 起火 了 冒 很 大 的 浓烟", "fire", "119"),
    ("有人 抢劫 快 来 人 啊", "crime", "110"),
    ("外面 有人 拿 刀 砍人", "crime", "110"),
    ("老人 晕倒 了 叫 不 醒", "medical", "120"),
    ("我 爸 心脏病 犯 了 呼吸困难", "medical", "120"),
    ("前面 出 车祸 了 两 辆 车 撞车", "traffic_accident", "122"),
    ("水管 爆 了 水 喷 出来 很 高", "water_main_burst", "water"),
    ("整栋楼 停水 了 没水 喝", "water_outage", "water"),
    ("我们 这 片 突然 停电 了", "power_outage", "power"),
    ("电线杆 倒 了 电线 掉 在 地上", "fallen_wire", "power"),
    ("厨房 煤气 泄漏 了 闻到 煤气味", "gas_leak", "gas"),
])
def test_listed_situations_match_with_their_primary_centre(emergencies, text, situation, centre):
    match = emergencies.match(text)
    assert match is not None and (match.situation, match.centre) == (situation, centre)


@pytest.mark.parametrize("text", [
    "我 想 咨询 一下 消防检查 需要 准备 什么",
    "我们 社区 想 搞 防火宣传",
    "上次 着火 的 那 栋 楼 没人 处理",
    "油锅 着火 了 已经 扑灭 了",
    "咨询 一下 停水 时间",
    "停水 通知 说 今天 来 水",
    "请问 明天 会不会 停电",
    "我 想 问 一下 抢劫案 进度 查询",
    "交通事故 事故认定 书 什么 时候 出来",
    "燃气费 怎么 涨价 了",
    "社区 有没有 急救培训",
    "我 要 投诉 马路 上 的 坑",
])
def test_hard_negatives_do_not_match(emergencies, text):
    assert emergencies.match(text) is None


def test_vosk_spacing_inside_a_keyword_still_matches(emergencies):
    assert emergencies.match("着 火 了").situation == "fire"


def test_burning_wire_goes_to_the_power_company_first_then_firefighters(emergencies):
    match = emergencies.match("电线 着火 了 还 冒烟")
    assert match.situation == "fallen_wire" and match.centre == "power"
    assert "fire" in match.also
    assert emergencies.get("fallen_wire").centres[:2] == ("power", "119")


def test_every_situation_has_a_key_in_the_ivr_emergency_menu_leading_to_its_primary_centre(emergencies):
    menu = load_menu()
    options = menu.nodes["emergency"].options
    for situation in emergencies.situations:
        action = options[situation.menu_key]
        assert isinstance(action, QueueAction) and action.emergency == situation.centre, situation.id


def test_the_packaged_list_covers_article_14_and_names_known_categories(emergencies):
    assert {s.centre for s in emergencies.situations} == set(EMERGENCIES)
    units = load_units()
    for s in emergencies.situations:
        assert s.category is None or units.get(s.category) is not None, s.id
    assert [s.id for s in emergencies.by_menu_key("5")] == ["water_main_burst", "water_outage"]


def test_reload_gives_a_new_list_from_the_edited_file(tmp_path):
    path = tmp_path / "emergency.toml"
    path.write_text(DEFAULT_EMERGENCY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    before = load_emergency_list(path)
    assert before.match("山 上 有 烟雾") is None
    path.write_text(path.read_text(encoding="utf-8").replace('keywords = ["着火"', 'keywords = ["烟雾", "着火"'),
                    encoding="utf-8")
    after = EmergencyList.load(path)
    assert after.match("山 上 有 烟雾").situation == "fire"
    assert before.match("山 上 有 烟雾") is None


GOOD = {"id": "fire", "name": "火灾", "centres": ["119"], "menu_key": "2", "keywords": ["着火"], "cancel": []}


@pytest.mark.parametrize("change,field,reason", [
    ({"id": "Fire"}, "situation[0].id", "must match"),
    ({"name": ""}, "situation[0] (fire).name", "non-empty"),
    ({"centres": []}, "situation[0] (fire).centres", "non-empty list"),
    ({"centres": ["999"]}, "situation[0] (fire).centres[0]", "unknown centre"),
    ({"centres": ["119", "119"]}, "situation[0] (fire).centres", "twice"),
    ({"menu_key": 2}, "situation[0] (fire).menu_key", "DTMF key"),
    ({"menu_key": "22"}, "situation[0] (fire).menu_key", "DTMF key"),
    ({"keywords": []}, "situation[0] (fire).keywords", "non-empty list"),
    ({"keywords": ["着火", 3]}, "situation[0] (fire).keywords[1]", "non-empty string"),
    ({"cancel": ["着火"]}, "situation[0] (fire).cancel[0]", "also a keyword"),
    ({"category": ""}, "situation[0] (fire).category", "non-empty"),
    ({"centre": "119"}, "situation[0].centre", "unknown field"),
])
def test_bad_situation_names_file_field_and_reason(change, field, reason):
    with pytest.raises(EmergencyListError) as info:
        parse_emergency_list({"situation": [{**GOOD, **change}]}, source="em.toml")
    assert (info.value.file, info.value.field_path) == ("em.toml", field)
    assert reason in info.value.reason and str(info.value).startswith("em.toml: ")


def test_duplicate_ids_and_a_key_shared_across_centres_are_refused():
    with pytest.raises(EmergencyListError, match="duplicate id"):
        parse_emergency_list({"situation": [GOOD, GOOD]})
    other = {**GOOD, "id": "crime", "centres": ["110"]}
    with pytest.raises(EmergencyListError, match="share the primary centre"):
        parse_emergency_list({"situation": [GOOD, other]})


def test_unreadable_or_invalid_files_name_the_file(tmp_path):
    with pytest.raises(EmergencyListError) as info:
        load_emergency_list(tmp_path / "missing.toml")
    assert info.value.field_path == "<file>" and "missing.toml" in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[situation]\n")
    with pytest.raises(EmergencyListError, match="not valid TOML"):
        load_emergency_list(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text("version = 1\n")
    with pytest.raises(EmergencyListError, match="at least one"):
        load_emergency_list(empty)


def test_centres_can_be_widened_by_the_linkage_config():
    lst = parse_emergency_list({"situation": [{**GOOD, "centres": ["119", "forest_fire"]}]},
                               centres={"119", "forest_fire"})
    assert lst.situations[0].centres == ("119", "forest_fire")


@given(st.text(alphabet="我你有人在了的是吗不要停电水火车路区着咨询通知 ", max_size=40))
def test_a_match_always_names_a_listed_situation_whose_keyword_occurs(text):
    emergencies = EmergencyList.load()
    match = emergencies.match(text)
    joined = text.replace(" ", "")
    if match is not None:
        situation = emergencies.get(match.situation)
        assert match.centre == situation.centre
        assert match.keyword in situation.keywords + tuple(e for f in situation.frames for e in f.event)
        # as written, or heard by sound: then the evidence says what was heard, and that is in the text
        heard = [e.split("(heard ")[1].split(",")[0] for e in match.evidence if "(heard " in e]
        assert match.keyword in joined or any(h in joined for h in heard)
        if not any(p in joined for p in situation.override):
            assert not any(c in joined for c in situation.cancel)
