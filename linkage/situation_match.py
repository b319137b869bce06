"""Which emergency-list situation a transcript describes now (Zhanjiang 12345 rules, art. 14).

A situation is heard through its keywords (a phrase alone is enough: 着火, 晕倒) or one of its frames (an event
near who or what it happens to, with a danger cue: 老人 + 摔倒 + 起不来). Every phrase is looked up as written,
by sound and with a dropped character (ivr/triage/phrases.py), after the lexicon's colloquial variants are
rewritten. A cancelling context heard anywhere in the transcript (an inspection, a fee, a past event, a
complaint about the service) withdraws the situation unless one of its override phrases says it is happening
now; a context heard by sound counts unless it overlaps the danger phrase itself (油烟 in 有烟雾). Of the
situations heard, the first listed among the best-heard wins: one heard only by sound gives way to
one heard as written. Pure; the list is compiled once into one phrase index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.triage.phrases import Hit, PhraseIndex, Prepared

if TYPE_CHECKING:
    from linkage.emergency_list import EmergencyList, Frame, Situation

# A frame is indirect evidence: worth a little less than the situation's own name.
FRAME_FACTOR = 0.9


@dataclass(frozen=True)
class Match:
    situation: str                  # id of the winning situation
    centre: str                     # its primary centre
    keyword: str                    # the phrase that matched (for a frame, its event phrase)
    also: tuple[str, ...] = ()      # ids of further situations heard, in list order
    category: str | None = None     # the situation's ticket category
    how: str = "keyword"            # "keyword" | "frame" | "model"
    evidence: tuple[str, ...] = ()  # what was heard and how, for `--explain`
    score: float = 1.0              # confidence 0-1
    cancelled: tuple[str, ...] = ()  # "situation: phrase" for situations heard but withdrawn


@dataclass(frozen=True)
class Heard:
    """One situation's evidence in one transcript."""
    situation: Situation
    how: str
    keyword: str
    evidence: tuple[str, ...]
    score: float
    exact: bool                     # every phrase of the evidence was heard as written


class SituationMatcher:
    def __init__(self, emergencies: EmergencyList) -> None:
        self.emergencies = emergencies
        phrases: set[str] = set()
        for s in emergencies.situations:
            phrases.update(s.keywords, s.cancel, s.override)
            for f in s.frames:
                phrases.update(f.event, f.what, f.cue)
        self.phrases = frozenset(phrases)
        self.index = PhraseIndex(phrases)
        # a situation is looked at only when one of its keywords or frame events was heard
        self.triggers: dict[str, set[int]] = {}
        # what is heard of a situation itself: a cancelling phrase heard by sound over one of these does not count
        self.own: dict[str, tuple[str, ...]] = {}
        for i, s in enumerate(emergencies.situations):
            for p in s.keywords + tuple(e for f in s.frames for e in f.event):
                self.triggers.setdefault(p, set()).add(i)
            self.own[s.id] = s.keywords + tuple(p for f in s.frames for p in f.event + f.what)

    def prepare(self, text: str) -> Prepared:
        return Prepared.of(self.emergencies.lexicon.standardise("".join(text.split())))

    def _cancels(self, situation: Situation, hit: Hit, hits: dict[str, Hit]) -> bool:
        """Whether a cancelling phrase that was heard counts: as written, or by sound unless it overlaps what was
        heard of the situation itself (油烟 heard in 有烟雾 is the smoke, not a kitchen); never with a character
        dropped (上次着火 without 次 is 山上着火)."""
        if hit.how == "exact" or hit.firm:
            return True
        if hit.how == "dropped":
            return False
        return not any(p in hits and hits[p].start < hit.end and hit.start < hits[p].end
                       for p in self.own[situation.id])

    def match(self, text: str | Prepared, *, hits: dict[str, Hit] | None = None) -> Match | None:
        """The situation the transcript describes now, or None."""
        return self.judge(text, hits=hits)[0]

    def judge(self, text: str | Prepared, *,
              hits: dict[str, Hit] | None = None) -> tuple[Match | None, tuple[str, ...]]:
        """The situation the transcript describes now (or None), and the situations heard but withdrawn by a
        cancelling context, as "id: phrase". `hits`: the phrases already found in `text` by an index holding at
        least this list's phrases (the triage shares one index with the unit catalogue)."""
        prepared = text if isinstance(text, Prepared) else self.prepare(text)
        if hits is None:
            hits = self.index.find(prepared)
        heard: list[Heard] = []
        cancelled: list[str] = []
        situations = self.emergencies.situations
        for situation in (situations[i] for i in sorted({i for p in hits for i in self.triggers.get(p, ())})):
            found = hear(situation, hits, prepared.text)
            if found is None:
                continue
            cancel = next((hits[p] for p in situation.cancel if p in hits and self._cancels(situation, hits[p], hits)),
                          None)
            if cancel is not None and not any(p in hits and hits[p].firm for p in situation.override):
                cancelled.append(f"{situation.id}: {cancel.describe(prepared.text)}")
                continue
            heard.append(found)
        if not heard:
            return None, tuple(cancelled)
        best = max(heard, key=lambda h: h.exact)    # max keeps the first listed of equals
        match = Match(best.situation.id, best.situation.centre, best.keyword,
                      tuple(h.situation.id for h in heard if h is not best), best.situation.category, best.how,
                      best.evidence, round(best.score, 3), tuple(cancelled))
        return match, tuple(cancelled)


