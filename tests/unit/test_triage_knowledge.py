"""The triage knowledge: phrase lookup by characters and by sound, the lexicon, situation frames and cancelling
contexts, and the validation of the data files that hold them."""

import random

import pytest

from ivr.triage.evaluation import Noise, homophones, noisy
from ivr.triage.lexicon import LexiconError, load_lexicon, parse_lexicon
from ivr.triage.phrases import PhraseIndex, Prepared, symbol, syllables
from ivr.triage.units import UnitCatalogueError, parse_units
from linkage.emergency_list import DEFAULT_EMERGENCY_PATH, EmergencyListError, load_emergency_list, parse_emergency_list

LEXICON = parse_lexicon({"variants": {"冇": "没", "阿婆": "老人"},
                         "sets": {"person": ["老人", "小孩"], "now": ["还在"], "past": ["上次", "去年"]}})


def situation(**over) -> dict:
    base = {"id": "medical", "name": "急症", "centres": ["120"], "keywords": ["晕倒"], "cancel": ["@past"],
            "override": ["@now"],
            "frame": [{"name": "fell", "event": ["摔倒"], "what": ["@person"], "near": 4},
                      {"name": "pain", "event": ["痛"], "what": ["胸口"], "cue": ["出汗"], "near": 2}]}
    return base | over


def emergency_list(**over):
    return parse_emergency_list({"situation": [situation(**over)]}, lexicon=LEXICON, source="test.toml")


# -- phrases ---------------------------------------------------------------------------------------------------

def test_a_phrase_is_found_as_written_by_sound_and_with_an_inner_character_dropped():
    index = PhraseIndex(["火灾", "呼吸困难", "喘不过气"])
    hits = index.find(Prepared.of("他火在烧呼吸困南喘不气"))
    assert hits["火灾"].how == "pinyin" and hits["火灾"].start == 1
    assert hits["呼吸困难"].how == "pinyin"
    assert hits["喘不过气"].how == "dropped"
    exact = index.find(Prepared.of("家里火灾了"))["火灾"]
    assert (exact.how, exact.start, exact.end, exact.weight) == ("exact", 2, 4, 1.0)


def test_a_sound_alike_with_every_character_changed_is_not_the_phrase():
    # 活在 sounds like 火灾 but shares no character with it: a recogniser error is one or two characters, not all
    assert PhraseIndex(["火灾"]).find(Prepared.of("我们活在这里")) == {}


def test_only_inner_characters_may_be_dropped():
    hits = PhraseIndex(["到处都是水"]).find(Prepared.of("垃圾到处都是"))
    assert hits == {}


def test_firm_hits_are_exact_or_long_enough_to_trust_by_sound():
    index = PhraseIndex(["油烟", "上次着火", "呼吸困难"])
    assert not index.find(Prepared.of("有烟"))["油烟"].firm            # 2 characters, by sound
    assert not index.find(Prepared.of("山上着火"))["上次着火"].firm     # a dropped character
    assert index.find(Prepared.of("呼吸困南"))["呼吸困难"].firm


def test_symbols_are_one_per_character_and_shared_by_homophones():
    assert symbol("灾") == symbol("在") != symbol("火")
    assert symbol("A") == "A" and len(Prepared.of("着火了A1").sounds) == 5
    assert syllables("着火") == "zhe huo"


# -- lexicon ---------------------------------------------------------------------------------------------------

def test_the_lexicon_rewrites_variants_longest_first_and_expands_sets():
    lexicon = parse_lexicon({"variants": {"冇": "没", "冇咗": "没了", "阿婆": "老人"}, "sets": {"p": ["阿婆", "小孩"]}})
    assert lexicon.standardise("阿婆冇咗冇水") == "老人没了没水"
    assert lexicon.sets["p"] == ("老人", "小孩")           # set phrases are standardised too
    assert lexicon.expand(["@p", "阿婆", "晕倒"], source="x", at="k") == ("老人", "小孩", "晕倒")


