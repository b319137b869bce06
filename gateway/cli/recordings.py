"""`hotline recordings purge`: delete the callers' recordings past `recordings.retention_days` and the fallback
recordings of callers who hung up in the queue (art. 20). The service runs the same purge daily.

Exit status: 0 done (also when nothing was due), 1 some files could not be deleted (named on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from gateway.basics.clock import SHANGHAI
from recordings.retention import purge_all


def now() -> datetime:
    """The handlers' clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def register(subparsers: Any) -> None:
    recordings = subparsers.add_parser("recordings", help="callers' recordings (retention, art. 20)")
    commands = recordings.add_subparsers(dest="recordings_command", metavar="COMMAND", required=True)
    purge = commands.add_parser("purge", help="delete recordings past their retention")
    purge.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(func=recordings_purge)


async def recordings_purge(args: argparse.Namespace, config: Any) -> int:
    reports = purge_all(config.speech.recordings_dir, config.speech.local_recording_dir, at=now(),
                        retention_days=config.recordings.retention_days, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({name: vars(r) for name, r in reports.items()}, ensure_ascii=False))
    else:
        verb = "would delete" if args.dry_run else "deleted"
        for name, r in reports.items():
            days = f" (days {', '.join(r.days)})" if r.days else ""
            print(f"{name}: {verb} {r.deleted} files, {r.bytes} bytes{days}")
    failed = [f for r in reports.values() for f in r.failed]
    for failure in failed:
        print(f"error: could not delete {failure}", file=sys.stderr)
    return 1 if failed else 0
