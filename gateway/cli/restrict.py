"""Admin commands for art. 9 restrictions (`hotline restrict ...`) and call records (`hotline calls list`).

Each leaf command is `async def handler(args, config) -> int` (exit status): 0 done, 1 nothing to do (lift with no
active restriction), 2 bad input. Numbers are printed masked unless --full (art. 20: listings get copied into
tickets and chats); a command about one number the operator typed echoes that number in full.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from gateway.cli.output import fail, iso, print_table, shown
from gateway.basics.phone import normalise_strict
from gateway.basics.clock import SHANGHAI
from gateway.restriction import Restriction, check_days, effective, last_day
from gateway.store.database import Store


def now() -> datetime:
    """The handlers' clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def register(subparsers: Any) -> None:
    restrict = subparsers.add_parser("restrict", help="art. 9 number restrictions")
    commands = restrict.add_subparsers(dest="restrict_command", metavar="COMMAND", required=True)

    add = commands.add_parser("add", help="restrict a number (default: config restriction.default_days)")
    add.add_argument("number")
    add.add_argument("--reason", required=True, help="what the caller did (recorded in the audit)")
    add.add_argument("--operator", required=True, help="who decided")
    add.add_argument("--days", type=int, default=None, help="natural days after the decision day (1-365)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=restrict_add)

    lift = commands.add_parser("lift", help="lift the active restriction of a number now")
    lift.add_argument("number")
    lift.add_argument("--operator", required=True)
    lift.add_argument("--reason", required=True)
    lift.set_defaults(func=restrict_lift)

    listing = commands.add_parser("list", help="restrictions in force (all decisions with --all)")
    listing.add_argument("--all", action="store_true", help="include lifted, expired and superseded decisions")
    _output_flags(listing)
    listing.set_defaults(func=restrict_list)

    check = commands.add_parser("check", help="is this number restricted now?")
    check.add_argument("number")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=restrict_check)

    audit = commands.add_parser("audit", help="every restriction and lift, oldest first")
    audit.add_argument("number", nargs="?")
    _output_flags(audit)
    audit.set_defaults(func=restrict_audit)

    calls = subparsers.add_parser("calls", help="call records")
    call_commands = calls.add_subparsers(dest="calls_command", metavar="COMMAND", required=True)
    call_list = call_commands.add_parser("list", help="latest calls, newest first")
    call_list.add_argument("--limit", type=int, default=50)
    _output_flags(call_list)
    call_list.set_defaults(func=calls_list)


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--full", action="store_true", help="show full numbers instead of 138****8000")


# -- handlers --------------------------------------------------------------------------------------------------


async def restrict_add(args: argparse.Namespace, config: Any) -> int:
    number = _number_arg(args.number)
    days = args.days if args.days is not None else config.restriction.default_days
    if number is None:
        return 2
    try:
        check_days(days)
        async with await Store.open(config.store.location, **config.store.pool) as store:
            restriction = await store.add_restriction(
                number, reason=args.reason, operator=args.operator, days=days, decided_at=now()
            )
    except ValueError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps(_restriction_json(restriction, full=True, at=now()), ensure_ascii=False))
    else:
        print(
            f"restricted {restriction.number} for {days} days until {iso(restriction.until)}"
            f" (last day {last_day(restriction.until).isoformat()}): id={restriction.id}"
            f" operator={restriction.operator} reason={json.dumps(restriction.reason, ensure_ascii=False)}"
        )
    return 0


async def restrict_lift(args: argparse.Namespace, config: Any) -> int:
    number = _number_arg(args.number)
    if number is None:
        return 2
    try:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            lifted = await store.lift_restriction(number, operator=args.operator, reason=args.reason, at=now())
    except ValueError as exc:
        return fail(str(exc))
    if lifted is None:
        print(f"error: {number} has no active restriction; nothing lifted", file=sys.stderr)
        return 1
    print(
        f"lifted restriction id={lifted.id} of {lifted.number} at {iso(lifted.lifted_at)}"
        f" (was until {iso(lifted.until)}): operator={lifted.lifted_by}"
        f" reason={json.dumps(lifted.lift_reason, ensure_ascii=False)}"
    )
    return 0