def hear(situation: Situation, hits: dict[str, Hit], text: str) -> Heard | None:
    """The best evidence for one situation among the phrases found, or None.

    A two-character phrase heard only by sound (拿到 for 拿刀) is weak: alone it does not make a situation; a
    second phrase of the same situation, or a frame, must back it."""
    keyword_hits = sorted((hits[p] for p in situation.keywords if p in hits), key=lambda h: -h.weight)
    best: Heard | None = None
    for hit in keyword_hits:
        if hit.firm or len(keyword_hits) > 1:
            best = Heard(situation, "keyword", hit.phrase, tuple(h.describe(text) for h in keyword_hits[:3]),
                         hit.weight, hit.how == "exact")
            break
    if best is not None and best.exact:
        return best
    for frame in situation.frames:
        found = hear_frame(situation, frame, hits, text)
        if found is not None and (best is None or (found.exact, found.score) > (best.exact, best.score)):
            best = found
    return best


def hear_frame(situation: Situation, frame: Frame, hits: dict[str, Hit], text: str) -> Heard | None:
    events = [hits[p] for p in frame.event if p in hits]
    if not events:
        return None
    cue = next((hits[p] for p in frame.cue if p in hits), None)
    if frame.cue and cue is None:
        return None
    whats = [hits[p] for p in frame.what if p in hits]
    for event in sorted(events, key=lambda h: -h.weight):
        if not event.firm and cue is None:
            continue    # an event heard only by sound (在楼 for 在漏) needs the frame's cue to back it
        parts = [event]
        if frame.what:
            near = [w for w in whats if w is not event and _gap(w, event, text) <= frame.near]
            if not near:
                continue
            parts.append(max(near, key=lambda h: h.weight))
        if cue is not None:
            parts.append(cue)
        score = FRAME_FACTOR * min(p.weight for p in parts)
        evidence = (f"frame {frame.name!r}",) + tuple(p.describe(text) for p in parts)
        return Heard(situation, "frame", event.phrase, evidence, score, all(p.how == "exact" for p in parts))
    return None


def _gap(a: Hit, b: Hit, text: str) -> int:
    """Characters between two phrases (0 when they touch or overlap), over every place each was heard: the index
    keeps only the first, and 水 may come long before the 没了 it belongs to."""
    return min(max(0, max(sa, sb) - min(ea, eb)) for sa, ea in _spans(a, text) for sb, eb in _spans(b, text))


def _spans(hit: Hit, text: str) -> list[tuple[int, int]]:
    spans = [(hit.start, hit.end)]
    if hit.how == "exact":
        at = text.find(hit.phrase, hit.end)
        while at >= 0:
            spans.append((at, at + len(hit.phrase)))
            at = text.find(hit.phrase, at + 1)
    return spans
