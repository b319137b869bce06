"""Article 14 emergency list: situations, the centres they go to, and the matcher over a transcript.

The list is data (`linkage/emergency.toml`, format documented there), validated at load; an `EmergencyList` is
immutable, so reloading without a restart is loading a new one and swapping the reference (linkage/reloader.py).
No I/O here besides reading that file.

The `[centres.<name>]` tables say how each linked centre is reached: the Asterisk dial string, how long it may
ring, and how the case data goes with the call (MQTT, HTTP or not at all). A list without centre tables still
matches transcripts (triage), but cannot hand off: `load_emergency_list(..., require_centres=True)` refuses it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.contract import is_valid_name
from gateway.basics.data_errors import DataFileError, read_toml
from ivr.triage.lexicon import Lexicon, lexicon_for
from linkage.situation_match import Match, SituationMatcher

DEFAULT_EMERGENCY_PATH = Path(__file__).with_name("emergency.toml")
# The centres the IVR menu and the ticket know (ivr/menu.py EMERGENCIES); the linkage config may widen this.
KNOWN_CENTRES = frozenset({"110", "119", "120", "122", "water", "power", "gas"})
DTMF_KEYS = "0123456789*#"
_ID = re.compile(r"[a-z][a-z0-9_]*")
_WHITESPACE = re.compile(r"\s+")
_FIELDS = {"id", "name", "centres", "menu_key", "category", "keywords", "frame", "cancel", "override", "confirm"}
_FRAME_FIELDS = {"name", "event", "what", "cue", "near"}
DEFAULT_NEAR = 12
MAX_NEAR = 60
_CENTRE_FIELDS = {"name", "dial", "answer_timeout_s", "push", "http_url", "http_timeout_s", "http_retries",
                  "http_token_env"}
# One or more TECH/resource targets joined by '&' (Dial rings them all). ',' would end Dial's first argument.
_DIAL_TARGET = re.compile(r"[A-Za-z][A-Za-z0-9]*/[^\s,&|;()\\\"']+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL = re.compile(r"https?://[^\s/?#]+(/\S*)?")
PUSH_ADAPTERS = ("mqtt", "http", "none")
MAX_ANSWER_TIMEOUT_S = 300
MAX_HTTP_TIMEOUT_S = 60
MAX_HTTP_RETRIES = 10
DEFAULT_HTTP_TIMEOUT_S = 5.0
DEFAULT_HTTP_RETRIES = 2


class EmergencyListError(DataFileError):
    """An emergency list that cannot be used; names the file, the field and the reason."""


@dataclass(frozen=True)
class Frame:
    """A situation told by what happens rather than by its name: an event phrase, with (optionally) who or what
    it happens to within `near` characters, and (optionally) a danger cue anywhere in the transcript."""
    name: str
    event: tuple[str, ...]
    what: tuple[str, ...] = ()
    cue: tuple[str, ...] = ()
    near: int = DEFAULT_NEAR


@dataclass(frozen=True)
class Situation:
    id: str
    name: str
    centres: tuple[str, ...]
    menu_key: str | None
    keywords: tuple[str, ...]
    cancel: tuple[str, ...]
    category: str | None = None     # ticket category in the unit catalogue
    confirm: bool = True            # the caller confirms ("press 1 to be put through") before the transfer
    frames: tuple[Frame, ...] = ()
    override: tuple[str, ...] = ()  # "it is happening now" phrases that a cancelling context does not hold against

    @property
    def centre(self) -> str:
        """The primary centre: the ticket's `emergency` field and the first hand-off target."""
        return self.centres[0]


@dataclass(frozen=True)
class Centre:
    """How one linked centre is reached and told about the case."""
    name: str                       # "119"; MQTT user centre-<name>, topic hotline/linkage/<name>
    dial: str                       # Asterisk Dial() target, e.g. "PJSIP/centre-119"
    answer_timeout_s: float         # ring this long before the fallback
    push: str = "none"              # "mqtt" | "http" | "none"
    http_url: str | None = None
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S    # per attempt
    http_retries: int = DEFAULT_HTTP_RETRIES          # attempts after the first
    http_token_env: str | None = None                 # environment variable holding a bearer token
    label: str | None = None        # what the agent sees ("消防 119")


