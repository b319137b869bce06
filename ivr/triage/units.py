"""The unit catalogue (`ivr/triage/units.toml`): ticket categories, their keywords and the responsible unit (art. 10).

Loading validates the file and names the file, the field and the reason on bad data; `classify` is pure.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.basics.data_errors import DataFileError

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

    def score(self, text: str) -> int:
        if any(phrase in text for phrase in self.exclude):
            return 0
        found = [k for k in self.keywords if k in text]
        return sum(len(k) for k in found if not any(k != other and k in other for other in found))


@dataclass(frozen=True)
class UnitCatalogue:
    categories: tuple[Category, ...]
    source: str = "<unit catalogue>"

    @classmethod
    def load(cls, path: str | Path = DEFAULT_UNITS_PATH) -> UnitCatalogue:
        return load_units(path)

    def classify(self, text: str) -> Category | None:
        """The best-scoring category for a transcript; ties go to the one listed first; None without a hit."""
        joined = _WHITESPACE.sub("", text)
        best, best_score = None, 0
        for category in self.categories:
            score = category.score(joined)
            if score > best_score:
                best, best_score = category, score
        return best

    def get(self, name: str) -> Category | None:
        return next((c for c in self.categories if c.name == name), None)


def load_units(path: str | Path = DEFAULT_UNITS_PATH) -> UnitCatalogue:
    file = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise UnitCatalogueError(file, "<file>", f"cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise UnitCatalogueError(file, "<file>", f"not valid TOML: {e}") from e
    return parse_units(raw, source=file)


def parse_units(raw: Mapping[str, object], *, source: str = "<unit catalogue>") -> UnitCatalogue:
    def fail(at: str, reason: str) -> UnitCatalogueError:
        return UnitCatalogueError(source, at, reason)

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
        keywords = _phrases(item.get("keywords"), f"{at}.keywords", fail, allow_empty=False)
        exclude = _phrases(item.get("exclude", []), f"{at}.exclude", fail, allow_empty=True)
        categories.append(Category(name, unit, keywords, exclude))
    return UnitCatalogue(tuple(categories), source)


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
