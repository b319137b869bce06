"""What the admin commands print: errors, times, numbers (masked unless asked, art. 20) and plain tables."""
from __future__ import annotations

import sys
import unicodedata
from datetime import datetime
from typing import Any

from gateway.basics.clock import SHANGHAI
from gateway.basics.phone import mask

def fail(message: str) -> int:
    """Print ``error: message`` on stderr; the exit status of bad input (2)."""
    print(f"error: {message}", file=sys.stderr)
    return 2
def iso(value: datetime | None) -> str | None:
    """The hotline's civil time to the second, or None."""
    return None if value is None else value.astimezone(SHANGHAI).isoformat(timespec="seconds")
def shown(number: str | None, full: bool) -> str:
    """A caller number as an operator sees it: masked unless ``full``."""
    if number is None:
        return "anonymous"
    return number if full else mask(number)
def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """Left-aligned columns ``(title, key)``, None shown as ``-``, aligned by display width (a Chinese character
    takes two cells in a terminal)."""
    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    def pad(text: str, w: int) -> str:
        return text + " " * (w - width(text))

    widths = [max(width(title), *(width(cell(row[key])) for row in rows)) for title, key in columns]
    print("  ".join(pad(title, w) for (title, _), w in zip(columns, widths)).rstrip())
    for row in rows:
        print("  ".join(pad(cell(row[key]), w) for (_, key), w in zip(columns, widths)).rstrip())