@dataclass(frozen=True)
class EmergencyList:
    situations: tuple[Situation, ...]
    source: str = "<emergency list>"
    centres: tuple[Centre, ...] = ()    # the [centres.<name>] tables, in file order
    lexicon: Lexicon = Lexicon()        # colloquial variants, applied to transcripts before matching

    def get_centre(self, name: str) -> Centre | None:
        return next((c for c in self.centres if c.name == name), None)

    def targets(self, situation_id: str) -> tuple[Centre, ...]:
        """The situation's configured centres in the order they are tried (empty if unknown or unconfigured)."""
        situation = self.get(situation_id)
        if situation is None:
            return ()
        return tuple(c for c in map(self.get_centre, situation.centres) if c is not None)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_EMERGENCY_PATH) -> EmergencyList:
        return load_emergency_list(path)

    def get(self, situation_id: str) -> Situation | None:
        return next((s for s in self.situations if s.id == situation_id), None)

    def by_menu_key(self, key: str) -> tuple[Situation, ...]:
        return tuple(s for s in self.situations if s.menu_key == key)

    def match(self, text: str) -> Match | None:
        """The situation a normalised transcript describes now (linkage/situation_match.py), or None."""
        return self.matcher().match(text)

    def matcher(self) -> SituationMatcher:
        """The compiled matcher for this list, built on first use."""
        compiled = self.__dict__.get("_matcher")
        if compiled is None:
            compiled = SituationMatcher(self)
            object.__setattr__(self, "_matcher", compiled)
        return compiled


def load_emergency_list(path: str | Path = DEFAULT_EMERGENCY_PATH, *,
                        centres: Iterable[str] = KNOWN_CENTRES, require_centres: bool = False,
                        lexicon: Lexicon | None = None) -> EmergencyList:
    file = str(path)
    raw = read_toml(path, EmergencyListError)
    return parse_emergency_list(raw, source=file, centres=centres, require_centres=require_centres,
                                lexicon=lexicon)


