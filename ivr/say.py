"""Dates and numbers spoken as sequences of word prompts (ivr/prompts/zh.toml: digit_0..digit_9, ten, ...)."""

from __future__ import annotations

from datetime import date

DIGITS = tuple(f"digit_{d}" for d in range(10))
TEN, HUNDRED, THOUSAND = "ten", "hundred", "thousand"
YEAR, MONTH, DAY = "year", "month", "day"
WORD_PROMPTS = (*DIGITS, TEN, HUNDRED, THOUSAND, YEAR, MONTH, DAY)

_UNITS = (THOUSAND, HUNDRED, TEN, None)


def say_number(n: int) -> list[str]:
    """0..9999 as read in Mandarin: 105 -> 一百零五, 1010 -> 一千零一十, 12 -> 十二."""
    if type(n) is not int or not 0 <= n <= 9999:
        raise ValueError(f"say_number takes an integer 0..9999, not {n!r}")
    if n == 0:
        return [DIGITS[0]]
    places = [int(c) for c in f"{n:04d}"]
    words: list[str] = []
    gap = False
    for digit, unit in zip(places, _UNITS):
        if digit == 0:
            gap = bool(words)  # one 零 for a run of zeros, and only between spoken digits
            continue
        if gap:
            words.append(DIGITS[0])
            gap = False
        # 10..19 alone are 十, 十一 ... ; inside a larger number the 一 is spoken: 一百一十
        if not (unit == TEN and digit == 1 and n < 20):
            words.append(DIGITS[digit])
        if unit is not None:
            words.append(unit)
    return words


def say_digits(s: str) -> list[str]:
    """Digit by digit, as ticket numbers are read back."""
    if not s or not s.isascii() or not s.isdigit():
        raise ValueError(f"say_digits takes a non-empty string of 0-9, not {s!r}")
    return [DIGITS[int(c)] for c in s]


def say_date(d: date) -> list[str]:
    """2026-03-31 -> 二零二六 年 三 月 三十一 日: the year digit by digit, month and day as numbers."""
    return [*say_digits(f"{d.year:04d}"), YEAR, *say_number(d.month), MONTH, *say_number(d.day), DAY]
