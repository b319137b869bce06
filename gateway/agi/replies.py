"""AGI wire format: the typed errors, one reply line, one header line.

Pure functions over text, no I/O; gateway.agi.server owns the sockets. Formats as res_agi.c (Asterisk 22) writes them:

    200 result=1                         200 result= (timeout)
    200 result=1 (value of a variable)   200 result=0 endpos=12345
    200 result=49 (dtmf) endpos=8000     100 result=0 Trying...
    510 Invalid or unknown command       511 Command Not Permitted on a dead channel or intercept routine
    520-Invalid command syntax.  Proper usage follows:   (then usage lines, then "520 End of proper usage.")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "AGIError",
    "AGIHangup",
    "AGITimeout",
    "AGIProtocolError",
    "AGICommandError",
    "AGIReply",
    "parse_reply",
    "parse_header_line",
    "format_reply",
    "quote",
    "one_word",
    "command_verb",
    "raise_if_hangup",
    "digit_result",
]


class AGIError(Exception):
    """Base of everything the AGI layer raises about the channel or the protocol."""


class AGIHangup(AGIError):
    """The channel is gone: HANGUP line seen, 511 reply, or EOF on the socket."""


class AGITimeout(AGIError):
    """Asterisk did not reply to a command in time; the session cannot resynchronise and is closed."""


class AGIProtocolError(AGIError):
    """A header or reply line that is not AGI, or a header block / line over its size bound."""


class AGICommandError(AGIError):
    """A 5xx reply: 510 invalid command, 511 dead channel, 520 usage error, ..."""

    def __init__(self, code: int, text: str) -> None:
        # Both in args so the exception pickles and copies like any other.
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True)
class AGIReply:
    code: int
    result: str
    data: str | None
    extra: dict[str, str] = field(default_factory=dict)


# Three ASCII digits, then " " (last line), "-" (first line of a multi-line reply) or nothing.
_CODE = re.compile(r"([0-9]{3})(?:([ -])(.*))?\Z", re.DOTALL)
_RESULT = re.compile(r"result=(\S*)")
# A key=value token: what follows the closing parenthesis of the data in "(dtmf) endpos=8000".
_KV_AHEAD = re.compile(r"\s+[^\s=()]+=")
_HEADER_KEY = re.compile(r"[A-Za-z0-9_]+\Z")


def _strip_eol(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


def _sample(line: str) -> str:
    """A malformed line for an error message: a reply can carry a variable's value (a caller number, a caller
    name) and error messages end up in logs, so digits past the code and non-ASCII text are masked."""

    def shown(i: int, c: str) -> str:
        if c.isdigit():
            return c if i < 3 and c.isascii() else "#"
        return c if c.isascii() and c.isprintable() else "?"

    return repr("".join(shown(i, c) for i, c in enumerate(line[:60])) + ("..." if len(line) > 60 else ""))


def parse_reply(line: str) -> AGIReply:
    """Parse one reply line; 5xx raises AGICommandError, anything that is not a reply AGIProtocolError.

    A 1xx line ("100 result=0 Trying...") parses as a reply with its code; the caller reads on.
    """
    line = _strip_eol(line)
    m = _CODE.match(line)
    if m is None:
        raise AGIProtocolError(f"not an AGI reply line: {_sample(line)}")
    code = int(m.group(1))
    rest = m.group(3) or ""
    if 500 <= code <= 599:
        raise AGICommandError(code, rest)
    if m.group(2) == "-":
        raise AGIProtocolError(f"unexpected multi-line {code} reply: {_sample(line)}")
    if not (100 <= code <= 299):
        raise AGIProtocolError(f"unexpected reply code {code}: {_sample(line)}")
    rest = rest.lstrip()
    rm = _RESULT.match(rest)
    if rm is None:
        if code < 200:
            return AGIReply(code, "", None, {})
        raise AGIProtocolError(f"reply without result=: {_sample(line)}")
    result = rm.group(1)
    tail = rest[rm.end():]
    data, tail = _split_data(tail)
    return AGIReply(code, result, data, _parse_extra(tail))


def _split_data(tail: str) -> tuple[str | None, str]:
    """Split " (data) k=v ..." into data and the rest.

    GET VARIABLE puts the value in parentheses at the end of the line, and the value may itself hold
    parentheses: when the line ends with ")", the data runs to that last ")". Otherwise (RECORD FILE's
    "(dtmf) endpos=8000") the data ends at the first ")" that a key=value token follows.
    """
    stripped = tail.lstrip()
    if not stripped.startswith("("):
        return None, tail
    body = stripped[1:]
    if body.endswith(")"):
        return body[:-1], ""
    pos = body.find(")")
    while pos != -1:
        if _KV_AHEAD.match(body, pos + 1):
            return body[:pos], body[pos + 1:]
        pos = body.find(")", pos + 1)
    # An unclosed "(": keep the text rather than fail the call over a cosmetic field.
    return body, ""


def _parse_extra(tail: str) -> dict[str, str]:
    extra: dict[str, str] = {}
    last: str | None = None
    for token in tail.split():
        key, eq, value = token.partition("=")
        if eq and key:
            extra[key] = value
            last = key
        elif last is not None:
            # A value with spaces (SPEECH RECOGNIZE's text0=...): keep it whole.
            extra[last] = f"{extra[last]} {token}"
        # Bare words before any key ("Trying...") carry nothing.
    return extra


def format_reply(reply: AGIReply) -> str:
    """The line Asterisk would send for `reply` (without the newline); used by tests and synthetic clients."""
    parts = [f"{reply.code} result={reply.result}"]
    if reply.data is not None:
        parts.append(f"({reply.data})")
    parts.extend(f"{k}={v}" for k, v in reply.extra.items())
    return " ".join(parts)


def parse_header_line(line: str) -> tuple[str, str]:
    """ "agi_callerid: 1380..." -> ("agi_callerid", "1380...").

    Asterisk writes "%s: %s\\n", so exactly one space after the colon belongs to the format; an empty
    argument arrives as "agi_arg_2: " and parses to "".
    """
    line = _strip_eol(line)
    key, colon, value = line.partition(":")
    # a header is one line: a line break inside one is not Asterisk talking
    if not colon or not _HEADER_KEY.match(key) or "\n" in value or "\r" in value:
        raise AGIProtocolError(f"not an AGI header line: {_sample(line)}")
    if value.startswith(" "):
        value = value[1:]
    return key, value


# --------------------------------------------------------------------------------------------- commands

def quote(value: str) -> str:
    """An AGI argument in double quotes; res_agi's parse_args() undoes the backslash escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_WORD = re.compile(r'[^\s"]+\Z')


def one_word(value: str, what: str) -> str:
    """An argument sent unquoted (a variable name, a prompt name for GET DATA): one word."""
    if not _WORD.match(value):
        raise ValueError(f"{what} must be one word without quotes: {value!r}")
    return value


def command_verb(line: str) -> str:
    """ 'SET VARIABLE X "v"' -> "SET VARIABLE X": the leading upper-case words, never the quoted arguments,
    so a command can be named in a log line without what it carries."""
    words = []
    for word in line.split(None, 3)[:3]:
        if not word.isupper() or not word.replace("_", "").isalnum():
            break
        words.append(word)
    return " ".join(words) or "?"


def raise_if_hangup(reply: AGIReply, what: str) -> None:
    if reply.result == "-1":
        raise AGIHangup(f"{what} returned -1")


def digit_result(reply: AGIReply, what: str) -> str | None:
    """WAIT FOR DIGIT / STREAM FILE: result is the ASCII code of the digit, 0 for none, -1 for hangup."""
    try:
        code = int(reply.result)
    except ValueError:
        raise AGIProtocolError(f"{what}: result is not a number") from None
    if code < 0:
        raise AGIHangup(f"{what} returned {code}")
    if code == 0:
        return None
    if code > 0x10FFFF:
        raise AGIProtocolError(f"{what}: result {code} is not a character")
    return chr(code)
