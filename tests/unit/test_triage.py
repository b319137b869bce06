import argparse
import io
import json
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from gateway.cli import classify as cli_classify
from ivr.triage import classify as triage_module
from gateway.basics.clock import SHANGHAI
from ivr.triage.deadline import due_date
from ivr.triage.classify import Triage, normalise, triage
from ivr.triage.request_type import request_type
from gateway.contract import REQUEST_TYPES
from ivr.triage.units import UnitCatalogue, UnitCatalogueError, load_units, parse_units

DATA = Path(__file__).parents[1] / "data" / "triage" / "tuning" / "project.jsonl"
RECEIVED = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
FIELDS = ("type", "category", "unit", "address", "emergency", "emergency_situation", "callback_number")


def labelled():
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- the labelled set ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results():
    return [(row, triage(row["text"], received=RECEIVED).to_json()) for row in labelled()]


def test_the_labelled_set_is_large_varied_and_well_formed():
    rows = labelled()
    assert len(rows) >= 150
    units = load_units()
    for row in rows:
        assert set(FIELDS) <= set(row) and row["text"].strip()
        assert row["type"] in REQUEST_TYPES + (None,)
        if row["category"] is not None:
            assert units.get(row["category"]).unit == row["unit"]
    assert {r["type"] for r in rows} >= set(REQUEST_TYPES)
    assert len({r["category"] for r in rows}) >= 15
    assert {r["emergency"] for r in rows} >= {"110", "119", "120", "122", "water", "power", "gas"}
    negatives = [r for r in rows if r["emergency"] is None and any(
        w in r["text"].replace(" ", "") for w in ("着火", "停水", "停电", "抢劫", "车祸", "急救", "燃气", "消防"))]
    assert len(negatives) >= 15, "hard negatives for emergencies"


@pytest.mark.parametrize("field,threshold", [
    ("type", 0.95), ("category", 0.95), ("unit", 0.95), ("address", 0.95), ("callback_number", 0.98),
])
def test_field_accuracy_on_the_labelled_set(results, field, threshold):
    correct = sum(got[field] == row[field] for row, got in results)
    assert correct / len(results) >= threshold, [(r["text"], r[field], g[field]) for r, g in results
                                                 if g[field] != r[field]]


def test_every_labelled_emergency_is_recognised_with_its_centre(results):
    missed = [(r["text"], r["emergency"], g["emergency"]) for r, g in results
              if r["emergency"] is not None and g["emergency"] != r["emergency"]]
    assert not missed


def test_no_false_emergencies_on_the_labelled_set(results):
    false = [(r["text"], g["emergency"]) for r, g in results if r["emergency"] is None and g["emergency"] is not None]
    assert not false


# -- request type ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,kind", [
    ("我想咨询一下低保", "consultation"),
    ("请问社保卡怎么补办", "consultation"),
    ("想了解一下人才补贴", "consultation"),
    ("营业执照怎么办理", "consultation"),
    ("我要求助家里困难", "help"),
    ("帮帮我们老板跑了", "help"),
    ("我要投诉物业", "complaint"),
    ("楼上太吵了", "complaint"),
    ("广场舞扰民", "complaint"),
    ("学校乱收费", "complaint"),
    ("我要举报有人偷排", "report"),
    ("有工厂违法排污", "report"),
    ("有人非法采砂", "report"),
    ("我建议多建公厕", "suggestion"),
    ("能不能增加公交班次", "suggestion"),
    ("希望多种点树", "suggestion"),
    ("今天天气不错", None),
])
def test_request_type_from_wording(text, kind):
    assert request_type(text) == kind


def test_the_first_explicit_verb_decides():
    assert request_type("我想咨询一下怎么投诉") == "consultation"
    assert request_type("我要投诉请问找谁") == "complaint"
    assert request_type("我要举报顺便投诉一下") == "report"


def test_a_wish_closing_a_complaint_stays_a_complaint():
    assert request_type("楼下太吵了希望管一下") == "complaint"


def test_negated_verbs_do_not_count():
    assert request_type("我不是投诉就是想问一下什么时候来水") == "consultation"


@pytest.mark.parametrize("dtmf", REQUEST_TYPES)
def test_a_dtmf_choice_overrides_the_spoken_type(dtmf):
    t = triage("我 要 投诉 楼上 太吵", dtmf_type=dtmf, received=RECEIVED)
    assert t.type == dtmf and t.due == due_date(dtmf, RECEIVED)


@pytest.mark.parametrize("dtmf", [None, "unspecified", "bogus"])
def test_no_dtmf_choice_keeps_the_spoken_type(dtmf):
    assert triage("我 要 投诉 楼上 太吵", dtmf_type=dtmf, received=RECEIVED).type == "complaint"


def test_an_emergency_without_a_request_verb_is_a_help_request():
    t = triage("我 家 着火 了 太 可怕 了", received=RECEIVED)
    assert (t.type, t.emergency, t.emergency_situation, t.category) == ("help", "119", "fire", "消防安全")


# -- the draft ---------------------------------------------------------------------------------------------------


