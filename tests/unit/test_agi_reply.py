"""AGI reply and header lines: examples as res_agi.c writes them, and Hypothesis properties."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.agi.replies import (
    AGICommandError,
    AGIError,
    AGIProtocolError,
    AGIReply,
    command_verb,
    format_reply,
    one_word,
    parse_header_line,
    parse_reply,
    quote,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=1", AGIReply(200, "1", None, {})),
        ("200 result=-1", AGIReply(200, "-1", None, {})),
        ("200 result=49", AGIReply(200, "49", None, {})),
        ("200 result=1\n", AGIReply(200, "1", None, {})),
        ("200 result=1\r\n", AGIReply(200, "1", None, {})),
        ("200 result= (timeout)", AGIReply(200, "", "timeout", {})),
        ("200 result=123 (timeout)", AGIReply(200, "123", "timeout", {})),
        ("200 result=0 endpos=12345", AGIReply(200, "0", None, {"endpos": "12345"})),
        ("200 result=49 (dtmf) endpos=8000", AGIReply(200, "49", "dtmf", {"endpos": "8000"})),
        ("200 result=1 (hello world)", AGIReply(200, "1", "hello world", {})),
        ("200 result=1 ()", AGIReply(200, "1", "", {})),
        # GET VARIABLE of a value that itself holds parentheses and key=value text
        ("200 result=1 (f(x) = y) z=1)", AGIReply(200, "1", "f(x) = y) z=1", {})),
        ("200 result=1 (张三)", AGIReply(200, "1", "张三", {})),
        ("100 result=0 Trying...", AGIReply(100, "0", None, {})),
        ("200 result=1 (speech) endpos=0 results=1 text0=ni hao",
         AGIReply(200, "1", "speech", {"endpos": "0", "results": "1", "text0": "ni hao"})),
    ],
)
def test_reply_lines_parse_into_code_result_data_and_extra(line: str, expected: AGIReply) -> None:
    assert parse_reply(line) == expected


@pytest.mark.parametrize(
    ("line", "code", "text"),
    [
        ("510 Invalid or unknown command", 510, "Invalid or unknown command"),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511,
         "Command Not Permitted on a dead channel or intercept routine"),
        ("511 result=-1 Command Not Permitted on a dead channel or intercept routine", 511,
         "result=-1 Command Not Permitted on a dead channel or intercept routine"),
        ("520 Invalid command syntax.  Proper usage not available.", 520,
         "Invalid command syntax.  Proper usage not available."),
        ("520-Invalid command syntax.  Proper usage follows:", 520, "Invalid command syntax.  Proper usage follows:"),
        ("510", 510, ""),
    ],
)
def test_5xx_replies_raise_command_error_with_code_and_text(line: str, code: int, text: str) -> None:
    with pytest.raises(AGICommandError) as caught:
        parse_reply(line)
    assert (caught.value.code, caught.value.text) == (code, text)
    assert str(caught.value) == f"{code} {text}"


def test_command_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(AGICommandError(520, "usage")))
    assert (error.code, error.text) == (520, "usage")


@pytest.mark.parametrize(
    "line",
    ["", "HANGUP", "result=1", "200", "200 Success", "20 result=1", "2000 result=1", "300 result=1",
     "200-result=1", "abc result=1", "٢٠٠ result=1"],
)
def test_lines_that_are_not_replies_raise_protocol_error(line: str) -> None:
    with pytest.raises(AGIProtocolError):
        parse_reply(line)


def test_protocol_error_masks_what_could_be_a_caller_number_or_name() -> None:
    with pytest.raises(AGIProtocolError) as caught:
        parse_reply("200 value (13800138000 张三)")
    assert "13800138000" not in str(caught.value) and "张三" not in str(caught.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("agi_callerid: 13800138000", ("agi_callerid", "13800138000")),
        ("agi_calleridname: 张三\n", ("agi_calleridname", "张三")),
        ("agi_arg_2: ", ("agi_arg_2", "")),
        ("agi_arg_2:", ("agi_arg_2", "")),
        ("agi_arg_1:  two spaces", ("agi_arg_1", " two spaces")),
        ("agi_network_script: entry?lang=zh", ("agi_network_script", "entry?lang=zh")),
        ("agi_request: agi://127.0.0.1:4573/entry", ("agi_request", "agi://127.0.0.1:4573/entry")),
        ("agi_enhanced: 0.0\r\n", ("agi_enhanced", "0.0")),
    ],
)
def test_header_lines_split_at_the_first_colon(line: str, expected: tuple[str, str]) -> None:
    assert parse_header_line(line) == expected


@pytest.mark.parametrize("line", ["", "agi_callerid 13800138000", ": value", "agi callerid: x", "张: x"])
def test_malformed_header_lines_raise_protocol_error_without_echoing_digits(line: str) -> None:
    with pytest.raises(AGIProtocolError) as caught:
        parse_header_line(line)
    assert "13800138000" not in str(caught.value)


# ------------------------------------------------------------------------------------------ properties

@given(st.text())
@example("200 result=1 (")
@example("200 result=1 ((((")
@example("520-")
@example("200 result=1 )k=v")
@example("200 \x85result=1")
def test_parse_reply_raises_nothing_but_agi_errors(line: str) -> None:
    try:
        reply = parse_reply(line)
    except AGIError:
        return
    assert isinstance(reply, AGIReply) and 100 <= reply.code <= 299


@given(st.binary().map(lambda b: b.decode("utf-8", errors="replace")))
def test_parse_reply_on_decoded_bytes_raises_nothing_but_agi_errors(line: str) -> None:
    try:
        parse_reply(line)
    except AGIError:
        pass


@given(st.text())
def test_parse_header_line_raises_nothing_but_agi_errors(line: str) -> None:
    try:
        key, value = parse_header_line(line)
    except AGIError:
        return
    assert key and "\n" not in value


_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/*#,;@+"
_results = st.text(alphabet="0123456789-*#", max_size=20)
_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=10)
_values = st.text(alphabet=_SAFE, max_size=20)
_one_line = st.text().filter(lambda s: "\n" not in s and "\r" not in s)


@st.composite
def _replies(draw) -> AGIReply:
    code = draw(st.sampled_from([200, 200, 200, 100]))
    extra = draw(st.dictionaries(_keys, _values, max_size=4))
    if extra:
        # Asterisk's data before key=value pairs is a fixed word: dtmf, timeout, hangup, speech, writefile.
        data = draw(st.none() | st.text(alphabet=_SAFE + " (", max_size=20))
    else:
        # Alone at the end of the line it is a variable's value: anything on one line.
        data = draw(st.none() | _one_line)
    return AGIReply(code, draw(_results), data, extra)


@given(_replies())
@example(AGIReply(200, "1", "a) b=c", {}))
@example(AGIReply(200, "", "timeout", {}))
@example(AGIReply(200, "1", " spaced ", {}))
@example(AGIReply(200, "49", "dtmf", {"endpos": "8000"}))
def test_well_formed_replies_round_trip(reply: AGIReply) -> None:
    assert parse_reply(format_reply(reply)) == reply
    assert parse_reply(format_reply(reply) + "\n") == reply


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1), _one_line)
@example("agi_calleridname", "张三")
@example("agi_arg_1", "")
@example("agi_arg_1", " leading")
def test_well_formed_header_lines_round_trip(key: str, value: str) -> None:
    assert parse_header_line(f"{key}: {value}") == (key, value)
    assert parse_header_line(f"{key}: {value}\n") == (key, value)


# ------------------------------------------------------------------------------------------ command arguments

def asterisk_parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(), ported step by step: how Asterisk splits a command line into argv."""
    buf: list[str] = []
    starts: list[int] = []
    quoted = escaped = False
    whitespace = True
    for c in line:
        if c == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                starts.append(len(buf))
                whitespace = False
            escaped = False
            continue
        if c in " \t" and not quoted and not escaped:
            whitespace = True
            buf.append("\0")
            continue
        if c == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            starts.append(len(buf))
            whitespace = False
        buf.append(c)
        escaped = False
    text = "".join(buf) + "\0"
    return [text[s:text.index("\0", s)] for s in starts]


