"""The shared lexicon (`ivr/triage/lexicon.toml`): how callers say things, apart from what the things are.

- ``[variants]``: colloquial and Cantonese-influenced words and their standard Mandarin (冇 -> 没, 阿婆 -> 老人,
  火烛 -> 着火). They are rewritten in the transcript before any lookup, so the emergency list and the unit
  catalogue are written in standard Mandarin once.
- ``[sets]``: named phrase lists (``person``, ``now``, ``past``, ...) that the emergency list's frames and
  cancelling contexts and the unit catalogue refer to as ``"@name"``.

Validated at load; errors name the file, the entry and the reason. Pure apart from reading the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from gateway.basics.data_errors import DataFileError, read_toml

DEFAULT_LEXICON_PATH = Path(__file__).with_name("lexicon.toml")
_SET_NAME = re.compile(r"[a-z][a-z0-9_]*")
_WHITESPACE = re.compile(r"\s+")


class LexiconError(DataFileError):
    """A lexicon (or a reference to one of its sets) that cannot be used."""


@dataclass(frozen=True)
class Lexicon:
    variants: Mapping[str, str] = field(default_factory=dict)
    sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "<lexicon>"

    def __post_init__(self) -> None:
        ordered = sorted(self.variants, key=len, reverse=True)     # the longest variant wins at a position
        pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        object.__setattr__(self, "_pattern", pattern)

    def standardise(self, text: str) -> str:
        """The text with every colloquial variant replaced by its standard form."""
        pattern = self._pattern     # type: ignore[attr-defined]
        if pattern is None:
            return text
        return pattern.sub(lambda m: self.variants[m.group(0)], text)

    def expand(self, phrases: Iterable[str], *, source: str, at: str) -> tuple[str, ...]:
        """Phrases with each "@set" replaced by the set's phrases; an unknown set is a data error of `source`."""
        out: list[str] = []
        for j, phrase in enumerate(phrases):
            if phrase.startswith("@"):
                name = phrase[1:]
                if name not in self.sets:
                    known = ", ".join(sorted(self.sets)) or "none"
                    raise LexiconError(source, f"{at}[{j}]", f"unknown phrase set {phrase!r} (the lexicon "
                                       f"{self.source} has: {known})")
                out.extend(p for p in self.sets[name] if p not in out)
            elif (standard := self.standardise(phrase)) not in out:
                out.append(standard)
        return tuple(out)


Expander = Callable[[Iterable[str], str], tuple[str, ...]]


def lexicon_for(lexicon: Lexicon | None, source: str,
                fail: Callable[[str, str], DataFileError]) -> tuple[Lexicon, Expander]:
    """The lexicon a data file refers to (default: the packaged one) and its `expand(phrases, at)`, both raising
    the file's own error (`fail(at, reason)`), so that a bad "@set" or an unusable lexicon is named where used."""
    if lexicon is None:
        try:
            lexicon = default_lexicon()
        except LexiconError as e:
            raise fail("<lexicon>", str(e)) from e
    chosen = lexicon

    def expand(phrases: Iterable[str], at: str) -> tuple[str, ...]:
        try:
            return chosen.expand(phrases, source=source, at=at)
        except LexiconError as e:
            raise fail(at, e.reason) from e

    return chosen, expand


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The packaged lexicon, loaded once and shared, so that every data file standardises a text alike."""
    return load_lexicon()


def load_lexicon(path: str | Path = DEFAULT_LEXICON_PATH) -> Lexicon:
    file = str(path)
    raw = read_toml(path, LexiconError)
    return parse_lexicon(raw, source=file)


def parse_lexicon(raw: Mapping[str, object], *, source: str = "<lexicon>") -> Lexicon:
    def fail(at: str, reason: str) -> LexiconError:
        return LexiconError(source, at, reason)

    extra = set(raw) - {"version", "variants", "sets"}
    if extra:
        raise fail(sorted(extra)[0], "unknown field (expected version, [variants] and [sets])")
    if raw.get("version", 1) != 1:
        raise fail("version", f"unsupported version {raw.get('version')!r} (this gateway reads version 1)")
    variants_raw = raw.get("variants", {})
    if not isinstance(variants_raw, Mapping):
        raise fail("variants", "must be a table of \"colloquial\" = \"standard\"")
    variants: dict[str, str] = {}
    for word, standard in variants_raw.items():
        word_key = _WHITESPACE.sub("", word)
        if not word_key:
            raise fail(f"variants.{word!r}", "the colloquial word is empty")
        if not isinstance(standard, str) or not _WHITESPACE.sub("", standard):
            raise fail(f"variants.{word}", "must be a non-empty string (the standard Mandarin form)")
        if word_key in variants:
            raise fail(f"variants.{word}", "listed twice")
        variants[word_key] = _WHITESPACE.sub("", standard)
    sets_raw = raw.get("sets", {})
    if not isinstance(sets_raw, Mapping):
        raise fail("sets", "must be a table of name = [phrases]")
    lexicon = Lexicon(variants, {}, source)
    sets: dict[str, tuple[str, ...]] = {}
    for name, phrases in sets_raw.items():
        at = f"sets.{name}"
        if not _SET_NAME.fullmatch(name):
            raise fail(at, "set names must match [a-z][a-z0-9_]*")
        if not isinstance(phrases, list) or not phrases:
            raise fail(at, "must be a non-empty list of phrases")
        out: list[str] = []
        for j, phrase in enumerate(phrases):
            if not isinstance(phrase, str) or not _WHITESPACE.sub("", phrase):
                raise fail(f"{at}[{j}]", "must be a non-empty string")
            if phrase.startswith("@"):
                raise fail(f"{at}[{j}]", "a set cannot refer to another set")
            standard = lexicon.standardise(_WHITESPACE.sub("", phrase))
            if standard in out:
                raise fail(f"{at}[{j}]", f"{phrase!r} is listed twice")
            out.append(standard)
        sets[name] = tuple(out)
    return Lexicon(variants, sets, source)
