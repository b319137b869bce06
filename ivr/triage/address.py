"""The incident address in a transcript: Zhanjiang district or county, then road, village, estate and numbers.

An address is a run of segments, each a short name plus a suffix (路 大道 街 巷 村 镇 社区 小区 ...), optionally
led by one of Zhanjiang's districts/counties and ended by numbers (88号 3栋 502室). Spoken numbers before a
number suffix become Arabic ("八十八 号" -> "88号", "五 零 二 室" -> "502室"), as an agent would type them.
"""

from __future__ import annotations

import re

DISTRICTS = ("湛江经济技术开发区", "经济技术开发区", "湛江开发区", "开发区", "东海岛", "赤坎区", "霞山区",
             "麻章区", "坡头区", "遂溪县", "徐闻县", "廉江市", "雷州市", "吴川市")
_CN_DIGIT = {"零": 0, "〇": 0, "洞": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
             "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_NUMBER_SUFFIX = "号楼|号院|号|栋|幢|座|层|楼|单元|室|房"
_CN_NUMBER = re.compile(rf"([零〇洞一幺二两三四五六七八九十百千]+)\s*(?={_NUMBER_SUFFIX})")
_WHITESPACE = re.compile(r"\s+")

# Characters that end a place name going leftwards: pronouns, particles, verbs of being somewhere. A road name
# seldom contains them, while "我家住在海滨大道" must start the address at 海.
_STOP = ("我你他她它们咱您谁在住是的了到于从往和与跟就也都还很要想请问个这那有没不把被给让说条边里对位址点又再"
         "吗呢吧啊呀哦嗯啦嘛哪么什怎样诉询映议助吵帮忙叫喊听闻知些")
_NAME = rf"(?:(?![{_STOP}])[\u4e00-\u9fff0-9])"
_DIRECTION = r"(?:[东南西北中](?:段|路)?|[一二三四五六七八九十]+(?:横|马)?路)?"
_ROAD = rf"{_NAME}{{1,8}}?(?:大道|大街|街道|路|街|巷){_DIRECTION}"
_PLACE = rf"{_NAME}{{1,8}}?(?:管理区|开发区|工业园|产业园|农场|社区|小区|新村|花园|公园|大厦|广场|市场|公寓|家园|苑|镇|乡|村)"
_NUMBERS = rf"\d+(?:-\d+)?(?:{_NUMBER_SUFFIX})"
_DISTRICT = "|".join(DISTRICTS)
_SPAN = re.compile(rf"(?:湛江市?)?(?:(?:{_DISTRICT})(?:{_ROAD}|{_PLACE}|{_NUMBERS})*"
                   rf"|(?:{_ROAD}|{_PLACE})(?:{_ROAD}|{_PLACE}|{_NUMBERS})*)")
# Words before a place that the name pattern cannot tell from its first characters.
_LEADS = ("湛江市", "湛江", "问一下", "一下", "投诉", "举报", "反映", "咨询", "求助", "建议", "地址", "位置", "附近",
          "家住", "就在", "门口", "楼下", "现在", "今天", "昨天", "晚上", "早上", "白天", "半夜", "每天", "一直", "经常",
          "已经", "发现", "看到", "看见", "路过", "经过", "这边", "那边", "隔壁", "对面", "前面", "后面")
# Words that contain a place suffix without naming a place ("马路上有个坑", "公交线路") become a break before
# matching; a suffix followed by a common word keeps the suffix ("解放东路路口" -> "解放东路，", "旧县村里" -> "旧县村，").
_GENERIC = re.compile("十字路口|马路|道路|公路|小路|大路|线路|路线|走路|修路|绕路|过路|出路|销路|跑路|一路上|老旧小区|"
                      "城乡|街上|上街|逛街|全村|同村|农村|菜市场|农贸市场|市场监管|市场价|"
                      "(路|街|村|小区)(?:口|边|面|灯|段|上|里|子)")
# "二十五路公交", "12路": bus routes, not roads.
_BUS_ROUTE = re.compile(r"[零一二三四五六七八九十百\d]+路")


def chinese_number(text: str) -> int:
    """'八十八' -> 88, '一百零五' -> 105, '两千' -> 2000; digit-by-digit readings '五零二' -> 502."""
    if not any(c in _CN_UNIT for c in text):
        return int("".join(str(_CN_DIGIT[c]) for c in text))
    total, digit = 0, None
    for c in text:
        if c in _CN_UNIT:
            total += (1 if digit is None else digit) * _CN_UNIT[c]
            digit = None
        else:
            digit = _CN_DIGIT[c]
    return total + (digit or 0)


def arabic_numbers(text: str) -> str:
    """Spoken numbers before a number suffix become Arabic; other Chinese numerals (一直, 两天) stay."""
    def convert(m: re.Match[str]) -> str:
        try:
            return str(chinese_number(m.group(1)))
        except (KeyError, ValueError):
            return m.group(0)
    return _CN_NUMBER.sub(convert, text)


def normalise_for_address(text: str) -> str:
    return _GENERIC.sub(lambda m: (m.group(1) or "") + "，", arabic_numbers(_WHITESPACE.sub("", text)))


def find_address(text: str) -> str | None:
    """The best address span in a transcript, e.g. '赤坎区人民大道南88号', or None."""
    joined = normalise_for_address(text)
    spans = [span for span in (_trim(m.group()) for m in _SPAN.finditer(joined))
             if _SPAN.fullmatch(span) and _score(span) > 0]     # trimming may leave a bare "小区"
    if not spans:
        return None
    best = max(spans, key=_score)                   # max keeps the first of equal scores
    if best in DISTRICTS:
        # "霞山区 有 个 黑作坊 ... 在 海头 街道": the district and the place come in separate phrases.
        place = next((s for s in spans if not any(d in s for d in DISTRICTS)), None)
        if place is not None:
            return best + place
    return best


def _trim(span: str) -> str:
    starts = [at for at in (span.find(d) for d in DISTRICTS) if at >= 0]
    if starts:
        return span[min(starts):]
    changed = True
    while changed:
        changed = False
        for lead in _LEADS:
            if span.startswith(lead) and len(span) > len(lead):
                span, changed = span[len(lead):], True
    return span


def _score(span: str) -> int:
    if _BUS_ROUTE.fullmatch(span):
        return 0
    score = len(span)
    if any(d in span for d in DISTRICTS):
        score += 10
    if re.search(r"\d", span):
        score += 5
    return score
