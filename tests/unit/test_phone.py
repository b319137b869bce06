import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.basics.phone import CallerNumber, mask, normalise, normalise_strict

MOBILE_SPELLINGS = [
    "+86 138 0013 8000",
    "+8613800138000",
    "008613800138000",
    "0086 138-0013-8000",
    "8613800138000",
    "13800138000",
    "013800138000",  # out-of-area mobiles are often presented with a trunk 0
    "138-0013-8000",
    "(138) 0013 8000",
    "sip:13800138000@1.2.3.4",
    "sip:+8613800138000@10.0.0.1;user=phone",
    "sips:%2B8613800138000@example.org",
    "tel:+86-138-0013-8000",
    "Caller <13800138000>",
    '"Zhang San" <sip:13800138000@trunk.example;transport=udp>',
    "  13800138000\n",
]

LANDLINE_SPELLINGS = [
    "0759-2345678",
    "07592345678",
    "0759 234 5678",
    "+86 759 2345678",
    "+86 0759 2345678",
    "0086 759 2345678",
    "867592345678",
    "<sip:07592345678@gw>",
]


@pytest.mark.parametrize("raw", MOBILE_SPELLINGS)
def test_every_spelling_of_a_mobile_is_one_e164_number(raw):
    caller = normalise(raw)
    assert caller.e164 == "+8613800138000"
    assert caller.raw == raw
    assert caller.masked == "138****8000"


@pytest.mark.parametrize("raw", LANDLINE_SPELLINGS)
def test_every_spelling_of_a_zhanjiang_landline_is_one_e164_number(raw):
    caller = normalise(raw)
    assert caller.e164 == "+867592345678"
    assert caller.masked == "0759****678"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+861012345678", "010****5678"),  # Beijing: 2-digit area code keeps 4 trailing digits
        ("+862012345678", "020****5678"),
        ("+8675922345678", None),  # 8-digit local number under 0759 is not valid: no e164, nothing shown
        ("+864006001234", "400****234"),
        ("+442079460958", "+44 20*****958"),
    ],
)
def test_masks_keep_the_area_code_and_the_last_digits(raw, masked):
    caller = normalise(raw)
    if masked is None:
        assert caller.e164 is None
        assert caller.masked == "invalid"
    else:
        assert caller.masked == masked
        assert sum(ch.isdigit() for ch in caller.masked) <= 7


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "anonymous", "Anonymous", "unknown", "<unknown>", "<>", "sip:anonymous@anonymous.invalid",
            "restricted", "Unavailable", "sip:@host"]
)
def test_missing_caller_ids_are_anonymous(raw):
    caller = normalise(raw)
    assert caller.e164 is None
    assert caller.masked == "anonymous"
    assert caller.is_anonymous


@pytest.mark.parametrize(
    "raw",
    ["abc", "*#", "1" * 40, "12345", "110", "+", "++8613800138000", "1380013800", "138001380001", "13800138000abc",
     "Caller <abc>", "+8612345678901234", "0" * 300, "13800138000" * 30, "\x00\x01", "١٣٨٠٠١٣٨٠٠٠"],
)
def test_garbage_caller_ids_are_invalid_without_raising(raw):
    caller = normalise(raw)
    assert caller.e164 is None
    assert caller.masked == "invalid"
    assert not caller.is_anonymous


def test_non_text_input_is_treated_as_no_number():
    assert normalise(13800138000).e164 is None  # type: ignore[arg-type]


def test_repr_and_str_never_show_the_number():
    caller = normalise("13800138000")
    assert "13800138000" not in repr(caller)
    assert "13800138000" not in str(caller)
    assert "138****8000" in repr(caller)
    assert f"{caller}" == "138****8000"


def test_caller_number_is_hashable_and_comparable():
    assert normalise("13800138000") == CallerNumber(e164="+8613800138000", raw="13800138000")
    assert len({normalise("13800138000"), normalise("13800138000")}) == 1


def test_strict_returns_e164_for_operator_input():
    assert normalise_strict("138 0013 8000") == "+8613800138000"
    assert normalise_strict("0759-2345678") == "+867592345678"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "no number"),
        ("anonymous", "no number"),
        ("abc", "characters other than digits"),
        ("*#", "characters other than digits"),
        ("1" * 40, "40 digits"),
        ("12345", "not a valid number"),
    ],
)
def test_strict_rejects_with_a_message_naming_the_problem(raw, problem):
    with pytest.raises(ValueError, match=problem):
        normalise_strict(raw)


def test_strict_rejects_non_text():
    with pytest.raises(ValueError, match="must be text"):
        normalise_strict(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("+8613800138000", "138****8000"), ("13800138000", "138****8000"), ("+867592345678", "0759****678"),
     (None, "anonymous"), ("", "anonymous"), ("garbage 13800138000 xx", "invalid"), ("1" * 40, "invalid")],
)
def test_mask_accepts_any_string(value, expected):
    assert mask(value) == expected


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


caller_ids = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.text(alphabet="0123456789+-() ", max_size=30),
    st.from_regex(r"(\+86|0086|86|0)?1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"(\+86|0)?[1-9][0-9]{1,2}[0-9]{7,8}", fullmatch=True),
    st.builds(lambda user, host: f"sip:{user}@{host}", st.text(max_size=20), st.text(max_size=10)),
    st.builds(lambda name, num: f'"{name}" <{num}>', st.text(max_size=10), st.text(alphabet="0123456789+", max_size=20)),
)


@settings(max_examples=500)
@given(caller_ids)
def test_normalise_never_raises_and_gives_e164_or_none(raw):
    caller = normalise(raw)
    assert caller.e164 is None or re.fullmatch(r"\+[1-9][0-9]{6,14}", caller.e164)


@settings(max_examples=500)
@given(caller_ids)
def test_mask_never_shows_more_than_seven_digits(raw):
    masked = mask(raw)
    assert _digits(masked) <= 7
    if raw is not None and _digits(raw) >= 8:
        # whatever was typed, the full digit string never reappears
        assert re.sub(r"\D", "", raw) not in re.sub(r"\D", "", masked) or _digits(masked) == 0


@settings(max_examples=300)
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_valid_mobiles_mask_as_three_stars_four(national):
    caller = normalise(national)
    if caller.e164 is not None:
        assert caller.e164 == "+86" + national
        assert caller.masked == f"{national[:3]}****{national[-4:]}"
        assert normalise("+86" + national).e164 == normalise("0086" + national).e164 == caller.e164


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_strict_and_lenient_agree(national):
    caller = normalise(national)
    if caller.e164 is None:
        with pytest.raises(ValueError):
            normalise_strict(national)
    else:
        assert normalise_strict(national) == caller.e164