def parse_emergency_list(raw: Mapping[str, object], *, source: str = "<emergency list>",
                         centres: Iterable[str] = KNOWN_CENTRES, require_centres: bool = False,
                         lexicon: Lexicon | None = None) -> EmergencyList:
    """Validate a parsed file. With `[centres.<name>]` tables, those are the known centres; without them,
    `centres` names the known ones and the list has no way to reach them (refused if `require_centres`).
    "@set" phrases refer to the lexicon's sets (default: the packaged ivr/triage/lexicon.toml)."""

    def fail(at: str, reason: str) -> EmergencyListError:
        return EmergencyListError(source, at, reason)

    lexicon, expand = lexicon_for(lexicon, source, fail)

    def phrases(value: object, at: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        return expand(_strings(value, at, fail, allow_empty=allow_empty), at)

    extra = set(raw) - {"version", "situation", "centres"}
    if extra:
        raise fail(sorted(extra)[0], "unknown field (expected version, [[situation]] and [centres.<name>] tables)")
    if raw.get("version", 1) != 1:
        raise fail("version", f"unsupported version {raw.get('version')!r} (this gateway reads version 1)")
    items = raw.get("situation")
    if not isinstance(items, list) or not items:
        raise fail("situation", "at least one [[situation]] table is required")
    centre_table = raw.get("centres")
    if centre_table is None:
        if require_centres:
            raise fail("centres", "at least one [centres.<name>] table is required to hand calls off")
        configured: tuple[Centre, ...] = ()
        known_centres = frozenset(centres)
    else:
        configured = _parse_centres(centre_table, fail)
        known_centres = frozenset(c.name for c in configured)
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
        keywords = phrases(item.get("keywords"), f"{at}.keywords")
        cancel = phrases(item.get("cancel", []), f"{at}.cancel", allow_empty=True)
        override = phrases(item.get("override", []), f"{at}.override", allow_empty=True)
        for j, phrase in enumerate(cancel):
            if phrase in keywords:
                raise fail(f"{at}.cancel[{j}]", f"{phrase!r} is also a keyword; the situation could never match")
        frames = _parse_frames(item.get("frame", []), f"{at}.frame", fail, phrases)
        confirm = item.get("confirm", True)
        if not isinstance(confirm, bool):
            raise fail(f"{at}.confirm", "must be true or false (whether the caller confirms before the transfer)")
        situations.append(Situation(sid, name.strip(), situation_centres, key, keywords, cancel,
                                    category.strip() if category else None, confirm, frames, override))
    return EmergencyList(tuple(situations), source, configured, lexicon)


def _parse_frames(value: object, at: str, fail, phrases) -> tuple[Frame, ...]:
    if not isinstance(value, list):
        raise fail(at, "must be [[situation.frame]] tables")
    frames: list[Frame] = []
    for j, item in enumerate(value):
        here = f"{at}[{j}]"
        if not isinstance(item, Mapping):
            raise fail(here, "must be a table")
        unknown = set(item) - _FRAME_FIELDS
        if unknown:
            raise fail(f"{here}.{sorted(unknown)[0]}", f"unknown field (expected {', '.join(sorted(_FRAME_FIELDS))})")
        name = item.get("name", f"frame {j}")
        if not isinstance(name, str) or not name.strip():
            raise fail(f"{here}.name", "must be a non-empty string")
        near = item.get("near", DEFAULT_NEAR)
        if isinstance(near, bool) or not isinstance(near, int) or not 0 <= near <= MAX_NEAR:
            raise fail(f"{here}.near", f"must be a whole number of characters 0-{MAX_NEAR}, got {near!r}")
        frames.append(Frame(name.strip(), phrases(item.get("event"), f"{here}.event"),
                            phrases(item.get("what", []), f"{here}.what", allow_empty=True),
                            phrases(item.get("cue", []), f"{here}.cue", allow_empty=True), near))
    return tuple(frames)


def _parse_centres(table: object, fail) -> tuple[Centre, ...]:
    if not isinstance(table, Mapping) or not table:
        raise fail("centres", "must be [centres.<name>] tables, at least one")
    out: list[Centre] = []
    for name, item in table.items():
        at = f"centres.{name}"
        if not is_valid_name(name):  # it becomes an MQTT user (centre-<name>) and a topic level
            raise fail(at, "centre name must be letters, digits, '_', '.' or '-' (it becomes an MQTT user and topic)")
        if not isinstance(item, Mapping):
            raise fail(at, "must be a table")
        unknown = set(item) - _CENTRE_FIELDS
        if unknown:
            raise fail(f"{at}.{sorted(unknown)[0]}", f"unknown field (expected {', '.join(sorted(_CENTRE_FIELDS))})")
        label = item.get("name")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise fail(f"{at}.name", "must be a non-empty string")
        dial = item.get("dial")
        if not isinstance(dial, str) or not dial.strip():
            raise fail(f"{at}.dial", "required; an Asterisk dial string such as \"PJSIP/centre-119\"")
        if not all(_DIAL_TARGET.fullmatch(part) for part in dial.strip().split("&")):
            raise fail(f"{at}.dial", f"{dial!r} is not TECH/resource (several joined by '&'); no spaces, ',', "
                       "'|', ';', quotes or brackets")
        answer_timeout = _number(item.get("answer_timeout_s"), f"{at}.answer_timeout_s", fail,
                                 maximum=MAX_ANSWER_TIMEOUT_S, what="seconds the centre may ring")
        push = item.get("push")
        if push not in PUSH_ADAPTERS:
            raise fail(f"{at}.push", f"required; one of {', '.join(repr(p) for p in PUSH_ADAPTERS)}, got {push!r}")
        url = item.get("http_url")
        if url is not None and (not isinstance(url, str) or not _URL.fullmatch(url)):
            raise fail(f"{at}.http_url", f"must be an http:// or https:// URL, got {url!r}")
        if push == "http" and url is None:
            raise fail(f"{at}.http_url", "required when push = \"http\"")
        if url is not None and not is_allowed_push_url(url):
            raise fail(f"{at}.http_url", f"plain http:// only to this machine (127.0.0.1, ::1, localhost), got "
                       f"{url!r}: the case carries the caller's number and words (art. 20), so a centre elsewhere "
                       "is reached over https://")
        http_timeout = _number(item.get("http_timeout_s", DEFAULT_HTTP_TIMEOUT_S), f"{at}.http_timeout_s", fail,
                               maximum=MAX_HTTP_TIMEOUT_S, what="seconds per HTTP attempt")
        retries = item.get("http_retries", DEFAULT_HTTP_RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_HTTP_RETRIES:
            raise fail(f"{at}.http_retries", f"must be a whole number 0-{MAX_HTTP_RETRIES} (attempts after the "
                       f"first), got {retries!r}")
        token_env = item.get("http_token_env")
        if token_env is not None and (not isinstance(token_env, str) or not _ENV_NAME.fullmatch(token_env)):
            raise fail(f"{at}.http_token_env", "must be an environment variable name (the token itself never "
                       "goes in this file)")
        out.append(Centre(name, dial.strip(), answer_timeout, push, url, http_timeout, retries, token_env,
                          label.strip() if label else None))
    return tuple(out)


def is_allowed_push_url(url: str) -> bool:
    """https:// anywhere; plain http:// only to a loopback host, where nothing crosses a network."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:          # e.g. an unclosed IPv6 bracket
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(value: object, at: str, fail, *, maximum: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= maximum:
        reason = "required; " if value is None else ""
        raise fail(at, f"{reason}{what}: a number above 0 and at most {maximum}, got {value!r}")
    return float(value)


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

