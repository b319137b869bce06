"""Caller numbers: one canonical form (E.164) for every way a number reaches us, and masking for logs.

Pure: no I/O. Restrictions are keyed by E.164, so every spelling of a number (+86, 0086, 86, trunk 0, area code
with or without dashes, SIP URI, channel-style "Name <number>") has to land on the same string, and anything
that is not a number has to come out as "no number" rather than an exception at call entry.

Article 20 of the Zhanjiang 12345 rules forbids passing a caller's identity on; logs therefore only ever see `masked`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

REGION = "CN"

# What Asterisk and SIP peers put in the caller id when there is none to show.
_ANONYMOUS = frozenset(
    {"", "anonymous", "unknown", "unavailable", "restricted", "private", "withheld", "none", "null", "-"}
)
# Caller ids are short; anything longer is garbage, and bounding it keeps the regexes and phonenumbers cheap.
_MAX_RAW = 256
_MAX_DIGITS = 20
_NUMBER_CHARS = re.compile(r"\+?[0-9 ()./\-]+")
_SCHEME = re.compile(r"^(sips?|tel):", re.IGNORECASE)
_MAX_SHOWN_DIGITS = 7
_MIN_HIDDEN_DIGITS = 4


@dataclass(frozen=True)
class CallerNumber:
    e164: str | None = field(repr=False)
    raw: str = field(repr=False)

    @property
    def masked(self) -> str:
        if self.e164 is not None:
            return _mask_e164(self.e164)
        return "anonymous" if _is_anonymous(_extract(self.raw)) else "invalid"

    @property
    def is_anonymous(self) -> bool:
        return self.e164 is None and _is_anonymous(_extract(self.raw))

    # The raw and full numbers stay out of repr/str so that logging the object cannot leak them.
    def __repr__(self) -> str:
        return f"CallerNumber(masked={self.masked!r})"

    def __str__(self) -> str:
        return self.masked


def normalise(raw: str | None) -> CallerNumber:
    """The caller number in E.164, or e164=None for anonymous/unparseable input. Never raises."""
    raw_text = raw if isinstance(raw, str) else ""
    try:
        e164, _problem = _parse(raw_text)
    except Exception:  # noqa: BLE001 - call entry must never fail on a caller id
        e164 = None
    return CallerNumber(e164=e164, raw=raw_text)


def normalise_strict(raw: str) -> str:
    """E.164 for operator input (CLI); ValueError saying what is wrong otherwise."""
    if not isinstance(raw, str):
        raise ValueError(f"phone number must be text, got {type(raw).__name__}")
    e164, problem = _parse(raw)
    if e164 is None:
        raise ValueError(f"{raw!r} is not a usable phone number: {problem}")
    return e164


def mask(e164_or_raw: str | None) -> str:
    """A log-safe form of any string: '138****8000', '0759****678', 'anonymous' or 'invalid'.

    Never shows more than 7 digits and always hides at least 4.
    """
    return normalise(e164_or_raw).masked


def _extract(raw: str) -> str:
    """The number-ish part of a caller id: user part of a SIP/tel URI, inside of 'Name <...>'."""
    text = raw.strip()
    if len(text) > _MAX_RAW:
        return text
    if "<" in text:
        start = text.rfind("<")
        end = text.find(">", start)
        if end != -1:
            text = text[start + 1 : end].strip()
    scheme = _SCHEME.match(text)
    if scheme:
        text = text[scheme.end() :]
        text = text.split("@", 1)[0]
        # URI parameters (";user=phone", ";phone-context=...", ";npdi") and headers are not part of the number.
        text = re.split(r"[;?]", text, maxsplit=1)[0]
        text = unquote(text)
    elif "@" in text:
        text = text.split("@", 1)[0]
    return text.strip().strip('"').strip()


def _is_anonymous(candidate: str) -> bool:
    return candidate.lower() in _ANONYMOUS


def _parse(raw: str) -> tuple[str | None, str]:
    """(e164, "") or (None, reason)."""
    if len(raw) > _MAX_RAW:
        return None, f"longer than {_MAX_RAW} characters"
    candidate = _extract(raw)
    if _is_anonymous(candidate):
        return None, "no number given (anonymous/unknown)"
    if not _NUMBER_CHARS.fullmatch(candidate):
        return None, "contains characters other than digits, '+', spaces, dashes, dots or brackets"
    digits = sum(ch.isdigit() for ch in candidate)
    if digits == 0:
        return None, "contains no digits"
    if digits > _MAX_DIGITS:
        return None, f"has {digits} digits, more than any phone number"
    try:
        number = phonenumbers.parse(candidate, REGION)
    except NumberParseException as exc:
        return None, f"cannot be parsed ({exc._msg})"
    # Validity (not mere possibility): phonenumbers maps some impossible digit strings onto other, real numbers
    # (e.g. by dropping what looks like a carrier prefix); a restriction must never land on an innocent number.
    if not phonenumbers.is_valid_number(number):
        return None, "not a valid number (mainland China, or international with +country code)"
    return phonenumbers.format_number(number, PhoneNumberFormat.E164), ""


def _mask_e164(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return "invalid"
    nsn = phonenumbers.national_significant_number(number)
    if number.country_code == 86:
        kind = phonenumbers.number_type(number)
        if kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE) and len(nsn) == 11:
            return mask_digits(nsn, head=3, tail=4)
        area = phonenumbers.length_of_geographical_area_code(number)
        if area:
            national = "0" + nsn
            head = area + 1
            return mask_digits(national, head=head, tail=_MAX_SHOWN_DIGITS - head)
        return mask_digits(nsn, head=3, tail=3)
    country = str(number.country_code)
    budget = _MAX_SHOWN_DIGITS - len(country)
    return f"+{country} " + mask_digits(nsn, head=budget // 2, tail=budget - budget // 2)


def shown_digits(length: int, *, head: int, tail: int) -> tuple[int, int]:
    """How many first and last digits of a `length`-digit number may show when `head` and `tail` are asked:
    whatever is asked, at most 7 digits shown and at least 4 hidden."""
    shown_max = max(0, min(_MAX_SHOWN_DIGITS, length - _MIN_HIDDEN_DIGITS))
    head, tail = max(0, head), max(0, tail)
    while head + tail > shown_max:
        if tail >= head and tail > 0:
            tail -= 1
        else:
            head -= 1
    return head, tail


def mask_digits(digits: str, *, head: int, tail: int) -> str:
    """`digits` with the middle hidden, as many shown as `shown_digits` allows."""
    head, tail = shown_digits(len(digits), head=head, tail=tail)
    hidden = len(digits) - head - tail
    return digits[:head] + "*" * hidden + (digits[len(digits) - tail :] if tail else "")
