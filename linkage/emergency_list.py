"""Article 14 emergency list: situations, the centres they go to, and the matcher over a transcript.

The list is data (`linkage/emergency.toml`, format documented there), validated at load; an `EmergencyList` is
immutable, so reloading without a restart is loading a new one and swapping the reference. No I/O here besides
reading that file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EMERGENCY_PATH = Path(__file__).with_name("emergency.toml")
# The centres the IVR menu and the ticket know (ivr/menu.py EMERGENCIES); the linkage config may widen this.
KNOWN_CENTRES = frozenset({"110", "119", "120", "122", "water", "power", "gas"})
DTMF_KEYS = "0123456789*#"
_ID = re.compile(r"[a-z][a-z0-9_]*")
_WHITESPACE = re.compile(r"\s+")
_FIELDS = {"id", "name", "centres", "menu_key", "category", "keywords", "cancel"}


class EmergencyListError(ValueError):
    """An emergency list that cannot be used; names the file, the field and the reason."""

    def __init__(self, file: str, field_path: str, reason: str) -> None:
        super().__init__(f"{file}: {field_path}: {reason}")
        self.file = file
        self.field_path = field_path
        self.reason = reason


@dataclass(frozen=True)
class Situation:
    id: str
    name: str
    centres: tuple[str, ...]
    menu_key: str | None
    keywords: tuple[str, ...]
    cancel: tuple[str, ...]
    category: str | None = None     # ticket category in the unit catalogue

    @property
    def centre(self) -> str:
        """The primary centre: the ticket's `emergency` field and the first hand-off target."""
        return self.centres[0]


@dataclass(frozen=True)
class Match:
    situation: str                  # id of the winning situation
    centre: str                     # its primary centre
    keyword: str                    # the phrase that matched
    also: tuple[str, ...] = ()      # ids of further matching situations, in list order
    category: str | None = None     # the situation's ticket category


@dataclass(frozen=True)
class EmergencyList:
    situations: tuple[Situation, ...]
    source: str = "<emergency list>"

    @classmethod
    def load(cls, path: str | Path = DEFAULT_EMERGENCY_PATH) -> EmergencyList:
        return load_emergency_list(path)

    def get(self, situation_id: str) -> Situation | None:
        return next((s for s in self.situations if s.id == situation_id), None)

    def by_menu_key(self, key: str) -> tuple[Situation, ...]:
        return tuple(s for s in self.situations if s.menu_key == key)

    def match(self, text: str) -> Match | None:
        """The first listed situation whose keyword occurs in `text` and none of whose cancel phrases do."""
        joined = _WHITESPACE.sub("", text)
        hits: list[tuple[Situation, str]] = []
        for situation in self.situations:
            keyword = next((k for k in situation.keywords if k in joined), None)
            if keyword is None or any(c in joined for c in situation.cancel):
                continue
            hits.append((situation, keyword))
        if not hits:
            return None
        first, keyword = hits[0]
        return Match(first.id, first.centre, keyword, tuple(s.id for s, _ in hits[1:]), first.category)


def load_emergency_list(path: str | Path = DEFAULT_EMERGENCY_PATH, *,
                        centres: Iterable[str] = KNOWN_CENTRES) -> EmergencyList:
    file = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise EmergencyListError(file, "<file>", f"cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise EmergencyListError(file, "<file>", f"not valid TOML: {e}") from e
    return parse_emergency_list(raw, source=file, centres=centres)


def parse_emergency_list(raw: Mapping[str, object], *, source: str = "<emergency list>",
                         centres: Iterable[str] = KNOWN_CENTRES) -> EmergencyList:
    known_centres = frozenset(centres)

    def fail(at: str, reason: str) -> EmergencyListError:
        return EmergencyListError(source, at, reason)

    extra = set(raw) - {"version", "situation"}
    if extra:
        raise fail(sorted(extra)[0], "unknown field (expected version and [[situation]] tables)")
    if raw.get("version", 1) != 1:
        raise fail("version", f"unsupported version {raw.get('version')!r} (this gateway reads version 1)")
    items = raw.get("situation")
    if not isinstance(items, list) or not items:
        raise fail("situation", "at least one [[situation]] table is required")
    situations: list[Situation] = []
    primary_by_key: dict[str, tuple[str, str]] = {}
    for i, item in enumerate(items):
        at = f"situation[{i}]"
        if not isinstance(item, Mapping):
            raise fail(at, "must be a table")
        unknown = set(item) - _FIELDS
        if unknown:
            raise fail(f"{at}.{sorted(unknown)[0]}", f"unknown field (expected {', '.join(sorted(_FIELDS))})")
        sid = item.get("id")
        if not isinstance(sid, str) or not _ID.fullmatch(sid):
            raise fail(f"{at}.id", "required; must match [a-z][a-z0-9_]*")
        at = f"situation[{i}] ({sid})"
        if any(s.id == sid for s in situations):
            raise fail(f"{at}.id", "duplicate id")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise fail(f"{at}.name", "required; a non-empty string")
        situation_centres = _strings(item.get("centres"), f"{at}.centres", fail)
        for j, centre in enumerate(situation_centres):
            if centre not in known_centres:
                raise fail(f"{at}.centres[{j}]", f"unknown centre {centre!r} (known: "
                           f"{', '.join(sorted(known_centres))})")
        if len(set(situation_centres)) != len(situation_centres):
            raise fail(f"{at}.centres", "a centre is listed twice")
        key = item.get("menu_key")
        if key is not None:
            if not isinstance(key, str) or len(key) != 1 or key not in DTMF_KEYS:
                raise fail(f"{at}.menu_key", "must be one DTMF key as a string: \"0\"-\"9\", \"*\" or \"#\"")
            if key in primary_by_key and primary_by_key[key][1] != situation_centres[0]:
                other, other_centre = primary_by_key[key]
                raise fail(f"{at}.menu_key", f"key {key!r} already leads to {other_centre} ({other}); "
                           "situations sharing a key must share the primary centre")
            primary_by_key.setdefault(key, (sid, situation_centres[0]))
        category = item.get("category")
        if category is not None and (not isinstance(category, str) or not category.strip()):
            raise fail(f"{at}.category", "must be a non-empty string (a category name in the unit catalogue)")
        keywords = _strings(item.get("keywords"), f"{at}.keywords", fail)
        cancel = _strings(item.get("cancel", []), f"{at}.cancel", fail, allow_empty=True)
        for j, phrase in enumerate(cancel):
            if phrase in keywords:
                raise fail(f"{at}.cancel[{j}]", f"{phrase!r} is also a keyword; the situation could never match")
        situations.append(Situation(sid, name.strip(), situation_centres, key, keywords, cancel,
                                    category.strip() if category else None))
    return EmergencyList(tuple(situations), source)


def _strings(value: object, at: str, fail, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise fail(at, "required; a non-empty list of strings" if not allow_empty else "must be a list of strings")
    out: list[str] = []
    for j, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise fail(f"{at}[{j}]", "must be a non-empty string")
        # Matching runs on the transcript with vosk's spaces removed, so phrases are compared the same way.
        out.append(_WHITESPACE.sub("", item))
    return tuple(out)

