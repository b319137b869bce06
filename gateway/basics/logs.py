"""One event per line, key=value, with a safety net that masks any phone number that slips into a message."""
from __future__ import annotations

import json
import logging
import re
import sys
import time

from gateway.basics.phone import shown_digits

# A safety net under the rule that code logs only masked numbers: seven or more digits in a row, or digit groups
# in a phone layout ("+86 138 0013 8000", "0759-2345678", "(0759)2345678", "138.0013.8000"), are masked as
# phone.shown_digits allows (first 3 and last 4 at most, never more than 7 shown, at least 4 hidden: a local
# "2345678" becomes "23****8"; Zhanjiang 12345 rules, art. 20). A number glued to letters, underscores, dots or dashes ("x13800138000",
# "call_13800138000") is masked too. Left alone: dates (2026-03-31) and times, uniqueids (1764222222.12),
# decimals (0.1234567), dotted IPv4 addresses, our all-hex ids of 16 characters or more (message ids), and the
# values of our own id keys (ticket numbers are all digits so that callers can key them in).
_NUMBER = re.compile(r"(?<!\d)(?<!\d[.:])(?:\+?\d{7,}|\+?\d{2,4}(?:[ .-]\d{3,8}){1,3}"
                     r"|\(\+?\d{2,4}\)[ .-]?\d{3,8}(?:[ .-]\d{3,8}){0,2})(?!\d)(?![.:]\d)")
_TOKEN_CHAR = re.compile(r"[0-9A-Za-z_]")
_HEX_ID = re.compile(r"[0-9a-fA-F]{16,}")
_DECIMAL = re.compile(r"\d{1,3}\.\d+")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")

# Keys whose values are our own identifiers, never a caller's number: ticket ids are all digits so that callers
# can key them in the progress query, and must stay readable in the logs.
_OWN_IDS = ("ticket=", "ticket_id=")


def _token(text: str, start: int, end: int) -> str:
    """The run of letters, digits and underscores around text[start:end]."""
    while start > 0 and _TOKEN_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and _TOKEN_CHAR.match(text[end]):
        end += 1
    return text[start:end]


def _mask_match(m: re.Match[str]) -> str:
    found = m.group(0)
    digits = re.sub(r"\D", "", found)
    if len(digits) < 7 or m.string[max(0, m.start() - 10):m.start()].endswith(_OWN_IDS):
        return found
    if _DECIMAL.fullmatch(found) or _IPV4.fullmatch(found) or _HEX_ID.fullmatch(_token(m.string, *m.span())):
        return found
    # the log writes four stars whatever the number's length
    head, tail = shown_digits(len(digits), head=3, tail=4)
    return f"{digits[:head]}****{digits[len(digits) - tail:] if tail else ''}"


def redact(text: str) -> str:
    """Mask every phone-number-like run of digits in ``text``."""
    return _NUMBER.sub(_mask_match, text)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg`` on one line; tracebacks folded into the same line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        line = f"ts={ts} level={record.levelname.lower()} logger={record.name} {record.getMessage()}"
        if record.exc_info:
            line += " exc=" + repr(redact(self.formatException(record.exc_info)))
        # Masked before newlines become "\\n": the 'n' would otherwise hide a number at the start of a line.
        return redact(line).replace("\n", "\\n")


# A value that needs no quoting: no space, quote, '=' or backslash.
_PLAIN = re.compile(r'[^\s"=\\]+\Z')


def format_event(event: str, fields: dict[str, object]) -> str:
    """``event=<event> key=value ...``; None values left out, values with spaces or quotes JSON-quoted."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else str(value)
        if not _PLAIN.match(text):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def log_event(logger: logging.Logger, level: int, event: str, *, exc_info: bool = False, **fields: object) -> None:
    """Log one structured event line (formatted only if the level is enabled)."""
    if logger.isEnabledFor(level):
        logger.log(level, format_event(event, fields), exc_info=exc_info)


def setup_logging(level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosqlite logs every statement at DEBUG, with parameters (caller numbers among them)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
