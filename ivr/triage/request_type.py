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
        ("report", 3, "偷排|非法|违法|违规|私自|偷偷|无证|黑作坊|违章建筑|违建|赌博|传销|偷倒|乱排|赌钱|开档|没有审批|"
                      "没审批|未经审批|没有证|没证|超载|秤不准|鬼秤|抽海沙|挖沙|采砂|基本农田|占用农田|假冒|冒充|"
                      "卖假|造假|偷拉|偷接|逃税|黑车|骗人|骗钱"),
        ("report", 2, "倾倒|直接排放|排放到|倒在|乱倒|过期|有人在.{0,6}(卖|排|倒|挖|抽|建|盖)|盖房子|开补习班|有偿补课"),
        ("complaint", 3, "不满|扰民|乱收费|乱扣|态度差|态度很差|态度恶劣|不作为|没人管|不管|推诿|敷衍|坑人|欠薪|拖欠|"
                         "不给退|不退|缺斤少两|短斤缺两|管一管|不理|爱理不理|没人理|不认账|不肯退|乱开价|不打表|宰客|"
                         "拖着|又坏了|吃出|反映几次|反映了几次|几次都|没人来|太离谱|离谱|凭什么|不合理|太过分|才来人|好久才来|"
                         "半天才来|归谁管|到底有没有人管|这个速度|乱收|乱加"),
        ("complaint", 2, "太吵|很吵|吵得|吵到|吵死|太[大小贵差慢少脏臭乱]|贵了|坏了|不亮|一直不|一直没|没人清理|"
                         "臭死|占道|占满|乱停|不修|烧坏|老是|受不了|没拿到|不等|希望尽快|尽快处理|尽快解决|尽快修|"
                         "翻倍|突然涨|多扣|乱扣|扣了我|要了我|问我要|等了|半年了|到现在都|一直说|还不承认|"
                         "睡不着|影响休息|严重影响|多次|屡次|反映|唱到|吵到凌晨|到凌晨|刺鼻|怪味|死鱼|发黑|黑水|臭味|"
                         "全是坑|烂得|关门了|跑路|刷不了|不能报|不给报"),
        ("complaint", 1, "好几天|很久了|一天了|一个星期了|一个月了|几个月了|危险|到处都是|每天|天天都|天天晚上|天天早上|天天在|成日"),
        ("help", 3, "帮帮|救助|救命|走投无路|快来|赶紧来|马上来|快点来|快派人|快叫|帮下手|帮一下|"
                    "帮我们|帮我|搬不动|没办法|不知道怎么弄"),
        # "send someone" also closes many complaints about a fault ("路烂得全是坑, 能不能派个人来看看")
        ("help", 1, "派人来|派个人来|派人过来|派个人过来"),
        ("help", 2, "帮忙|困难|没钱|急需|怎么办(?!理)|挡住|丢了|落在|落车上|找不到|取消|不识字|瘫在床"),
        ("suggestion", 4, "表扬|感谢|谢谢|点赞|点个赞|夸夸|夸一下|辛苦了|没得说|锦旗|好人好事|服务很好|很负责|"
                          "特别负责|很热心|热心肠|真心感|致谢"),
        ("suggestion", 3, "能不能.{0,12}增加|能否.{0,12}增加|可不可以.{0,12}增加|增设|多建|多设|加装|希望政府|"
                          "应该增加|最好能|呼吁|多装|多开|开通|能不能.{0,8}(建|设|装|开|修一)|希望.{0,12}(建|修|增|设|装|开)"),
        ("suggestion", 1, "希望"),
        ("consultation", 3, "请问|想了解|怎么办理|如何办理|想问|问一下|问下|问问|需要什么|要什么材料|怎么申请|如何申请|"
                            "怎么补办|什么资料|什么材料|哪个部门|找哪个|找谁|去哪|去哪里|会有什么影响|有什么影响|"
                            "想知道|了解一下|想了解下|是怎样|是怎么样|怎么收费|收费标准"),
        ("consultation", 2, "什么时候|在哪里|哪里|多少钱|能不能办|可以办|手续|流程|条件|补办|可以.{0,8}吗$|吗$|"
                            "几种|方式|要多久|多长时间|能不能领|能不能申请|能不能报|可不可以"),
        ("consultation", 1, "有没有|是不是|多久"),
    ))
# A verb that names a request made before ("上次投诉那家店, 给你们点赞") does not name this call's request.
_NEGATED = ("不是投诉", "不是要投诉", "不是举报", "不用投诉", "上次投诉", "之前投诉", "投诉过", "上次举报", "举报过",
            "之前举报")


def _without_negated(text: str) -> str:
    for phrase in _NEGATED:
        text = text.replace(phrase, "")
    return text


def explicit_type(text: str) -> str | None:
    """The type of the first explicit request verb (投诉, 举报, ...) in a normalised transcript."""
    text = _without_negated(text)
    first: tuple[int, str] | None = None
    for kind, verbs in _EXPLICIT:
        for verb in verbs:
            at = text.find(verb)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, kind)
    return first[1] if first else None


def cue_scores(text: str) -> dict[str, int]:
    """Summed cue weights per type, in REQUEST_PRECEDENCE order (all 0 when no cue is heard)."""
    text = _without_negated(text)
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


