"""`hotline classify`: ticket pre-fill for transcripts on stdin, one JSON object per line on stdout.

For checking the classifier against real transcripts and for scripts: each non-empty input line is one
transcript; each output line is {"type", "category", "unit", "address", "emergency", "callback_number", "due",
"scores"}, where "scores" gives each filled field its confidence (0-1) and, for type and category, the runner-up
with its score. `--explain` adds what decided each field: the phrase, frame or model, and what was heard but set
aside by a cancelling context. `--model` names the trained classifier (default: the packaged one; "none": the
rules alone).
A line that cannot be classified gives {"line": n, "error": "..."} and the run goes on; exit status 0 when every
line was classified, 1 when some were not, 2 when the data files or options are unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from gateway.basics.clock import SHANGHAI
from ivr.triage.deadline import DEFAULT_CALENDAR, CalendarError, load_calendar
from ivr.triage.classify import triage
from ivr.triage.model import ModelError, load_model
from ivr.triage.units import UnitCatalogueError, load_units
from linkage.emergency_list import EmergencyListError, load_emergency_list

OUTPUT_FIELDS = ("type", "category", "unit", "address", "emergency", "callback_number", "due", "scores")
PACKAGED_MODEL = Path(__file__).resolve().parents[2] / "ivr" / "triage" / "default_model.json"


def now() -> datetime:
    """The handler's clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def register(subparsers: Any) -> None:
    classify_parser = subparsers.add_parser(
        "classify", help="ticket pre-fill (type, unit, address, emergency, due date) for transcripts on stdin")
    classify_parser.add_argument("--received", type=_received,
                                 help="receipt time for the due date, ISO 8601 (default: now, Asia/Shanghai)")
    classify_parser.add_argument("--units", help="unit catalogue TOML (default: the packaged ivr/triage/units.toml)")
    classify_parser.add_argument("--emergencies",
                                 help="emergency list TOML (default: the packaged linkage/emergency.toml)")
    classify_parser.add_argument("--working-days", help="extra holidays/workdays TOML (see ivr/triage/deadline.py)")
    classify_parser.add_argument("--model", default=str(PACKAGED_MODEL),
                                 help="trained classifier from `hotline triage train` (default: the packaged one; "
                                      "\"none\": the rules alone)")
    classify_parser.add_argument("--explain", action="store_true",
                                 help="add what decided each field (phrase, frame, model) and what was set aside")
    classify_parser.set_defaults(func=classify, needs_config=False)


def _received(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)


async def classify(args: argparse.Namespace, config: Any, *, stdin: TextIO | None = None,
                   stdout: TextIO | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    try:
        units = load_units(args.units) if getattr(args, "units", None) else None
        emergencies = load_emergency_list(args.emergencies) if getattr(args, "emergencies", None) else None
        working_days = getattr(args, "working_days", None)
        calendar = load_calendar(working_days) if working_days else DEFAULT_CALENDAR
        model_path = getattr(args, "model", None)
        model = load_model(model_path) if model_path and model_path != "none" else None
    except (UnitCatalogueError, EmergencyListError, CalendarError, ModelError) as exc:
        print(f"hotline classify: {exc}", file=sys.stderr)
        return 2
    received = getattr(args, "received", None) or now()
    failed = False
    for number, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        try:
            result = triage(line, received=received, units=units, emergencies=emergencies, calendar=calendar,
                            model=model)
            draft = result.to_json()
            record: dict[str, object] = {field: draft[field] for field in OUTPUT_FIELDS}
            if getattr(args, "explain", False):
                record["explain"] = result.explain()
        except Exception as exc:        # one bad line must not lose the rest of a batch
            failed = True
            record = {"line": number, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(record, ensure_ascii=False), file=stdout, flush=True)
    return 1 if failed else 0
