"""Article 7's five request types from the wording of a transcript: explicit request verbs, then cue phrases.

Pure; the text is a transcript normalised and standardised by the lexicon (ivr/triage/lexicon.py).
"""

from __future__ import annotations

import re

# Article 7's five request types. A caller usually names the request up front ("我要投诉..."), so an explicit verb
# decides by position (the first one said): "我想咨询一下怎么投诉" is a consultation. Without one, cue phrases add
# up per type (weight 1 hints, 2 clear cues, 3 near-explicit); a tie goes to the earlier type in REQUEST_PRECEDENCE:
# an offence reported (偷排) over a nuisance (太吵) over a plea for help over a wish (希望 also closes many
# complaints, hence below them) over a question.
_EXPLICIT = (
    ("report", ("举报", "检举", "揭发")),
    ("complaint", ("投诉", "头诉", "投述")),
    ("help", ("求助", "求救")),
    ("suggestion", ("建议", "提个意见", "提意见", "提议")),
    ("consultation", ("咨询", "资讯一下")),
)
REQUEST_PRECEDENCE = ("report", "complaint", "help", "suggestion", "consultation")
_CUES: tuple[tuple[str, int, re.Pattern[str]], ...] = tuple(
    (kind, weight, re.compile(pattern)) for kind, weight, pattern in (
        ("report", 3, "偷排|非法|违法|违规|私自|偷偷|无证|黑作坊|违章建筑|违建|赌博|传销|偷倒|乱排"),
        ("report", 2, "倾倒|直接排放|排放到"),
        ("complaint", 3, "不满|扰民|乱收费|乱扣|态度差|态度很差|态度恶劣|不作为|没人管|不管|推诿|敷衍|坑人|欠薪|拖欠|"
                         "不给退|不退|缺斤少两|短斤缺两|管一管"),
        ("complaint", 2, "太吵|很吵|吵得|吵到|吵死|太[大小贵差慢少脏臭乱]|贵了|坏了|不亮|一直不|一直没|没人清理|"
                         "臭死|占道|占满|乱停|不修|烧坏|老是|受不了|没拿到|不等|希望尽快|尽快处理|尽快解决|尽快修"),
        ("complaint", 1, "好几天|很久了|一天了|一个星期了|一个月了|几个月了|危险|到处都是"),
        ("help", 3, "帮帮|救助|救命|走投无路|快来|赶紧来|马上来|快点来|快派人|派人来|快叫"),
        ("help", 2, "帮忙|困难|没钱|急需|怎么办(?!理)|挡住"),
        ("suggestion", 3, "能不能.{0,12}增加|能否.{0,12}增加|可不可以.{0,12}增加|增设|多建|多设|加装|希望政府|"
                          "应该增加|最好能|呼吁"),
        ("suggestion", 1, "希望"),
        ("consultation", 3, "请问|想了解|怎么办理|如何办理|想问|问一下|问下|问问|需要什么|要什么材料|怎么申请|如何申请|"
                            "怎么补办"),
        ("consultation", 2, "什么时候|在哪里|哪里|多少钱|能不能办|可以办|手续|流程|条件|补办|可以.{0,8}吗$|吗$"),
        ("consultation", 1, "有没有|是不是|多久"),
    ))
_NEGATED = ("不是投诉", "不是要投诉", "不是举报", "不用投诉")
def explicit_type(text: str) -> str | None:
    """The type of the first explicit request verb (投诉, 举报, ...) in a normalised transcript."""
    for phrase in _NEGATED:
        text = text.replace(phrase, "")
    first: tuple[int, str] | None = None
    for kind, verbs in _EXPLICIT:
        for verb in verbs:
            at = text.find(verb)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, kind)
    return first[1] if first else None


def cue_scores(text: str) -> dict[str, int]:
    """Summed cue weights per type, in REQUEST_PRECEDENCE order (all 0 when no cue is heard)."""
    for phrase in _NEGATED:
        text = text.replace(phrase, "")
    scores = dict.fromkeys(REQUEST_PRECEDENCE, 0)
    for kind, weight, cue in _CUES:
        if cue.search(text):
            scores[kind] += weight
    return scores


def request_type(text: str) -> str | None:
    """The article 7 type a normalised transcript asks for, or None when the wording does not say."""
    if explicit := explicit_type(text):
        return explicit
    scores = cue_scores(text)
    best = max(REQUEST_PRECEDENCE, key=lambda kind: scores[kind])    # max keeps the first of equal scores
    return best if scores[best] > 0 else None


