"""The call-back number a caller speaks ("我的电话是 幺三八 ..."), as digits.

Phone numbers are read digit by digit in Mandarin: 幺/一 1, 两/二 2, 洞/零/〇 0. vosk writes them as Chinese
characters or Arabic digits, often one word per digit, so spaces and separators inside a run are dropped.
Accepted shapes: a mobile (11 digits, 1[3-9]...), a Zhanjiang landline with its area code (0759 + 7 digits) or
any 0xx/0xxx area code + 7-8 digits, and a bare local number of 7-8 digits when the caller announced it.
"""

from __future__ import annotations

import re

_DIGITS = {
    "0": "0", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6", "7": "7", "8": "8", "9": "9",
    "零": "0", "〇": "0", "洞": "0",
    "一": "1", "幺": "1", "腰": "1",
    "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}
_DIGIT_CLASS = "0-9零〇洞一幺腰二两三四五六七八九"
# A spoken run: digits with vosk's spaces, dashes or pauses in between.
_RUN = re.compile(rf"[{_DIGIT_CLASS}](?:[\s\-—、，,.·]*[{_DIGIT_CLASS}])*")
# Phrases after which the next run is the number the caller wants to be called back on.
_ANNOUNCE = re.compile(
    r"(?:回拨|回电|联系电话|联系方式|联系号码|电话号码|手机号码|手机号|号码|电话|手机|打给我|打这个|拨打|致电)"
    r"(?:是|为|：|:|呢|啊|的话)?")
_ANNOUNCE_WINDOW = 8
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE_WITH_AREA = re.compile(r"0759\d{7}|0[1-9]\d{1,2}\d{7,8}")
_LOCAL = re.compile(r"[2-9]\d{6,7}")


def spoken_digits(run: str) -> str:
    """'幺 三 八 - 0' -> '1380'; characters that are not digits (spaces, dashes) are dropped."""
    return "".join(_DIGITS[c] for c in run if c in _DIGITS)


def find_callback_number(text: str) -> str | None:
    """The caller's call-back number as digits, or None when none is spoken."""
    candidates: list[tuple[int, int, str]] = []          # (preference, position, number)
    announced_ends = [m.end() for m in _ANNOUNCE.finditer(text)]
    for m in _RUN.finditer(text):
        digits = spoken_digits(m.group())
        if len(digits) < 7:
            continue
        # Unannounced runs must have a full shape (mobile, area code): house and room numbers are 7 digits rarely,
        # but "幺三八..." after "电话是" is the number even when it is a bare local one.
        announced = any(0 <= m.start() - end <= _ANNOUNCE_WINDOW and _gap_is_filler(text[end:m.start()])
                        for end in announced_ends)
        number = _shape(digits, announced)
        if number is not None:
            candidates.append((0 if announced else 1, m.start(), number))
    if not candidates:
        return None
    return min(candidates)[2]


def _gap_is_filler(gap: str) -> bool:
    return all(c in " \t，,：:是为呢啊的话多少我" for c in gap)


def _shape(digits: str, announced: bool) -> str | None:
    if digits.startswith("86") and _MOBILE.fullmatch(digits[2:]):
        return digits[2:]
    if _MOBILE.fullmatch(digits) or _LANDLINE_WITH_AREA.fullmatch(digits):
        return digits
    # A run swallowed the next spoken number ("...八零零零 八十八号" -> one more digit): keep a leading mobile.
    if len(digits) > 11 and _MOBILE.fullmatch(digits[:11]):
        return digits[:11]
    if len(digits) > 11 and digits.startswith("0759"):
        return digits[:11]
    if announced and _LOCAL.fullmatch(digits):
        return digits
    return None
