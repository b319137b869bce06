import io
import logging
import re
import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.basics.logs import KeyValueFormatter, redact, setup_logging


@pytest.mark.parametrize("text, masked", [
    ("caller=13800138000", "caller=138****8000"),
    ("caller=+8613800138000", "caller=861****8000"),
    ("caller=008613800138000", "caller=008****8000"),
    ("from +86 138 0013 8000 ok", "from 861****8000 ok"),
    ("from 138 0013 8000 ok", "from 138****8000 ok"),
    ("landline 0759-2345678", "landline 075****5678"),
    ("landline 0759 2345678", "landline 075****5678"),
    ("short landline 2345678", "short landline 23****8"),
    ("eight digits 23456789", "eight digits 23****89"),
    ("x13800138000", "x138****8000"),
    ("call_13800138000 done", "call_138****8000 done"),
    ("138.0013.8000", "138****8000"),
    ("13800138000-2", "138****8000-2"),
    ("a,13800138000,b", "a,138****8000,b"),
    ("(13800138000)", "(138****8000)"),
    ("'13800138000'", "'138****8000'"),
    ("number=13800138000 number=13900139000", "number=138****8000 number=139****9000"),
])
def test_phone_numbers_keep_only_first_three_and_last_four_digits(text, masked):
    assert redact(text) == masked


@pytest.mark.parametrize("text", [
    "From: <sip:13800138000@127.0.0.1:5060>",
    "tel:+8613800138000",
    "来电号码13800138000已限制",
    "号码：13800138000。",
    "the caller was 13800138000.",
    "blocked 13800138000: restricted",
    "numbers:\n13800138000",
])
def test_numbers_next_to_uri_schemes_cjk_and_punctuation_are_masked(text):
    out = redact(text)
    assert "13800138000" not in out and "8613800138000" not in out
    assert "****8000" in out


@pytest.mark.parametrize("text", [
    "2026-03-31",
    "restricted until 2026-03-31",
    "10:15:00",
    "ts=2026-03-31T10:15:00.123",
    "decided_at=2026-03-31T10:15:00+08:00",
    "at=2026-03-31T02:15:00.123456+00:00",
    "2026-03-31 10:15:00 +0800",
    "uniqueid=1764222222.12",
    "call=1764222222.1234567 event=entry",
    "dial 12345",
    "dial 110 or 119",
    "emergency=110 priority=10",
    "listening on 127.0.0.1:4573",
    "ami 127.0.0.1:5038 2 events",
    "actionid=hg-1a2b3c4d-17",
    "duration=2240 seq=1000",
    "rtf=0.1234567",
    "peer 192.168.100.200",
    "message=3f2a9b81c7d64e5f9a0b1c2d3e4f5a6b",
])
def test_dates_times_uniqueids_and_short_numbers_are_left_alone(text):
    assert redact(text) == text


PHONE = st.from_regex(r"1[0-9]{10}", fullmatch=True)
# Where a number ends and the neighbouring token begins: an ASCII letter or digit glued on makes it part of an
# number (digits), "1." / ".5" make it part of a decimal or uniqueid; a hex id of 16 or more is our own.
SEPARATED_BEFORE = re.compile(r"(?:[0-9a-fA-F]|\d[.:])\Z")
SEPARATED_AFTER = re.compile(r"[0-9a-fA-F]|[.:]\d")


@given(st.text(), PHONE, st.text())
def test_no_mobile_number_survives_redaction(before, number, after):
    assume(not SEPARATED_BEFORE.search(before) and not SEPARATED_AFTER.match(after))
    assume(number not in before + after)
    assume(not before.endswith(("ticket=", "ticket_id=")))  # our own ids, never a caller's number (see logs.py)
    assert number not in redact(before + number + after)


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=30), PHONE)
def test_number_in_a_line_of_cjk_text_is_masked(text, number):
    assume(not SEPARATED_BEFORE.search(text) and not text.endswith(("ticket=", "ticket_id=")))
    assert number not in redact(text + number + "。")


