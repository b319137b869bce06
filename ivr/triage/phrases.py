"""Phrase lookup that survives a speech recogniser's errors.

vosk's Chinese models get 14-24 % of characters wrong, mostly as homophones (火灾 heard as 火在) and now and then
drop one. A phrase is therefore found three ways, best first:

- ``exact``: the characters as written;
- ``pinyin``: the same toneless syllables (pypinyin's reading of each character), with at most half of the
  characters differing, so that 火在 still says 火灾 but 活在 (both characters changed) does not;
- ``dropped``: a phrase of four or more characters with one inner character missing, the rest as for
  ``pinyin``.

Each character becomes one symbol (its syllable's number as a private-use code point), so the text and its
syllables have the same length and a hit's position is the same in both. The index is keyed by a phrase's first
two symbols, which keeps the cost to a few dictionary lookups per character of the transcript
whatever the number of phrases: every data file's phrases go into one index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pypinyin.contrib.tone_convert import to_normal
from pypinyin.pinyin_dict import pinyin_dict

# How much a hit of each kind is worth when scores are added up or turned into a confidence.
HOW_WEIGHT = {"exact": 1.0, "pinyin": 0.8, "dropped": 0.6}
MIN_DROPPED_LENGTH = 4
_SYMBOL_BASE = 0xF0000      # Supplementary Private Use Area-A: never a character of a transcript
_syllable_numbers: dict[str, int] = {}


@lru_cache(maxsize=65536)
def symbol(char: str) -> str:
    """One code point standing for the character's toneless syllable (the character itself if it has none)."""
    readings = pinyin_dict.get(ord(char))
    if not readings:
        return char
    syllable = to_normal(readings.split(",")[0])
    number = _syllable_numbers.setdefault(syllable, len(_syllable_numbers))
    return chr(_SYMBOL_BASE + number)


def symbols(text: str) -> str:
    return "".join(map(symbol, text))


def syllables(text: str) -> str:
    """The toneless pinyin of a text, space separated (for explanations and the noise simulation)."""
    out = []
    for char in text:
        readings = pinyin_dict.get(ord(char))
        out.append(to_normal(readings.split(",")[0]) if readings else char)
    return " ".join(out)


@dataclass(frozen=True)
class Hit:
    """Where a phrase was found in the prepared text, and how."""
    phrase: str
    start: int
    end: int
    how: str            # "exact" | "pinyin" | "dropped"

    @property
    def weight(self) -> float:
        return HOW_WEIGHT[self.how]

    @property
    def firm(self) -> bool:
        """Heard as written, or long enough that a sound-alike is unlikely to be another phrase."""
        if self.how == "dropped":       # 上次着火 without 次 is 上着火, as in 山上着火
            return len(self.phrase) >= 5
        return self.how == "exact" or len(self.phrase) >= 3

    def describe(self, text: str) -> str:
        heard = text[self.start:self.end]
        return self.phrase if self.how == "exact" else f"{self.phrase} (heard {heard}, {self.how})"


@dataclass(frozen=True)
class Prepared:
    """A normalised transcript and its syllables, computed once and shared by every lookup of one triage."""
    text: str
    sounds: str

    @classmethod
    def of(cls, text: str) -> Prepared:
        return cls(text, symbols(text))


class PhraseIndex:
    """All the phrases of the data files, looked up in one pass over a transcript."""

    def __init__(self, phrases: Iterable[str], *, by_sound: bool = True) -> None:
        self.phrases = frozenset(p for p in phrases if p)
        self.by_sound = by_sound        # False: as written only (to measure what the sound lookup adds)
        self._singles = frozenset(p for p in self.phrases if len(p) == 1)
        self._sound: dict[str, list[tuple[str, str, str]]] = {}    # key -> (sounds, chars compared, phrase)
        for phrase in sorted(self.phrases):
            if len(phrase) < 2:
                continue
            self._add_sound(phrase, phrase)
            if len(phrase) >= MIN_DROPPED_LENGTH:
                # Only inside the phrase: without its first or last character a phrase is often another one
                # (到处都是水 -> 到处都是).
                for cut in range(1, len(phrase) - 1):
                    self._add_sound(phrase[:cut] + phrase[cut + 1:], phrase)

    def _add_sound(self, chars: str, phrase: str) -> None:
        sounds = symbols(chars)
        self._sound.setdefault(sounds[:2], []).append((sounds, chars, phrase))

    def find(self, prepared: Prepared) -> dict[str, Hit]:
        """Each phrase found, at its best kind of hit (exact over pinyin over dropped), first position first.

        One pass over the syllables finds all three kinds: characters as written have the phrase's syllables
        too, and comparing the characters then tells an exact hit from a sound-alike."""
        text, sounds = prepared.text, prepared.sounds
        found: dict[str, Hit] = {}
        singles = self._singles
        if singles:
            for i, char in enumerate(text):
                if char in singles and char not in found:
                    found[char] = Hit(char, i, i + 1, "exact")
        sound = self._sound
        for i in range(len(sounds) - 1):
            candidates = sound.get(sounds[i:i + 2])
            if candidates is None:
                continue
            for variant, chars, phrase in candidates:
                known = found.get(phrase)
                if known is not None and (known.how == "exact" or (len(variant) < len(phrase)
                                                                   and known.how == "pinyin")):
                    continue
                if not sounds.startswith(variant, i):
                    continue
                heard = text[i:i + len(variant)]
                full = len(variant) == len(phrase)
                if heard == chars and full:
                    how = "exact"
                else:
                    if sum(a != b for a, b in zip(heard, chars)) * 2 > len(chars):
                        continue
                    how = "pinyin" if full else "dropped"
                if known is None or HOW_WEIGHT[how] > known.weight:
                    found[phrase] = Hit(phrase, i, i + len(variant), how)
        if not self.by_sound:
            return {p: h for p, h in found.items() if h.how == "exact"}
        return found