@pytest.mark.parametrize("raw,where,reason", [
    ({"sets": {"p": ["@q"]}}, "sets.p[0]", "cannot refer to another set"),
    ({"sets": {"P": ["a"]}}, "sets.P", "[a-z]"),
    ({"sets": {"p": []}}, "sets.p", "non-empty list"),
    ({"sets": {"p": ["a", "a"]}}, "sets.p[1]", "twice"),
    ({"variants": {"冇": ""}}, "variants.冇", "non-empty"),
    ({"variants": {"冇": 1}}, "variants.冇", "non-empty"),
    ({"version": 2}, "version", "unsupported"),
    ({"words": {}}, "words", "unknown field"),
])
def test_a_bad_lexicon_names_the_entry_and_the_reason(raw, where, reason):
    with pytest.raises(LexiconError) as e:
        parse_lexicon(raw, source="lexicon.toml")
    assert (e.value.file, e.value.field_path) == ("lexicon.toml", where) and reason in e.value.reason


def test_the_packaged_lexicon_loads_and_a_broken_file_is_named(tmp_path):
    lexicon = load_lexicon()
    assert lexicon.standardise("阿婆跌咗") == "老人摔倒了"
    assert {"person", "now", "past", "fee_or_procedure", "campaign", "service_complaint"} <= set(lexicon.sets)
    bad = tmp_path / "lexicon.toml"
    bad.write_text("[variants\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="not valid TOML"):
        load_lexicon(bad)


# -- situations: keywords, frames, cancelling contexts -----------------------------------------------------------

def test_a_frame_needs_its_event_near_who_it_happens_to():
    emergencies = emergency_list()
    match = emergencies.match("阿婆摔倒了")
    assert (match.situation, match.how, match.keyword) == ("medical", "frame", "摔倒")
    assert match.evidence[0] == "frame 'fell'" and "老人" in match.evidence
    assert emergencies.match("老人家门口的台阶上周有人摔倒") is None      # 老人 too far from 摔倒
    assert emergencies.match("老人院摔倒") is not None


def test_a_frame_with_a_cue_needs_the_cue_too():
    emergencies = emergency_list()
    assert emergencies.match("胸口痛") is None
    assert emergencies.match("胸口痛一直出汗").how == "frame"


def test_a_cancelling_context_withdraws_the_situation_unless_it_is_happening_now():
    emergencies = emergency_list()
    assert emergencies.match("上次有人晕倒了") is None
    assert emergencies.matcher().judge("上次有人晕倒了") == (None, ("medical: 上次",))
    assert emergencies.match("上次也是这样现在还在晕倒").situation == "medical"


def test_a_sound_alike_two_character_keyword_needs_a_second_phrase():
    emergencies = emergency_list(keywords=["晕倒", "抽搐"])
    assert emergencies.match("他运倒了") is None                       # 运倒 sounds like 晕倒: not enough alone
    backed = emergencies.match("他运倒了还在抽搐")
    assert backed.situation == "medical" and backed.how == "keyword" and backed.keyword == "抽搐"


def test_of_several_situations_one_heard_as_written_beats_one_heard_by_sound():
    raw = {"situation": [situation(id="a", keywords=["呼吸困难"], frame=[]),
                         situation(id="b", keywords=["晕倒"], frame=[], centres=["110"])]}
    emergencies = parse_emergency_list(raw, lexicon=LEXICON)
    match = emergencies.match("呼吸困南然后晕倒")
    assert match.situation == "b" and match.also == ("a",)


@pytest.mark.parametrize("over,where,reason", [
    ({"frame": [{"event": ["摔倒"], "near": 99}]}, "frame[0].near", "0-60"),
    ({"frame": [{"event": ["摔倒"], "who": ["x"]}]}, "frame[0].who", "unknown field"),
    ({"frame": [{"what": ["x"]}]}, "frame[0].event", "required"),
    ({"frame": {"event": ["摔倒"]}}, "frame", "[[situation.frame]]"),
    ({"cancel": ["@later"]}, "cancel", "unknown phrase set '@later'"),
    ({"override": ["@nope"]}, "override", "unknown phrase set"),
])
def test_a_bad_frame_or_set_reference_names_the_situation_and_the_field(over, where, reason):
    with pytest.raises(EmergencyListError) as e:
        emergency_list(**over)
    assert e.value.file == "test.toml" and e.value.field_path.startswith("situation[0] (medical).")
    assert e.value.field_path.endswith(where) or where in e.value.field_path
    assert reason in e.value.reason


def test_unit_keywords_may_use_the_lexicon_and_are_heard_by_sound():
    units = parse_units({"category": [{"name": "民政", "unit": "民政局", "keywords": ["@person", "低保"]},
                                      {"name": "供水", "unit": "水务", "keywords": ["自来水"]}]}, lexicon=LEXICON)
    assert units.classify("阿婆想申请低保").name == "民政"
    ranked = units.rank("自来睡停了")                                  # 自来水 heard as 自来睡
    assert ranked[0].category.name == "供水" and "pinyin" in ranked[0].heard[0]
    with pytest.raises(UnitCatalogueError, match="unknown phrase set"):
        parse_units({"category": [{"name": "a", "unit": "b", "keywords": ["@nobody"]}]}, lexicon=LEXICON)


def test_the_packaged_list_hears_the_kinds_of_emergency_callers_describe():
    emergencies = load_emergency_list(DEFAULT_EMERGENCY_PATH)
    cases = {
        "我爸胸口痛得厉害一直冒冷汗": "120",
        "阿婆喺楼梯跌咗起唔到身": "120",
        "对面楼六楼窗口一直在冒黑烟": "119",
        "电梯卡在七楼和八楼中间我们三个人在里面": "119",
        "一辆大货车在国道上翻了货撒了一地": "122",
        "我孙子不见了刚刚还在公园门口玩": "110",
        "修路的把燃气管道挖破了嘶嘶地响": "gas",
        "整栋楼突然没电了": "power",
        "家里水龙头突然一滴水都没了": "water",
    }
    assert {text: getattr(emergencies.match(text), "centre", None) for text in cases} == cases
    for negative in ("请问消防检查要准备什么材料", "上个月我家着火保险怎么理赔", "叫救护车要收多少钱",
                     "建议小区多装几个消防栓", "昨天停电现在已经来电了", "上次救护车来得太慢我要投诉"):
        assert emergencies.match(negative) is None, negative


# -- simulated recogniser noise ------------------------------------------------------------------------------

def test_noise_replaces_characters_by_common_homophones_and_drops_some_repeatably():
    text = "我家楼下的电线杆倒了电线掉在地上还冒火花" * 5
    once, again = Noise(seed=7).apply([text]), Noise(seed=7).apply([text])
    assert once == again and once != [text]
    changed = noisy(text, random.Random(1), substitute=1.0, drop=0.0)
    assert len(changed) == len(text)
    assert all(symbol(a) == symbol(b) for a, b in zip(text, changed))       # same sound, other characters
    assert sum(a != b for a, b in zip(text, changed)) > len(text) * 0.8
    assert len(noisy(text, random.Random(1), substitute=0.0, drop=1.0)) == 0
    assert all(len(chars) >= 1 for chars in homophones().values()) and len(homophones()) > 300


def test_with_seeded_recogniser_noise_the_sound_lookup_keeps_most_emergencies():
    """The tuning part's emergencies, each through five seeded noise draws (12 % homophones, 3 % dropped):
    the lookup by sound must hear clearly more of them than the lookup as written alone."""
    from pathlib import Path

    from ivr.triage.training import read_labelled
    from linkage.situation_match import SituationMatcher

    tuning = Path(__file__).parents[1] / "data" / "triage" / "tuning"
    rows = [r for p in sorted(tuning.glob("*.jsonl")) for r in read_labelled(p) if r.emergency not in (None, "none")]
    texts = [t for seed in range(5) for t in Noise(seed=seed).apply([r.text for r in rows])]
    centres = [r.emergency for _ in range(5) for r in rows]
    emergencies = load_emergency_list()
    by_sound = emergencies.matcher()
    as_written = SituationMatcher(emergencies)
    as_written.index = PhraseIndex(as_written.phrases, by_sound=False)

    def recall(matcher):
        return sum(getattr(matcher.match(t), "centre", None) == c for t, c in zip(texts, centres)) / len(texts)

    with_sound, without = recall(by_sound), recall(as_written)
    assert with_sound >= 0.85 and with_sound >= without + 0.08, (with_sound, without)