def test_full_draft_from_a_vosk_transcript():
    t = triage("我 要 投诉 赤坎区 人民 大道 南 八十八 号 噪音 扰民 我 的 电话 是 幺 三 八 零 零 幺 三 八 零 零 零",
               received=datetime(2026, 9, 30, 20, 0, tzinfo=SHANGHAI))
    assert t == Triage(type="complaint", category="噪音扰民", unit="市生态环境局", address="赤坎区人民大道南88号",
                       emergency=None, emergency_situation=None, callback_number="13800138000",
                       due=due_date("complaint", datetime(2026, 9, 30, 20, 0, tzinfo=SHANGHAI)),
                       summary="我要投诉赤坎区人民大道南八十八号噪音扰民我的电话是幺三八零零幺三八零零零")
    assert t.due > date(2026, 10, 21)      # 15 working days across the National Day week


def test_to_json_has_every_field_with_an_iso_due_date():
    data = triage("请问 低保 怎么 申请", received=RECEIVED).to_json()
    assert set(data) == {"type", "category", "unit", "address", "emergency", "emergency_situation",
                         "callback_number", "due", "summary", "scores"}
    assert data["due"] == due_date("consultation", RECEIVED).isoformat()
    # every filled field has a score; type and category name their runner-up when there is one
    filled = {k for k in ("type", "category", "unit", "address", "emergency", "callback_number", "due") if data[k]}
    assert set(data["scores"]) == filled
    assert all(0 < s["score"] <= 1 for s in data["scores"].values())
    json.dumps(data, ensure_ascii=False)


def test_without_a_type_there_is_no_due_date():
    t = triage("嗯 嗯 喂", received=RECEIVED)
    assert (t.type, t.due, t.category, t.address, t.emergency) == (None, None, None, None, None)


def test_normalise_removes_vosk_spaces_but_keeps_latin_words_apart():
    assert normalise("  我 要  投诉\tKTV 太吵 ") == "我要投诉KTV太吵"
    assert normalise("my phone is 138 0013 8000") == "my phone is 13800138000"


def test_summary_is_trimmed():
    t = triage("我 要 投诉 " + "太吵 " * 100, received=RECEIVED)
    assert len(t.summary) == 120 and t.summary.endswith("…")


def test_default_data_is_loaded_once(monkeypatch):
    triage_module.default_units.cache_clear()
    calls = []
    real = triage_module.load_units
    monkeypatch.setattr(triage_module, "load_units", lambda *a: calls.append(1) or real(*a))
    for _ in range(3):
        triage("请问 低保", received=RECEIVED)
    assert calls == [1]
    triage_module.default_units.cache_clear()


def test_a_custom_catalogue_is_used():
    units = parse_units({"category": [{"name": "低保", "unit": "区民政局", "keywords": ["低保"]}]})
    t = triage("请问 低保 怎么 申请", received=RECEIVED, units=units)
    assert (t.category, t.unit) == ("低保", "区民政局")


@given(st.text(max_size=200))
def test_triage_never_fails_on_any_text(text):
    t = triage(text, received=RECEIVED)
    assert t.type in REQUEST_TYPES + (None,) and len(t.summary) <= 120


# -- unit catalogue ----------------------------------------------------------------------------------------------


def test_packaged_catalogue_covers_the_usual_12345_matters():
    units = load_units()
    assert len(units.categories) >= 15
    for name in ("噪音扰民", "道路交通", "供水", "供电", "燃气", "住房物业", "劳动保障", "社会保险", "教育", "医疗卫生",
                 "市场监管", "环境污染", "城市管理", "公共交通", "户籍治安", "民政", "自然资源"):
        assert units.get(name) is not None, name
    assert units.get("供电").unit == "湛江供电局"
    assert units.get("劳动保障").unit == "市人力资源和社会保障局"


def test_longer_keywords_outweigh_and_ties_go_to_the_first_listed():
    units = parse_units({"category": [
        {"name": "A", "unit": "a", "keywords": ["水"]},
        {"name": "B", "unit": "b", "keywords": ["水管", "水"]},
        {"name": "C", "unit": "c", "keywords": ["电"]},
        {"name": "D", "unit": "d", "keywords": ["电"]},
    ]})
    assert units.classify("水 管 爆 了").name == "B"
    assert units.classify("没 电").name == "C"
    assert units.classify("你好") is None


def test_a_keyword_inside_a_longer_match_is_not_counted_twice():
    units = parse_units({"category": [
        {"name": "bus", "unit": "t", "keywords": ["公交", "公交站"]},
        {"name": "crime", "unit": "p", "keywords": ["抢劫", "打人"]},
    ]})
    assert units.classify("公交站 有人 抢劫 打人").name == "crime"


