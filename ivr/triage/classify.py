"""Speech pre-fill: a recognised transcript becomes a ticket draft (type, category, unit, address, emergency,
call-back number, due date), each field with a confidence score. Pure and synchronous; the only I/O is loading
the packaged data files once.

vosk's Chinese models put spaces between words ("我 要 投诉 赤坎区 ..."): matching runs on the transcript with
those spaces removed and the lexicon's colloquial variants standardised; the summary keeps a space only between
two Latin words. The rules (the emergency list, the unit catalogue, the request-type cues) come first and stay
the safety net for emergencies; a trained model (ivr/triage/model.py), when given, weighs in on type and
category and may add an emergency candidate the rules missed, which the caller then confirms, as for any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from gateway.basics.phone import normalise as normalise_number
from gateway.contract import REQUEST_TYPES
from ivr.triage.address import find_address
from ivr.triage.callback_number import find_callback_number
from ivr.triage.deadline import DEFAULT_CALENDAR, WorkingDayCalendar, due_date
from ivr.triage.model import NO_EMERGENCY, TriageModel
from ivr.triage.phrases import PhraseIndex
from ivr.triage.request_type import REQUEST_PRECEDENCE, cue_scores, explicit_type
from ivr.triage.units import Ranked, UnitCatalogue, load_units
from linkage.emergency_list import EmergencyList, load_emergency_list
from linkage.situation_match import Match

SUMMARY_CHARS = 120
# How much the rules' own distribution counts beside a model's probabilities (tuned on the tuning split).
RULE_WEIGHT_TYPE = 0.35
RULE_WEIGHT_CATEGORY = 0.5
# A model's emergency candidate needs this probability; the caller still confirms before any transfer.
MODEL_EMERGENCY_MIN = 0.6
EXPLICIT_SCORE = 0.95
ADDRESS_SCORE = 0.8
CALLBACK_SCORE = 0.9
_WHITESPACE_RUN = re.compile(r"\s+")
_LATIN_WORDS = re.compile(r"(?<=[A-Za-z0-9])\s+(?=[A-Za-z])|(?<=[A-Za-z])\s+(?=[0-9])")


@dataclass(frozen=True)
class Triage:
    type: str | None
    category: str | None
    unit: str | None
    address: str | None
    emergency: str | None
    emergency_situation: str | None
    callback_number: str | None
    due: date | None
    summary: str
    # per field: {"score": 0-1} and for type and category also "runner_up" and "runner_up_score"
    # (compare=False: two drafts are equal when their fields are; how sure and why is not part of the draft)
    scores: dict[str, dict[str, object]] = field(default_factory=dict, compare=False)
    match: Match | None = field(default=None, compare=False)
    reasons: dict[str, str] = field(default_factory=dict, compare=False)    # why type and category, for --explain
    categories: tuple[Ranked, ...] = field(default=(), compare=False)       # the rules' ranking, best first
    withdrawn: tuple[str, ...] = field(default=(), compare=False)   # situations set aside, "id: phrase"

    def to_json(self) -> dict[str, object]:
        return {
            "type": self.type,
            "category": self.category,
            "unit": self.unit,
            "address": self.address,
            "emergency": self.emergency,
            "emergency_situation": self.emergency_situation,
            "callback_number": self.callback_number,
            "due": self.due.isoformat() if self.due else None,
            "summary": self.summary,
            "scores": self.scores,
        }

    def explain(self) -> dict[str, object]:
        """Which phrase, frame or model decided each field, and what was heard but set aside."""
        m = self.match
        emergency = None if m is None else {
            "situation": m.situation, "centre": m.centre, "how": m.how, "heard": list(m.evidence),
            "score": m.score, "also": list(m.also)}
        return {"type": self.reasons.get("type"), "category": self.reasons.get("category"),
                "categories_heard": [{"category": r.category.name, "score": round(r.score, 2), "heard": list(r.heard)}
                                     for r in self.categories[:3]],
                "emergency": emergency, "cancelled": list(self.withdrawn)}


def normalise(transcript: str) -> str:
    """vosk spacing removed ('我 要 投诉' -> '我要投诉'); a space stays only between two Latin words."""
    text = _WHITESPACE_RUN.sub(" ", transcript.strip())
    kept = _LATIN_WORDS.sub("\x00", text)
    return kept.replace(" ", "").replace("\x00", " ")


def summarise(text: str, limit: int = SUMMARY_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@lru_cache(maxsize=1)
def default_units() -> UnitCatalogue:
    return load_units()


@lru_cache(maxsize=1)
def default_emergencies() -> EmergencyList:
    return load_emergency_list()


def shared_index(units: UnitCatalogue, emergencies: EmergencyList) -> PhraseIndex:
    """One phrase index over both data files, so that a transcript is looked through once; kept on the emergency
    list (which is replaced, not changed, when the office edits it) for the catalogue it was built with."""
    kept = emergencies.__dict__.get("_shared_index")
    if kept is None or kept[0] is not units:
        kept = (units, PhraseIndex(units.phrases | emergencies.matcher().phrases))
        object.__setattr__(emergencies, "_shared_index", kept)
    return kept[1]


def _distribution(scores: dict[str, float]) -> dict[str, float]:
    total = sum(scores.values())
    return {k: v / total for k, v in scores.items()} if total > 0 else {}


def _ranked(blend: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(blend.items(), key=lambda kv: -kv[1])


def _score(value: str | None, score: float, ranking: list[tuple[str, float]]) -> dict[str, object]:
    out: dict[str, object] = {"score": round(score, 3)}
    runner = next(((k, s) for k, s in ranking if k != value and s > 0), None)
    if runner is not None:
        out["runner_up"], out["runner_up_score"] = runner[0], round(runner[1], 3)
    return out


def _blend(model: dict[str, float] | None, rules: dict[str, float], rule_weight: float) -> dict[str, float]:
    """A model's probabilities mixed with the rules' normalised scores (rules alone without a model)."""
    if model is None:
        return rules
    if not rules:
        return dict(model)
    keys = set(model) | set(rules)
    return {k: (1 - rule_weight) * model.get(k, 0.0) + rule_weight * rules.get(k, 0.0) for k in keys}


def decide_type(text: str, model: dict[str, float] | None) -> tuple[str | None, dict[str, object], str]:
    """Type, its score entry and the reason. An explicit request verb said by the caller decides."""
    cues = cue_scores(text)
    rules = _distribution({k: float(v) for k, v in cues.items() if v > 0})
    if (explicit := explicit_type(text)) is not None:
        ranking = _ranked(_blend(model, rules, RULE_WEIGHT_TYPE))
        return explicit, _score(explicit, EXPLICIT_SCORE, ranking), "the caller said it (request verb)"
    if not rules and model is None:
        return None, {"score": 0.0}, "no request verb or cue heard"
    # Without a model, equal cue scores go to the earlier type of REQUEST_PRECEDENCE (python's sort is stable).
    blend = _blend(model, rules, RULE_WEIGHT_TYPE)
    ranking = sorted(blend.items(), key=lambda kv: (-kv[1], REQUEST_PRECEDENCE.index(kv[0])
                                                    if kv[0] in REQUEST_PRECEDENCE else 99))
    kind, score = ranking[0]
    if model is None:       # a cue-only score: how far the winner is ahead of the rest
        score = 0.4 + 0.5 * score
    heard = ", ".join(f"{k} {v}" for k, v in cues.items() if v) or "none"
    reason = f"cues: {heard}" + ("; model: " + ", ".join(f"{k} {p:.2f}" for k, p in _ranked(model)[:2])
                                 if model else "")
    return kind, _score(kind, score, ranking), reason


def triage(transcript: str, *, dtmf_type: str | None = None, received: datetime,
           units: UnitCatalogue | None = None, emergencies: EmergencyList | None = None,
           calendar: WorkingDayCalendar = DEFAULT_CALENDAR, model: TriageModel | None = None) -> Triage:
    """A ticket draft from a transcript. A DTMF type choice (one of the five) overrides the spoken type."""
    units = units if units is not None else default_units()
    emergencies = emergencies if emergencies is not None else default_emergencies()
    text = normalise(transcript)
    matcher = emergencies.matcher()
    prepared = matcher.prepare(text)
    shared = units.lexicon is emergencies.lexicon
    hits = shared_index(units, emergencies).find(prepared) if shared else None
    predicted = model.predict(prepared.text) if model is not None else {}
    match, withdrawn = matcher.judge(prepared, hits=hits)
    if match is None and "emergency" in predicted:
        match = _model_emergency(emergencies, predicted["emergency"])
    scores: dict[str, dict[str, object]] = {}
    reasons: dict[str, str] = {}
    if dtmf_type in REQUEST_TYPES:
        kind, scores["type"], reasons["type"] = dtmf_type, {"score": 1.0}, "keyed in the menu"
    elif match is not None:
        # The IVR emergency menu files emergencies as help requests; only an explicit "我要投诉/举报" changes that.
        kind = explicit_type(prepared.text) or "help"
        scores["type"], reasons["type"] = {"score": match.score}, f"emergency {match.situation}"
    else:
        kind, scores["type"], reasons["type"] = decide_type(prepared.text, predicted.get("type"))
    ranked = units.rank(prepared, hits=hits) if shared else units.rank(text)
    category = units.get(match.category) if match is not None and match.category else None
    if category is not None:
        scores["category"], reasons["category"] = {"score": match.score}, f"emergency {match.situation}"
    else:
        rules = _distribution({r.category.name: r.score for r in ranked})
        blend = _blend(predicted.get("category"), rules, RULE_WEIGHT_CATEGORY)
        ranking = _ranked(blend)
        if ranking:
            name, score = ranking[0]
            category = units.get(name)
            if model is None:
                score = 0.4 + 0.5 * score
            scores["category"] = _score(name, score, ranking)
            reasons["category"] = ("keywords: " + ", ".join(ranked[0].heard) if ranked and ranked[0].category
                                   is category else "model") + (" and model" if predicted.get("category") else "")
    if category is not None:
        scores["unit"] = {"score": scores["category"]["score"]}
    if match is not None:
        scores["emergency"] = {"score": match.score}
    address = find_address(text)
    if address:
        scores["address"] = {"score": ADDRESS_SCORE}
    callback = find_callback_number(text)
    if callback and normalise_number(callback).e164 is None:
        callback = None     # not a number anyone can call back (2345678 has no area code): the transcript keeps it
    if callback:
        scores["callback_number"] = {"score": CALLBACK_SCORE}
    due = due_date(kind, received, calendar)
    if due is not None:
        scores["due"] = {"score": scores["type"]["score"]}
    return Triage(
        type=kind,
        category=category.name if category else None,
        unit=category.unit if category else None,
        address=address,
        emergency=match.centre if match else None,
        emergency_situation=match.situation if match else None,
        callback_number=callback,
        due=due,
        summary=summarise(text),
        scores=scores,
        match=match,
        reasons=reasons,
        categories=tuple(ranked[:3]),
        withdrawn=withdrawn,
    )


def _model_emergency(emergencies: EmergencyList, probabilities: dict[str, float]) -> Match | None:
    """The model's emergency candidate: the first listed situation of the likeliest centre, if likely enough."""
    centre, p = max(((c, p) for c, p in probabilities.items() if c != NO_EMERGENCY), key=lambda cp: cp[1],
                    default=(None, 0.0))
    if centre is None or p < MODEL_EMERGENCY_MIN:
        return None
    situation = next((s for s in emergencies.situations if s.centre == centre), None)
    if situation is None:
        return None
    return Match(situation.id, centre, "", (), situation.category, "model", (f"model: {centre} {p:.2f}",),
                 round(p, 3))
