"""Speech pre-fill triage on the labelled transcripts (tests/data/transcripts.jsonl).

Prints figures only: accuracy per field, emergency recall (labelled emergencies found with the right centre) and
false-emergency rate (non-emergencies given a centre), then classifications/s for the full `triage()` and, in the
same run, for the emergency match alone (the part the call flow needs before anything else), with their ratio.

    .venv/bin/python bench/triage.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.basics.clock import SHANGHAI
from ivr.triage.classify import default_emergencies, normalise, triage  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "transcripts.jsonl"
RECEIVED = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
FIELDS = ("type", "category", "unit", "address", "emergency", "emergency_situation", "callback_number")


def rate(fn, texts: list[str], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            fn(text)
    return rounds * len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = [triage(r["text"], received=RECEIVED).to_json() for r in rows]

    print(f"transcripts                 {len(rows)}")
    for field in FIELDS:
        correct = sum(g[field] == r[field] for r, g in zip(rows, results))
        print(f"accuracy {field:<19} {correct / len(rows):.3f}  ({correct}/{len(rows)})")
    emergencies = [(r, g) for r, g in zip(rows, results) if r["emergency"] is not None]
    others = [(r, g) for r, g in zip(rows, results) if r["emergency"] is None]
    found = sum(g["emergency"] == r["emergency"] for r, g in emergencies)
    false = sum(g["emergency"] is not None for _, g in others)
    print(f"emergency recall            {found / len(emergencies):.3f}  ({found}/{len(emergencies)})")
    print(f"false emergency rate        {false / len(others):.3f}  ({false}/{len(others)})")

    texts = [r["text"] for r in rows]
    emergency_list = default_emergencies()
    full = rate(lambda t: triage(t, received=RECEIVED), texts, args.rounds)
    match_only = rate(lambda t: emergency_list.match(normalise(t)), texts, args.rounds)
    print(f"triage/s                    {full:,.0f}")
    print(f"emergency match/s           {match_only:,.0f}")
    print(f"triage cost / match         {match_only / full:.1f}x")


if __name__ == "__main__":
    main()
