"""One event per line, key=value, with a safety net that masks any phone number that slips into a message."""
from __future__ import annotations

import json
import logging
import re
import sys
import time

# A safety net under the rule that code logs only masked numbers: seven or more digits in a row, or digit groups
# in a phone layout ("+86 138 0013 8000", "0759-2345678"), keep their first 3 and last 4 digits (Zhanjiang 12345
# rules, art. 20). Dates (2026-03-31), times and uniqueids (1764222222.12) are left alone. The boundaries are
# ASCII letters (ids such as hex tokens) and digit-dot/colon-digit (uniqueids, fractions, host:port), not Python's
# Unicode \w or any '.' or ':': "号码13800138000", "sip:13800138000@..." and "... 13800138000." are masked too.
_NUMBER = re.compile(r"(?<![A-Za-z_\d])(?<!\d[.:])(?:\+?\d{7,}|\+?\d{2,4}(?:[ -]\d{3,8}){1,3})"
                     r"(?![A-Za-z_\d])(?![.:]\d)")


# Keys whose values are our own identifiers, never a caller's number: ticket ids are all digits so that callers
# can key them in the progress query, and must stay readable in the logs.
_OWN_IDS = ("ticket=", "ticket_id=")


def _mask_match(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    if len(digits) < 7 or m.string[max(0, m.start() - 10):m.start()].endswith(_OWN_IDS):
        return m.group(0)
    return f"{digits[:3]}****{digits[-4:]}"


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
