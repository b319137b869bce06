"""Speech pre-fill triage on the TEST part of the labelled transcripts (tests/data/triage/test/), never tuned on.

Prints figures only, for the rules alone, the packaged model alone and both (the service's default), on the
clean transcripts and with simulated recogniser errors (12 % of characters replaced by a common homophone, 3 %
dropped, seeded): accuracy per field, recall per type and per category, emergency recall per centre, false
emergencies among the non-emergencies, per phrasing class, and the written messages (long_written rows) apart.
Then triages/s on one core for the rules and for rules + model.

    .venv/bin/python bench/triage.py [--rounds 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivr.triage.classify import triage  # noqa: E402
from ivr.triage.evaluation import RECEIVED, Noise, evaluate, format_report, predictors  # noqa: E402
from ivr.triage.model import load_model  # noqa: E402
from ivr.triage.training import read_labelled  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "tests" / "data" / "triage" / "test"
MODEL = ROOT / "ivr" / "triage" / "default_model.json"


def rate(fn, texts: list[str], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            fn(text)
    return rounds * len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=TEST)
    args = parser.parse_args()
    files = sorted(args.data.glob("*.jsonl"))
    rows = [r for f in files for r in read_labelled(f)]
    model = load_model(MODEL)
    print(f"test part: {len(rows)} transcripts from {', '.join(f.name for f in files)}")
    print(f"model: {MODEL.name}, trained on {model.trained_on.get('rows')} tuning rows")

    clean = [r.text for r in rows]
    noisy = Noise().apply(clean)
    written = [i for i, r in enumerate(rows) if r.phrasing == "long_written"]
    for variant, texts in (("clean", clean), ("noisy", noisy)):
        for name, predict in predictors(model).items():
            predictions = [predict(t) for t in texts]
            print("\n".join(format_report(evaluate(rows, predictions), f"{name}/{variant}")))
            part = evaluate([rows[i] for i in written], [predictions[i] for i in written])
            print(f"written messages ({part['rows']}): type {part['type']['accuracy']:.3f}  "
                  f"category {part['category']['accuracy']:.3f} ({part['category']['empty']} empty)")

    full = rate(lambda t: triage(t, received=RECEIVED), clean, args.rounds)
    with_model = rate(lambda t: triage(t, received=RECEIVED, model=model), clean, args.rounds)
    print(f"triage/s, rules              {full:,.0f}")
    print(f"triage/s, rules + model      {with_model:,.0f}")


if __name__ == "__main__":
    main()
