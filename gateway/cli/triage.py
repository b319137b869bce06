"""`hotline triage train|evaluate`: the office's own classifier, fitted on its labelled tickets, and the figures
that say how the rules, the model and both together do on a labelled file.

    hotline triage train FILE... [--from-store] --out MODEL
    hotline triage evaluate FILE... [--model MODEL] [--noise] [--json]

Labelled files are JSONL or CSV with text, type, category and optionally emergency (a centre, or empty for
none). `--from-store` adds the tickets agents saved in the console: their corrected fields are the labels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gateway.basics.data_errors import DataFileError
from gateway.config import ConfigError, load_config
from gateway.store.database import Store
from ivr.triage.classify import default_emergencies, default_units
from ivr.triage.evaluation import Noise, evaluate, format_report, predictors
from ivr.triage.model import NO_EMERGENCY, load_model
from ivr.triage.training import Labelled, read_labelled, train

def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("triage", help="train and evaluate the speech pre-fill classifier")
    verbs = parser.add_subparsers(dest="verb", required=True)
    fit = verbs.add_parser("train", help="fit a model for type, category and emergency from labelled tickets")
    fit.add_argument("files", nargs="*", help="labelled JSONL or CSV files (text, type, category, emergency)")
    fit.add_argument("--from-store", action="store_true",
                     help="also learn from the tickets agents saved in the console (needs the config)")
    fit.add_argument("--out", required=True, help="the model file to write (JSON); name it in triage.model")
    fit.set_defaults(func=train_command, needs_config=False)
    check = verbs.add_parser("evaluate", help="accuracy, confusion, emergency recall: rules, model and both")
    check.add_argument("files", nargs="+", help="labelled JSONL or CSV files")
    check.add_argument("--model", help="a model file from `hotline triage train` (default: rules only)")
    check.add_argument("--noise", action="store_true",
                       help="also with simulated recogniser errors (12 %% homophones, 3 %% dropped characters)")
    check.add_argument("--json", action="store_true", help="one JSON object instead of the tables")
    check.set_defaults(func=evaluate_command, needs_config=False)


def read_files(files: list[str]) -> list[Labelled]:
    units, emergencies = default_units(), default_emergencies()
    categories = [c.name for c in units.categories]
    centres = {s.centre for s in emergencies.situations} | {c for s in emergencies.situations for c in s.centres}
    rows: list[Labelled] = []
    for file in files:
        rows += read_labelled(file, categories=categories, centres=centres)
    return rows


async def train_command(args: argparse.Namespace, config: Any) -> int:
    try:
        rows = read_files(args.files)
        if args.from_store:
            rows += await saved_tickets(args)
        model = train(rows, lexicon=default_units().lexicon, sources=args.files + (["store"] if args.from_store
                                                                                    else []))
        model.save(args.out)
    except (DataFileError, ValueError, OSError, ConfigError) as exc:
        print(f"hotline triage train: {exc}", file=sys.stderr)
        return 2
    labels = {name: sum(n.values()) for name, n in model.trained_on["labels"].items()}
    print(f"model written to {args.out}: {len(rows)} labelled tickets; fields "
          + ", ".join(f"{k} ({v} rows)" for k, v in labels.items()))
    return 0


async def saved_tickets(args: argparse.Namespace) -> list[Labelled]:
    """Tickets agents saved in the console, with their transcripts: what the agent kept is the label."""
    config = load_config(getattr(args, "config", None))
    async with await Store.open(config.store.location, **config.store.pool) as store:
        tickets = await store.saved_tickets_with_transcripts()
    return [Labelled(t["transcript"], t.get("type"), t.get("category"), t.get("emergency") or NO_EMERGENCY,
                     source=f"ticket {t['ticket_id']}") for t in tickets]


async def evaluate_command(args: argparse.Namespace, config: Any) -> int:
    try:
        rows = read_files(args.files)
        model = load_model(args.model) if args.model else None
    except (DataFileError, OSError) as exc:
        print(f"hotline triage evaluate: {exc}", file=sys.stderr)
        return 2
    variants = {"clean": [r.text for r in rows]}
    if args.noise:
        variants["noisy"] = Noise().apply(variants["clean"])
    reports: dict[str, dict[str, object]] = {}
    for variant, texts in variants.items():
        for name, predict in predictors(model).items():
            reports[f"{name}/{variant}"] = evaluate(rows, [predict(t) for t in texts])
    if args.json:
        print(json.dumps(reports, ensure_ascii=False, indent=1))
    else:
        print(f"{len(rows)} labelled transcripts from {', '.join(Path(f).name for f in args.files)}")
        for title, report in reports.items():
            print("\n".join(format_report(report, title)))
    return 0
