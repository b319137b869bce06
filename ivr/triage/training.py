"""Training the triage model from labelled tickets (`hotline triage train`), with scikit-learn.

Labelled tickets come from files (JSONL or CSV with the columns text, type, category and optionally emergency)
and from the tickets agents saved in the console, whose corrected fields are the labels. Each field gets
character 1-3-grams with sublinear tf-idf and a logistic regression: Chinese needs no word segmentation for
that, and n-grams carry over to the recogniser's homophones better than words would. The fitted parts are
exported to the JSON model of ivr/triage/model.py.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from gateway.basics.clock import utc_now
from gateway.basics.data_errors import DataFileError
from gateway.contract import REQUEST_TYPES
from ivr.triage.lexicon import Lexicon
from ivr.triage.model import NO_EMERGENCY, Features, FieldModel, TriageModel

NGRAMS = (1, 3)
MIN_DF = 3
REGULARISATION_C = 8.0
MIN_ROWS_PER_FIELD = 10


class LabelledDataError(DataFileError):
    """A file of labelled tickets that cannot be read."""


@dataclass(frozen=True)
class Labelled:
    """One labelled ticket; a label is None where the source does not give it."""
    text: str
    type: str | None
    category: str | None
    emergency: str | None       # a centre, NO_EMERGENCY, or None when unlabelled
    phrasing: str | None = None
    source: str = ""


def read_labelled(path: str | Path, *, categories: Iterable[str] = (), centres: Iterable[str] = ()) -> list[Labelled]:
    """Rows of a JSONL or CSV file. Unknown labels are errors naming the file, the line and the field."""
    file = str(path)
    try:
        content = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LabelledDataError(file, "<file>", f"cannot read as UTF-8 text: {e}") from e
    known_categories, known_centres = set(categories), set(centres)
    if file.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(content))
        if not reader.fieldnames or "text" not in reader.fieldnames:
            raise LabelledDataError(file, "header", "a CSV needs a header with at least text, type, category")
        items: list[tuple[int, object]] = [(n + 2, row) for n, row in enumerate(reader)]
    else:
        items = []
        for n, line in enumerate(content.splitlines(), start=1):
            if line.strip():
                try:
                    items.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise LabelledDataError(file, f"line {n}", f"not JSON: {e.msg}") from e
    rows = []
    for n, item in items:
        if not isinstance(item, dict):
            raise LabelledDataError(file, f"line {n}", "must be an object with text, type, category")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise LabelledDataError(file, f"line {n}.text", "required; the transcript or message")
        kind = _label(item.get("type"))
        if kind is not None and kind not in REQUEST_TYPES:
            raise LabelledDataError(file, f"line {n}.type", f"{kind!r} is not one of {', '.join(REQUEST_TYPES)}")
        category = _label(item.get("category"))
        if category is not None and known_categories and category not in known_categories:
            raise LabelledDataError(file, f"line {n}.category", f"{category!r} is not in the unit catalogue")
        emergency = _label(item.get("emergency")) if "emergency" in item else None
        if "emergency" in item and emergency is None:
            emergency = NO_EMERGENCY
        if emergency not in (None, NO_EMERGENCY) and known_centres and emergency not in known_centres:
            raise LabelledDataError(file, f"line {n}.emergency", f"{emergency!r} is not a known centre")
        rows.append(Labelled(text, kind, category, emergency, _label(item.get("phrasing")), f"{file}:{n}"))
    return rows


def _label(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    return str(value).strip()


def prepared_text(text: str, lexicon: Lexicon) -> str:
    """What both training and prediction see: spaces removed, colloquial variants standardised."""
    return lexicon.standardise("".join(text.split()))


def fit_features(texts: Sequence[str]):
    """The tf-idf vectorizer fitted on the texts, and its Features for ivr/triage/model.py."""
    from sklearn.feature_extraction.text import TfidfVectorizer     # training only: not on the call path

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=NGRAMS, sublinear_tf=True, lowercase=False,
                                 min_df=MIN_DF if len(texts) >= 50 else 1)
    vectorizer.fit(texts)
    return vectorizer, Features(dict(vectorizer.vocabulary_), np.asarray(vectorizer.idf_, dtype=np.float64),
                                NGRAMS[0], NGRAMS[1], True)


def fit_field(texts: Sequence[str], labels: Sequence[str], fitted=None) -> FieldModel:
    """One field's logistic regression over character n-grams (its own features unless `fitted` gives the
    shared vectorizer and Features)."""
    from sklearn.linear_model import LogisticRegression

    vectorizer, features = fitted if fitted is not None else fit_features(texts)
    classifier = LogisticRegression(C=REGULARISATION_C, max_iter=3000)
    classifier.fit(vectorizer.transform(texts), labels)
    return FieldModel(tuple(str(c) for c in classifier.classes_), np.asarray(classifier.coef_, dtype=np.float64),
                      np.asarray(classifier.intercept_, dtype=np.float64), features)


def train(rows: Sequence[Labelled], *, lexicon: Lexicon, sources: Sequence[str] = (),
          now: datetime | None = None) -> TriageModel:
    """A model for every field with at least MIN_ROWS_PER_FIELD labelled rows and two classes, over one set
    of n-gram features fitted on every row's text."""
    fields: dict[str, FieldModel] = {}
    counts: dict[str, dict[str, int]] = {}
    fitted = fit_features([prepared_text(r.text, lexicon) for r in rows]) if rows else None
    for name in ("type", "category", "emergency"):
        pairs = [(prepared_text(r.text, lexicon), getattr(r, name)) for r in rows if getattr(r, name) is not None]
        classes = Counter(label for _, label in pairs)
        if len(pairs) < MIN_ROWS_PER_FIELD or len(classes) < 2:
            continue
        fields[name] = fit_field([t for t, _ in pairs], [label for _, label in pairs], fitted)
        counts[name] = dict(sorted(classes.items()))
    if not fields:
        raise ValueError(f"nothing to learn: every field needs {MIN_ROWS_PER_FIELD} labelled rows in two classes")
    trained_on = {"rows": len(rows), "sources": list(sources), "labels": counts,
                  "at": (now or utc_now()).isoformat(timespec="seconds")}
    return TriageModel(fields, trained_on)
