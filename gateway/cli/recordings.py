"""`hotline recordings list`: the recordings of answered calls (call, ticket, duration, size, state), and
`hotline recordings purge`: delete the callers' recordings past `recordings.retention_days` and the fallback
recordings of callers who hung up in the queue, marking the purged calls' rows (art. 20). The service runs the same
purge daily.

Exit status: 0 done (also when nothing was due), 1 some files could not be deleted (named on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, time
from typing import Any

from gateway.basics.clock import SHANGHAI
from gateway.cli.output import iso, print_table
from gateway.store.database import Store
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
    purge.add_argument("--as-of", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="purge as on that day (a check of what a later purge takes; drills)")
    purge.set_defaults(func=recordings_purge)
    listing = commands.add_parser("list", help="recordings of answered calls, the latest first")
    listing.add_argument("--call", help="only this call's")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=recordings_list)


async def recordings_list(args: argparse.Namespace, config: Any) -> int:
    async with await Store.open(config.store.location, **config.store.pool) as store:
        if args.call:
            one = await store.call_recording(args.call)
            rows = [one] if one else []
        else:
            rows = await store.call_recordings(limit=args.limit)
    shown = [{**r, "recorded_at": iso(r["recorded_at"]), "purged_at": iso(r["purged_at"])} for r in rows]
    if args.json:
        print(json.dumps(shown, ensure_ascii=False))
    elif shown:
        print_table(shown, [("call", "call_id"), ("ticket", "ticket_id"), ("agent", "agent"),
                            ("recorded", "recorded_at"), ("seconds", "duration_s"), ("bytes", "size"),
                            ("format", "format"), ("state", "state"), ("note", "note")])
    else:
        print("no recordings" + (f" for call {args.call}" if args.call else ""))
    return 0


async def recordings_purge(args: argparse.Namespace, config: Any) -> int:
    at = datetime.combine(args.as_of, time(12), SHANGHAI) if args.as_of else now()
    reports = purge_all(config.speech.recordings_dir, config.speech.local_recording_dir, at=at,
                        retention_days=config.recordings.retention_days, dry_run=args.dry_run)
    if not args.dry_run and reports["recordings"].paths:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            await store.mark_recordings_purged(reports["recordings"].paths, at=at)
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
