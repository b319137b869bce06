"""Measuring the triage on labelled transcripts: per field, per class, per centre, with simulated recogniser noise.

Used by `hotline triage evaluate` and bench/triage.py. Pure: the caller reads the files and passes the rows and a
predictor (rules alone, model alone or both).

The noise imitates vosk's Chinese errors: each Chinese character is, with the given probabilities, dropped or
replaced by a homophone (another common character with the same toneless syllable; common = GB 2312 level 1,
the 3,755 characters a recogniser's vocabulary is mostly made of). Seeded, so a run can be repeated.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from gateway.basics.clock import SHANGHAI
from ivr.triage.classify import default_units, triage
from ivr.triage.model import NO_EMERGENCY, TriageModel
from ivr.triage.phrases import symbol
from ivr.triage.training import Labelled, prepared_text

FIELDS = ("type", "category", "emergency")


@dataclass(frozen=True)
class Noise:
    substitute: float = 0.12
    drop: float = 0.03
    seed: int = 12345

    def apply(self, texts: Iterable[str]) -> list[str]:
        rng = random.Random(self.seed)
        return [noisy(t, rng, self.substitute, self.drop) for t in texts]


@lru_cache(maxsize=1)
def homophones() -> dict[str, tuple[str, ...]]:
    """Common characters grouped by toneless syllable."""
    groups: dict[str, list[str]] = defaultdict(list)
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                char = bytes((high, low)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            groups[symbol(char)].append(char)
    return {k: tuple(v) for k, v in groups.items()}


def noisy(text: str, rng: random.Random, substitute: float, drop: float) -> str:
    groups = homophones()
    out = []
    for char in text:
        if "\u4e00" <= char <= "\u9fff":
            roll = rng.random()
            if roll < drop:
                continue
            if roll < drop + substitute:
                others = [c for c in groups.get(symbol(char), ()) if c != char]
                if others:
                    char = rng.choice(others)
        out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class Prediction:
    type: str | None
    category: str | None
    emergency: str | None       # a centre or None


Predictor = Callable[[str], Prediction]
# Due dates do not enter the figures; a fixed receipt time keeps runs identical.
RECEIVED = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)


def predictors(model: TriageModel | None) -> dict[str, Predictor]:
    """"rules" (the data files alone), and with a model also "model" (its own best guesses) and "both" (what
    the service runs: the rules with the model beside them)."""
    def rules(text: str) -> Prediction:
        t = triage(text, received=RECEIVED)
        return Prediction(t.type, t.category, t.emergency)

    def both(text: str) -> Prediction:
        t = triage(text, received=RECEIVED, model=model)
        return Prediction(t.type, t.category, t.emergency)

    def model_alone(text: str) -> Prediction:
        p = model.predict(prepared_text(text, default_units().lexicon))
        best = {name: max(probs, key=probs.__getitem__) for name, probs in p.items()}
        emergency = best.get("emergency")
        return Prediction(best.get("type"), best.get("category"),
                          None if emergency in (None, NO_EMERGENCY) else emergency)

    out: dict[str, Predictor] = {"rules": rules}
    if model is not None:
        out |= {"model": model_alone, "both": both}
    return out


def evaluate(rows: Sequence[Labelled], predictions: Sequence[Prediction]) -> dict[str, object]:
    """Accuracy per field, per class recall for type and category, per centre recall, the false-emergency rate,
    the type confusion matrix and accuracy per phrasing tag."""
    report: dict[str, object] = {"rows": len(rows)}
    for name in FIELDS:
        pairs = [(_gold(r, name), _predicted(p, name)) for r, p in zip(rows, predictions)
                 if _gold(r, name) is not None]
        correct = sum(g == p for g, p in pairs)
        per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for gold, predicted in pairs:
            per_class[gold][1] += 1
            per_class[gold][0] += gold == predicted
        report[name] = {"accuracy": _ratio(correct, len(pairs)), "correct": correct, "rows": len(pairs),
                        "empty": sum(p is None for _, p in pairs),
                        "per_class": {k: {"recall": _ratio(c, n), "correct": c, "rows": n}
                                      for k, (c, n) in sorted(per_class.items())}}
    emergencies = [(r, p) for r, p in zip(rows, predictions) if r.emergency not in (None, NO_EMERGENCY)]
    others = [(r, p) for r, p in zip(rows, predictions) if r.emergency == NO_EMERGENCY]
    found = sum(p.emergency == r.emergency for r, p in emergencies)
    detected = sum(p.emergency is not None for _, p in emergencies)
    false = [r.text for r, p in others if p.emergency is not None]
    report["emergency_recall"] = {"recall": _ratio(found, len(emergencies)), "found": found,
                                  "detected_any_centre": detected, "rows": len(emergencies)}
    report["false_emergencies"] = {"rate": _ratio(len(false), len(others)), "count": len(false), "rows": len(others)}
    per_centre: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r, p in emergencies:
        per_centre[r.emergency][1] += 1
        per_centre[r.emergency][0] += p.emergency == r.emergency
    report["per_centre"] = {c: {"recall": _ratio(k, n), "found": k, "rows": n} for c, (k, n) in sorted(per_centre.items())}
    types = sorted({r.type for r in rows if r.type} | {p.type or "-" for p in predictions})
    confusion = Counter((r.type, p.type or "-") for r, p in zip(rows, predictions) if r.type)
    report["type_confusion"] = {"labels": types,
                                "matrix": {g: {t: confusion[(g, t)] for t in types} for g in types if g != "-"}}
    by_tag: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r, p in zip(rows, predictions):
        if r.phrasing:
            tag = by_tag[r.phrasing]
            tag[0] += r.type == p.type
            tag[1] += r.category == p.category
            tag[2] += 1
    report["per_phrasing"] = {k: {"type": _ratio(t, n), "category": _ratio(c, n), "rows": n}
                              for k, (t, c, n) in sorted(by_tag.items())}
    return report


def _gold(row: Labelled, name: str) -> str | None:
    """The label (for emergency: a centre or NO_EMERGENCY), None where the row has none."""
    return getattr(row, name)


def _predicted(prediction: Prediction, name: str) -> str | None:
    value = getattr(prediction, name)
    return NO_EMERGENCY if name == "emergency" and value is None else value


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 3) if b else None


def format_report(report: dict[str, object], title: str) -> list[str]:
    """Printable lines for one predictor's report."""
    lines = [f"== {title}: {report['rows']} transcripts"]
    for name in FIELDS:
        f = report[name]
        lines.append(f"{name:<10} accuracy {_pct(f['accuracy'])}  ({f['correct']}/{f['rows']}, {f['empty']} empty)")
    r, fe = report["emergency_recall"], report["false_emergencies"]
    lines.append(f"emergency recall {_pct(r['recall'])}  ({r['found']}/{r['rows']}; any centre {r['detected_any_centre']})")
    lines.append(f"false emergencies {_pct(fe['rate'])}  ({fe['count']} of {fe['rows']} non-emergencies)")
    lines.append("per centre: " + "  ".join(f"{c} {v['found']}/{v['rows']}" for c, v in report["per_centre"].items()))
    lines.append("type recall: " + "  ".join(f"{c} {v['correct']}/{v['rows']}"
                                             for c, v in report["type"]["per_class"].items()))
    lines.append("category recall: " + "  ".join(f"{c} {v['correct']}/{v['rows']}"
                                                 for c, v in report["category"]["per_class"].items()))
    confusion = report["type_confusion"]
    labels = confusion["labels"]
    lines.append("type confusion (rows: labelled, columns: predicted)")
    lines.append(" " * 14 + "".join(f"{t[:12]:>13}" for t in labels))
    for gold, row in confusion["matrix"].items():
        lines.append(f"{gold[:13]:<14}" + "".join(f"{row[t]:>13}" for t in labels))
    lines.append("per phrasing (type / category): " + "  ".join(
        f"{k} {_pct(v['type'])}/{_pct(v['category'])} (n={v['rows']})" for k, v in report["per_phrasing"].items()))
    return lines


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"