@given(_one_line.filter(lambda s: "\0" not in s))
@example('say "hi" \\ bye')
@example("\\")
@example("")
@example('"')
def test_quoted_arguments_reach_asterisk_unchanged(value: str) -> None:
    assert asterisk_parse_args(f"SET VARIABLE NOTE {quote(value)}") == ["SET", "VARIABLE", "NOTE", value]


def test_stream_file_with_empty_escape_digits_parses_to_an_empty_argument() -> None:
    assert asterisk_parse_args('STREAM FILE "hotline/welcome" ""') == ["STREAM", "FILE", "hotline/welcome", ""]


@pytest.mark.parametrize("value", ["", "two words", 'a"b', "tab\there"])
def test_unquoted_arguments_must_be_one_word(value: str) -> None:
    with pytest.raises(ValueError):
        one_word(value, "variable name")


@pytest.mark.parametrize(
    ("line", "verb"),
    [
        ('SET VARIABLE __HOTLINE_CALL_ID "1732690000.42"', "SET VARIABLE __HOTLINE_CALL_ID"),
        ("WAIT FOR DIGIT 5000", "WAIT FOR DIGIT"),
        ('EXEC Dial "PJSIP/agent1,30"', "EXEC"),
        ('VERBOSE "13800138000 called" 1', "VERBOSE"),
        ("GET DATA hotline/id 3000 18", "GET DATA"),
        ("", "?"),
    ],
)
def test_command_verb_names_the_command_without_its_arguments(line: str, verb: str) -> None:
    assert command_verb(line) == verb