def _forms(digits: str) -> list[str]:
    """The ways the project accepts a number (gateway.basics.phone), written out."""
    forms = [digits, "+86" + digits.lstrip("0"), "0086" + digits.lstrip("0")]
    if len(digits) == 11:
        forms += [f"{digits[:3]} {digits[3:7]} {digits[7:]}", f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
                  f"{digits[:3]}.{digits[3:7]}.{digits[7:]}", f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"]
    elif len(digits) > 8:
        forms += [f"{digits[:4]}-{digits[4:]}", f"{digits[:4]} {digits[4:]}", f"({digits[:4]}){digits[4:]}"]
    return forms


NUMBERS = st.one_of(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),       # mobile
                    st.from_regex(r"0759[2-8][0-9]{6,7}", fullmatch=True),    # Zhanjiang landline
                    st.from_regex(r"0[1-9][0-9]{1,2}[2-8][0-9]{6,7}", fullmatch=True),
                    st.from_regex(r"[2-8][0-9]{6,7}", fullmatch=True))        # local, without the area code
GLUE = st.sampled_from(["", " ", "x", "_", ".", "-", "号码", "tel:", "n=", "\n", "（", "Xy_"])


@given(NUMBERS, st.data(), GLUE, GLUE)
def test_every_accepted_number_form_is_masked_whatever_it_is_glued_to(digits, data, before, after):
    form = data.draw(st.sampled_from(_forms(digits)))
    out = redact(before + form + after + " 其他")
    assert form not in out
    # what is left of the number: its first and last digits around "****", never more than 4 in a row
    assert max(map(len, re.findall(r"\d+", out)), default=0) <= 4, out


@given(st.text())
def test_redact_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


# -- KeyValueFormatter -----------------------------------------------------------------------------------------------

def record(msg, *args, exc_info=None, level=logging.INFO):
    return logging.LogRecord("gateway.callflow", level, __file__, 1, msg, args, exc_info)


def test_formatter_writes_key_value_fields_on_one_line():
    line = KeyValueFormatter().format(record("call=%s event=%s", "1764222222.12", "entry"))
    assert re.fullmatch(r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} level=info logger=gateway\.callflow "
                        r"call=1764222222\.12 event=entry", line), line


def test_formatter_folds_a_traceback_into_the_same_line_and_masks_numbers_in_it():
    number = "1380013" + "8000"  # not as one literal: the traceback quotes this source line
    try:
        raise ValueError("cannot parse\n" + number)
    except ValueError:
        exc_info = sys.exc_info()
    line = KeyValueFormatter().format(record("call=%s event=fault\nsecond line", "1.1", exc_info=exc_info,
                                             level=logging.ERROR))
    assert "\n" not in line and "\r" not in line
    assert len(line.splitlines()) == 1
    assert "level=error" in line
    assert "event=fault\\nsecond line" in line
    assert " exc=" in line and "Traceback" in line and "ValueError" in line
    assert "13800138000" not in line and "138****8000" in line


def test_formatter_masks_a_number_in_the_message():
    line = KeyValueFormatter().format(record("caller=%s", "13800138000"))
    assert line.endswith("caller=138****8000")


def test_setup_logging_installs_one_key_value_handler_and_quiets_aiosqlite():
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("aiosqlite").level
    stream = io.StringIO()
    try:
        setup_logging("debug", stream=stream)
        assert len(root.handlers) == 1 and root.level == logging.DEBUG
        assert logging.getLogger("aiosqlite").level == logging.WARNING
        logging.getLogger("gateway.test").info("caller=%s", "+8613800138000")
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("aiosqlite").setLevel(saved[2])
    [line] = stream.getvalue().splitlines()
    assert "level=info logger=gateway.test caller=861****8000" in line


def test_ticket_ids_stay_readable_but_a_number_in_the_same_line_is_masked():
    line = "event=screenpop_queued ticket=2026112700001 ticket_id=2026112700002 caller=13800138000"
    assert redact(line) == ("event=screenpop_queued ticket=2026112700001 ticket_id=2026112700002 "
                            "caller=138****8000")
    # a phone number under another key is still masked, and "ticket=" elsewhere in the line does not protect it
    assert redact("ticket=x n=13800138000") == "ticket=x n=138****8000"