@pytest.mark.parametrize("raw,field,reason", [
    ({}, "category", "at least one"),
    ({"version": 2, "category": []}, "version", "unsupported"),
    ({"category": [{"unit": "u", "keywords": ["k"]}]}, "category[0].name", "non-empty"),
    ({"category": [{"name": "n", "keywords": ["k"]}]}, "category[0] (n).unit", "non-empty"),
    ({"category": [{"name": "n", "unit": "u", "keywords": []}]}, "category[0] (n).keywords", "non-empty list"),
    ({"category": [{"name": "n", "unit": "u", "keywords": ["k", ""]}]}, "category[0] (n).keywords[1]", "non-empty"),
    ({"category": [{"name": "n", "unit": "u", "keywords": ["k", "k"]}]}, "category[0] (n).keywords[1]", "twice"),
    ({"category": [{"name": "n", "unit": "u", "keywords": ["k"], "units": "x"}]}, "category[0].units", "unknown"),
    ({"category": [{"name": "n", "unit": "u", "keywords": ["k"]}] * 2}, "category[1] (n).name", "duplicate"),
])
def test_bad_catalogue_names_file_field_and_reason(raw, field, reason):
    with pytest.raises(UnitCatalogueError) as info:
        parse_units(raw, source="units.toml")
    assert (info.value.file, info.value.field_path) == ("units.toml", field) and reason in info.value.reason


def test_unreadable_catalogue_names_the_file(tmp_path):
    with pytest.raises(UnitCatalogueError, match="missing.toml: <file>: cannot read"):
        UnitCatalogue.load(tmp_path / "missing.toml")


# -- hotline classify ----------------------------------------------------------------------------------------------


@pytest.fixture
def run(monkeypatch, capsys):
    parser = argparse.ArgumentParser(prog="hotline")
    cli_classify.register(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setattr(cli_classify, "now", lambda: datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI))

    async def run(stdin: str, *argv: str):
        args = parser.parse_args(["classify", *argv])
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = await args.func(args, None)
        out, err = capsys.readouterr()
        return code, [json.loads(line) for line in out.splitlines()], err

    return run


async def test_classify_prints_one_object_per_transcript_and_skips_empty_lines(run):
    code, rows, err = await run("我 要 投诉 赤坎区 人民 大道 南 八十八 号 噪音 扰民\n\n   \n请问 低保 怎么 申请\n")
    assert code == 0 and err == "" and len(rows) == 2
    assert list(rows[0]) == ["type", "category", "unit", "address", "emergency", "callback_number", "due", "scores"]
    assert rows[0]["scores"]["type"]["score"] >= 0.9      # 投诉 said: the caller named the type
    assert rows[0]["address"] == "赤坎区人民大道南88号"
    assert rows[0]["due"] == due_date("complaint", datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)).isoformat()
    assert rows[1]["type"] == "consultation"


async def test_classify_scores_carry_the_runner_up_and_explain_says_what_decided(run):
    code, rows, _ = await run("就是 那个 楼下 烧烤 摊 每天 晚上 烟 好大 呛 得 窗 都 不敢 开\n", "--explain")
    assert code == 0
    [row] = rows
    category = row["scores"]["category"]
    assert 0 < category["score"] <= 1 and category["runner_up"] != row["category"]
    assert 0 <= category["runner_up_score"] <= category["score"]
    explain = row["explain"]
    assert explain["emergency"] is None and explain["categories_heard"]
    assert explain["cancelled"] == [] or all(":" in c for c in explain["cancelled"])
    code, rows, _ = await run("上个月 着火 的 事 处理 得 怎么样\n", "--explain")
    assert rows[0]["emergency"] is None and rows[0]["explain"]["cancelled"] == ["fire: 上个月"]


async def test_classify_with_the_rules_alone_and_a_missing_model_file(run, tmp_path, capsys):
    code, rows, _ = await run("请问 低保 怎么 申请\n", "--model", "none")
    assert code == 0 and rows[0]["type"] == "consultation"
    code, _, err = await run("请问 低保 怎么 申请\n", "--model", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err and "cannot read" in err


async def test_classify_received_option_fixes_the_due_date(run):
    code, rows, _ = await run("请问 低保 怎么 申请\n", "--received", "2026-03-02T10:00")
    assert rows[0]["due"] == "2026-03-04"


async def test_a_failing_line_gives_an_error_object_and_the_rest_goes_on(run, monkeypatch):
    real = cli_classify.triage

    def flaky(text, **kwargs):
        if "boom" in text:
            raise RuntimeError("boom")
        return real(text, **kwargs)

    monkeypatch.setattr(cli_classify, "triage", flaky)
    code, rows, _ = await run("请问 低保\nboom\n我 家 着火 了\n")
    assert code == 1
    assert rows[1] == {"line": 2, "error": "RuntimeError: boom"}
    assert rows[2]["emergency"] == "119"


async def test_bad_data_file_is_reported_with_exit_status_2(run, tmp_path):
    bad = tmp_path / "units.toml"
    bad.write_text("version = 1\n")
    code, rows, err = await run("请问 低保\n", "--units", str(bad))
    assert code == 2 and rows == [] and "units.toml: category: at least one" in err


def test_bad_received_option_is_refused():
    parser = argparse.ArgumentParser(prog="hotline")
    cli_classify.register(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["classify", "--received", "yesterday"])
