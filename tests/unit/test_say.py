import re
from datetime import date, timedelta

import pytest

from ivr.prompts import DEFAULT_CATALOGUE_PATH, load_catalogue
from ivr.say import WORD_PROMPTS, say_date, say_digits, say_number

# Reference reading, built differently from ivr.say: write every place out ("一千零百一十零"), then apply the
# spoken-Chinese rewrites with regular expressions, then map character by character to prompt names.
CHARS = "零一二三四五六七八九"
PROMPT_OF = {**{c: f"digit_{i}" for i, c in enumerate(CHARS)}, "十": "ten", "百": "hundred", "千": "thousand",
             "年": "year", "月": "month", "日": "day"}


def chinese_reading(n: int) -> str:
    if n == 0:
        return "零"
    s = "".join(CHARS[int(c)] + unit for c, unit in zip(f"{n:04d}", ["千", "百", "十", ""]))
    s = re.sub("零[千百十]", "零", s)
    s = re.sub("零+", "零", s)
    s = s.strip("零")
    return re.sub("^一十", "十", s)


def as_prompts(text: str) -> list[str]:
    return [PROMPT_OF[c] for c in text]


@pytest.mark.parametrize("n, text", [
    (0, "零"), (5, "五"), (10, "十"), (11, "十一"), (20, "二十"), (31, "三十一"), (100, "一百"), (105, "一百零五"),
    (110, "一百一十"), (115, "一百一十五"), (1000, "一千"), (1001, "一千零一"), (1010, "一千零一十"),
    (1100, "一千一百"), (2026, "二千零二十六"), (9999, "九千九百九十九"),
])
def test_say_number_reads_landmark_numbers_as_spoken(n, text):
    assert chinese_reading(n) == text
    assert say_number(n) == as_prompts(text)


def test_say_number_matches_the_reference_for_every_number_0_to_9999():
    for n in range(10_000):
        assert say_number(n) == as_prompts(chinese_reading(n)), n


@pytest.mark.parametrize("bad", [-1, 10_000, 3.0, "12", True, None])
def test_say_number_refuses_what_it_cannot_read(bad):
    with pytest.raises(ValueError):
        say_number(bad)


def test_say_date_reads_the_year_digit_by_digit_and_month_and_day_as_numbers():
    assert say_date(date(2026, 3, 31)) == as_prompts("二零二六年三月三十一日")
    assert say_date(date(2026, 10, 10)) == as_prompts("二零二六年十月十日")
    assert say_date(date(2030, 12, 20)) == as_prompts("二零三零年十二月二十日")


def test_say_date_for_every_day_of_a_leap_year():
    day, seen = date(2028, 1, 1), 0
    while day.year == 2028:
        text = "二零二八年" + chinese_reading(day.month) + "月" + chinese_reading(day.day) + "日"
        assert say_date(day) == as_prompts(text), day
        day += timedelta(days=1)
        seen += 1
    assert seen == 366


def test_say_digits_reads_ticket_numbers_digit_by_digit():
    assert say_digits("2026033100105") == as_prompts("二零二六零三三一零零一零五")
    assert say_digits("0") == ["digit_0"]


@pytest.mark.parametrize("bad", ["", "12a", "1 2", "١٢", "#1", "*"])
def test_say_digits_refuses_anything_but_ascii_digits(bad):
    with pytest.raises(ValueError):
        say_digits(bad)


def test_every_word_prompt_is_in_the_shipped_catalogue():
    catalogue = load_catalogue(DEFAULT_CATALOGUE_PATH)
    assert set(WORD_PROMPTS) <= set(catalogue)
    assert {catalogue[PROMPT_OF[c]] for c in PROMPT_OF} == set(PROMPT_OF)