async def restrict_list(args: argparse.Namespace, config: Any) -> int:
    at = now()
    async with await Store.open(config.store.location, **config.store.pool) as store:
        restrictions = await store.list_restrictions(at, include_inactive=args.all)
    rows = [_restriction_json(r, full=args.full, at=at, status=s) for r, s in _with_status(restrictions, at)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no restrictions in force" if not args.all else "no restrictions")
        return 0
    print_table(
        rows,
        [("id", "id"), ("number", "number"), ("status", "status"), ("decided", "decided_at"),
         ("last day", "last_day"), ("operator", "operator"), ("reason", "reason")],
    )
    return 0


async def restrict_check(args: argparse.Namespace, config: Any) -> int:
    number = _number_arg(args.number)
    if number is None:
        return 2
    async with await Store.open(config.store.location, **config.store.pool) as store:
        active = await store.active_restriction(number, now())
    result = {
        "number": number,
        "restricted": active is not None,
        "until": iso(active.until) if active else None,
        "reason": active.reason if active else None,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif active is None:
        print(f"{number} is not restricted")
    else:
        print(
            f"{number} is restricted until {iso(active.until)} (last day {last_day(active.until).isoformat()}):"
            f" id={active.id} reason={json.dumps(active.reason, ensure_ascii=False)}"
        )
    return 0


async def restrict_audit(args: argparse.Namespace, config: Any) -> int:
    number = None
    if args.number is not None:
        number = _number_arg(args.number)
        if number is None:
            return 2
    async with await Store.open(config.store.location, **config.store.pool) as store:
        entries = await store.restriction_audit(number)
    rows = [
        {**entry, "number": shown(entry["number"], args.full), "at": iso(entry["at"]), "until": iso(entry["until"])}
        for entry in entries
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no audit entries")
        return 0
    print_table(
        rows,
        [("at", "at"), ("action", "action"), ("id", "restriction_id"), ("number", "number"), ("days", "days"),
         ("until", "until"), ("operator", "operator"), ("reason", "reason")],
    )
    return 0


async def calls_list(args: argparse.Namespace, config: Any) -> int:
    if args.limit < 1:
        return fail(f"--limit must be at least 1, got {args.limit}")
    async with await Store.open(config.store.location, **config.store.pool) as store:
        calls = await store.list_calls(limit=args.limit)
    rows = [
        {**call, "number": shown(call["number"], args.full),
         **{k: iso(call[k]) for k in ("started_at", "queued_at", "answered_at", "ended_at")}}
        for call in calls
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no calls")
        return 0
    for row in rows:
        row["path"] = ">".join(row["ivr_path"])
    print_table(
        rows,
        [("started", "started_at"), ("call id", "call_id"), ("number", "number"), ("outcome", "outcome"),
         ("type", "request_type"), ("emergency", "emergency"), ("agent", "agent"), ("ivr path", "path")],
    )
    return 0


# -- helpers ---------------------------------------------------------------------------------------------------


def _number_arg(raw: str) -> str | None:
    try:
        return normalise_strict(raw)
    except ValueError as exc:
        fail(str(exc))
        return None








def _with_status(restrictions: list[Restriction], at: datetime) -> list[tuple[Restriction, str]]:
    by_number: dict[str, list[Restriction]] = {}
    for r in restrictions:
        by_number.setdefault(r.number, []).append(r)
    in_force = {e.id for e in (effective(rs, at) for rs in by_number.values()) if e is not None}
    return [(r, _status(r, at, in_force)) for r in restrictions]


def _status(r: Restriction, at: datetime, in_force: set[int]) -> str:
    if r.id in in_force:
        return "active"
    if r.lifted_at is not None and r.lifted_at <= at:
        return "lifted"
    if at >= r.until:
        return "expired"
    if at < r.decided_at:
        return "future"
    return "superseded"


def _restriction_json(r: Restriction, *, full: bool, at: datetime, status: str | None = None) -> dict:
    return {
        "id": r.id,
        "number": shown(r.number, full),
        "status": status or ("active" if r.is_active(at) else "inactive"),
        "decided_at": iso(r.decided_at),
        "until": iso(r.until),
        "last_day": last_day(r.until).isoformat(),
        "operator": r.operator,
        "reason": r.reason,
        "lifted_at": iso(r.lifted_at),
        "lifted_by": r.lifted_by,
        "lift_reason": r.lift_reason,
    }

