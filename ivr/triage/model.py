"""A trained triage model (`hotline triage train`): character n-grams and a linear model per field.

The model file is JSON, not a pickle: an office passes models around, and loading a pickle runs code. Training
uses scikit-learn (ivr/triage/training.py); prediction here recomputes scikit-learn's tf-idf weighting and the
linear scores with numpy, so the call path does not import scikit-learn (a second of start-up and tens of MB)
and a model from one scikit-learn version loads under another. tests/unit/test_triage_model.py checks that both
give the same probabilities.

Fields are ``type`` (the five request types), ``category`` (unit catalogue names) and ``emergency`` (a centre
or ``none``). The model only ever adds an emergency candidate; the emergency list's own matches stay.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.basics.data_errors import DataFileError

MODEL_FORMAT = "hotline-triage-model"
MODEL_VERSION = 1
FIELDS = ("type", "category", "emergency")
NO_EMERGENCY = "none"


class ModelError(DataFileError):
    """A model file that cannot be used."""


@dataclass(frozen=True)
class Features:
    """scikit-learn's character n-gram tf-idf: the vocabulary, its idf weights and how n-grams are counted."""
    vocabulary: Mapping[str, int]
    idf: np.ndarray             # (features,)
    ngram_min: int
    ngram_max: int
    sublinear_tf: bool

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and l2-normalised tf-idf values of the text's n-grams that are in the vocabulary."""
        counts: Counter[int] = Counter()
        vocabulary = self.vocabulary
        for n in range(self.ngram_min, self.ngram_max + 1):
            for i in range(len(text) - n + 1):
                column = vocabulary.get(text[i:i + n])
                if column is not None:
                    counts[column] += 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        values = tf * self.idf[columns]
        norm = math.sqrt(float(values @ values))
        return columns, values / norm if norm else values

    def to_json(self) -> dict[str, object]:
        ordered = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {"ngram_range": [self.ngram_min, self.ngram_max], "sublinear_tf": self.sublinear_tf,
                "vocabulary": ordered, "idf": [round(float(v), 4) for v in self.idf]}


@dataclass(frozen=True)
class FieldModel:
    """One field's linear classifier over the shared features."""
    classes: tuple[str, ...]
    coef: np.ndarray            # (classes, features); binary models have one row
    intercept: np.ndarray       # (classes,) or (1,)
    features: Features

    def probabilities(self, text: str, vector: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
        """Class probabilities (softmax of the linear scores; logistic for two classes). `vector`: the text's
        features when already computed (the fields of one model share them)."""
        columns, values = vector if vector is not None else self.features.vector(text)
        scores = self.coef[:, columns] @ values + self.intercept
        if len(self.classes) == 2 and scores.shape[0] == 1:
            p = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return {self.classes[0]: 1.0 - p, self.classes[1]: p}
        scores = scores - scores.max()
        exp = np.exp(scores)
        total = float(exp.sum())
        return {c: float(e) / total for c, e in zip(self.classes, exp)}

    def to_json(self) -> dict[str, object]:
        return {"classes": list(self.classes),
                "coef": [[round(float(v), 4) for v in row] for row in self.coef],
                "intercept": [round(float(v), 4) for v in self.intercept]}


@dataclass(frozen=True)
class TriageModel:
    fields: Mapping[str, FieldModel]
    trained_on: Mapping[str, object]
    source: str = "<model>"

    def predict(self, text: str) -> dict[str, dict[str, float]]:
        """Per field, class -> probability, for a standardised transcript without spaces."""
        vectors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        out = {}
        for name, model in self.fields.items():
            key = id(model.features)
            if key not in vectors:
                vectors[key] = model.features.vector(text)
            out[name] = model.probabilities(text, vectors[key])
        return out

    def to_json(self) -> dict[str, object]:
        features = {id(m.features): m.features for m in self.fields.values()}
        if len(features) != 1:
            raise ValueError("a model file holds one feature set shared by its fields")
        return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "trained_on": dict(self.trained_on),
                "features": next(iter(features.values())).to_json(),
                "fields": {name: model.to_json() for name, model in self.fields.items()}}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")),
                              encoding="utf-8")


def load_model(path: str | Path) -> TriageModel:
    file = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ModelError(file, "<file>", f"cannot read: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(file, "<file>", f"not a JSON model file: {e}") from e
    return parse_model(raw, source=file)


def parse_model(raw: object, *, source: str = "<model>") -> TriageModel:
    def fail(at: str, reason: str) -> ModelError:
        return ModelError(source, at, reason)

    if not isinstance(raw, Mapping) or raw.get("format") != MODEL_FORMAT:
        raise fail("format", f"not a {MODEL_FORMAT} file (make one with: hotline triage train FILE --out MODEL)")
    if raw.get("version") != MODEL_VERSION:
        raise fail("version", f"unsupported version {raw.get('version')!r} (this gateway reads {MODEL_VERSION})")
    features = _features(raw.get("features"), "features", fail)
    fields = raw.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        raise fail("fields", "at least one field model is required")
    parsed: dict[str, FieldModel] = {}
    for name, item in fields.items():
        if name not in FIELDS:
            raise fail(f"fields.{name}", f"unknown field (expected {', '.join(FIELDS)})")
        parsed[name] = _field(item, f"fields.{name}", fail, features)
    trained_on = raw.get("trained_on", {})
    return TriageModel(parsed, trained_on if isinstance(trained_on, Mapping) else {}, source)


def _features(item: object, at: str, fail) -> Features:
    if not isinstance(item, Mapping):
        raise fail(at, "required: the n-gram vocabulary and idf weights")
    try:
        low, high = (int(n) for n in item["ngram_range"])
        vocabulary = {str(gram): i for i, gram in enumerate(item["vocabulary"])}
        idf = np.asarray(item["idf"], dtype=np.float64)
        sublinear = bool(item.get("sublinear_tf", True))
    except (KeyError, TypeError, ValueError) as e:
        raise fail(at, f"malformed features: {e!r}") from e
    if not 1 <= low <= high <= 8:
        raise fail(at, "the n-gram range must lie within 1-8")
    if idf.shape != (len(vocabulary),):
        raise fail(at, f"{len(vocabulary)} n-grams but {idf.shape[0] if idf.ndim else 0} idf weights")
    return Features(vocabulary, idf, low, high, sublinear)


def _field(item: object, at: str, fail, features: Features) -> FieldModel:
    if not isinstance(item, Mapping):
        raise fail(at, "must be an object")
    try:
        classes = tuple(str(c) for c in item["classes"])
        coef = np.asarray(item["coef"], dtype=np.float64)
        intercept = np.asarray(item["intercept"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise fail(at, f"malformed field model: {e!r}") from e
    rows = 1 if len(classes) == 2 else len(classes)
    if len(classes) < 2:
        raise fail(at, "needs at least two classes")
    if coef.shape != (rows, len(features.vocabulary)) or intercept.shape != (rows,):
        raise fail(at, f"array shapes do not fit {len(classes)} classes and {len(features.vocabulary)} n-grams")
    return FieldModel(classes, coef, intercept, features)
