"""The unit catalogue (`ivr/triage/units.toml`): ticket categories, their keywords and the responsible unit (art. 10).

Loading validates the file and names the file, the field and the reason on bad data; `classify` is pure. Keywords
are looked up as written, by sound and with a dropped character (ivr/triage/phrases.py) after the lexicon's
colloquial variants are rewritten; a keyword heard by sound counts for less than one heard as written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.basics.data_errors import DataFileError, read_toml
from ivr.triage.lexicon import Lexicon, lexicon_for
from ivr.triage.phrases import Hit, PhraseIndex, Prepared

DEFAULT_UNITS_PATH = Path(__file__).with_name("units.toml")
_WHITESPACE = re.compile(r"\s+")
_FIELDS = {"name", "unit", "keywords", "exclude"}


class UnitCatalogueError(DataFileError):
    """A unit catalogue that cannot be used; names the file, the field and the reason."""


@dataclass(frozen=True)
class Category:
    name: str
    unit: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def score(self, hits: dict[str, Hit]) -> float:
        """Summed length of the keywords heard (one inside a longer heard one not counted again), each weighted
        by how it was heard; 0 when an exclude phrase was heard as written."""
        if any(p in hits and hits[p].firm for p in self.exclude):
            return 0.0
        found = [k for k in self.keywords if k in hits]
        if len(found) == 1 and not hits[found[0]].firm:
            return 0.0      # a lone two-character sound-alike (师傅 for 的士) says nothing
        return sum(len(k) * hits[k].weight for k in found if not any(k != o and k in o for o in found))


@dataclass(frozen=True)
class Ranked:
    category: Category
    score: float
    heard: tuple[str, ...]      # the keywords heard and how, for `--explain`


@dataclass(frozen=True)
class UnitCatalogue:
    categories: tuple[Category, ...]
    source: str = "<unit catalogue>"
    lexicon: Lexicon = Lexicon()

    def __post_init__(self) -> None:
        phrases = {p for c in self.categories for p in c.keywords + c.exclude}
        object.__setattr__(self, "index", PhraseIndex(phrases))
        owners: dict[str, set[int]] = {}
        for i, c in enumerate(self.categories):
            for p in c.keywords:
                owners.setdefault(p, set()).add(i)
        object.__setattr__(self, "owners", owners)     # keyword -> the categories listing it

    @classmethod
    def load(cls, path: str | Path = DEFAULT_UNITS_PATH) -> UnitCatalogue:
        return load_units(path)

    def prepare(self, text: str) -> Prepared:
        return Prepared.of(self.lexicon.standardise(_WHITESPACE.sub("", text)))

    @property
    def phrases(self) -> frozenset[str]:
        return self.index.phrases             # type: ignore[attr-defined]

    def rank(self, text: str | Prepared, *, hits: dict[str, Hit] | None = None) -> list[Ranked]:
        """Categories with a score above 0, best first; ties keep the catalogue's order. `hits`: the phrases
        already found in `text` by an index holding at least the catalogue's phrases."""
        prepared = text if isinstance(text, Prepared) else self.prepare(text)
        if hits is None:
            hits = self.index.find(prepared)  # type: ignore[attr-defined]
        owners = self.owners                  # type: ignore[attr-defined]
        heard_by = sorted({i for p in hits for i in owners.get(p, ())})
        ranked = []
        for category in (self.categories[i] for i in heard_by):
            score = category.score(hits)
            if score > 0:
                heard = tuple(hits[k].describe(prepared.text) for k in category.keywords if k in hits)
                ranked.append(Ranked(category, score, heard))
        return sorted(ranked, key=lambda r: -r.score)

    def classify(self, text: str | Prepared) -> Category | None:
        """The best-scoring category for a transcript; ties go to the one listed first; None without a hit."""
        ranked = self.rank(text)
        return ranked[0].category if ranked else None

    def get(self, name: str) -> Category | None:
        return next((c for c in self.categories if c.name == name), None)


def load_units(path: str | Path = DEFAULT_UNITS_PATH, *, lexicon: Lexicon | None = None) -> UnitCatalogue:
    file = str(path)
    raw = read_toml(path, UnitCatalogueError)
    return parse_units(raw, source=file, lexicon=lexicon)


def parse_units(raw: Mapping[str, object], *, source: str = "<unit catalogue>",
                lexicon: Lexicon | None = None) -> UnitCatalogue:
    """Validate a parsed catalogue; "@set" keywords refer to the lexicon (default: the packaged one)."""
    def fail(at: str, reason: str) -> UnitCatalogueError:
        return UnitCatalogueError(source, at, reason)

    lexicon, expand = lexicon_for(lexicon, source, fail)

    extra = set(raw) - {"version", "category"}
    if extra:
        raise fail(sorted(extra)[0], "unknown field (expected version and [[category]] tables)")
    if raw.get("version", 1) != 1:
        raise fail("version", f"unsupported version {raw.get('version')!r} (this gateway reads version 1)")
    items = raw.get("category")
    if not isinstance(items, list) or not items:
        raise fail("category", "at least one [[category]] table is required")
    categories: list[Category] = []
    for i, item in enumerate(items):
        at = f"category[{i}]"
        if not isinstance(item, Mapping):
            raise fail(at, "must be a table")
        unknown = set(item) - _FIELDS
        if unknown:
            raise fail(f"{at}.{sorted(unknown)[0]}", f"unknown field (expected {', '.join(sorted(_FIELDS))})")
        name = _text(item.get("name"), f"{at}.name", fail)
        at = f"category[{i}] ({name})"
        if any(c.name == name for c in categories):
            raise fail(f"{at}.name", "duplicate category name")
        unit = _text(item.get("unit"), f"{at}.unit", fail)
        keywords = expand(_phrases(item.get("keywords"), f"{at}.keywords", fail, allow_empty=False),
                          f"{at}.keywords")
        exclude = expand(_phrases(item.get("exclude", []), f"{at}.exclude", fail, allow_empty=True),
                         f"{at}.exclude")
        categories.append(Category(name, unit, keywords, exclude))
    return UnitCatalogue(tuple(categories), source, lexicon)


def _text(value: object, at: str, fail) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(at, "required; a non-empty string")
    return value.strip()


def _phrases(value: object, at: str, fail, *, allow_empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise fail(at, "must be a list of strings" if allow_empty else "required; a non-empty list of strings")
    out: list[str] = []
    for j, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise fail(f"{at}[{j}]", "must be a non-empty string")
        phrase = _WHITESPACE.sub("", item)
        if phrase in out:
            raise fail(f"{at}[{j}]", f"{phrase!r} is listed twice")
        out.append(phrase)
    return tuple(out)
