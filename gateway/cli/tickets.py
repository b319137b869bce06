"""`hotline tickets status ID STATUS` and `hotline tickets show ID`: the units' handling of a ticket, as the
office's work-order system reports it (art. 10-13), for an operator or a script where the status API is not used.

Exit status: 0 done, 1 the life cycle refuses the step (the reason is printed), 2 bad input (no such ticket,
unknown status).
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from gateway.basics.clock import SHANGHAI
from gateway.cli.output import fail, iso, print_table
from gateway.store.database import Store
from gateway.workorder.lifecycle import STATUSES, Handling, TransitionRefused, UnknownStatus, handling_json


def now() -> datetime:
    """The handlers' clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def register(subparsers: Any) -> None:
    tickets = subparsers.add_parser("tickets", help="the units' handling of tickets (work-order system)")
    commands = tickets.add_subparsers(dest="tickets_command", metavar="COMMAND", required=True)
    status = commands.add_parser("status", help="record a status the work-order system reports for a ticket")
    status.add_argument("id", help="the ticket number read to the caller")
    status.add_argument("status", help=" | ".join(STATUSES))
    status.add_argument("--unit", help="the unit a transferred ticket goes to")
    status.add_argument("--reason", help="why (a return, an extension)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=tickets_status)
    show = commands.add_parser("show", help="where a ticket stands and every status reported for it")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=tickets_show)


async def tickets_status(args: argparse.Namespace, config: Any) -> int:
    try:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            handling = await store.report_ticket_status(args.id, args.status, unit=args.unit, reason=args.reason,
                                                        at=now(), source="cli")
    except LookupError as exc:
        return fail(str(exc.args[0]))
    except UnknownStatus as exc:
        return fail(str(exc))
    except TransitionRefused as exc:
        print(f"refused: {exc}")
        return 1
    if args.json:
        print(json.dumps(handling_json(args.id, handling), ensure_ascii=False))
    else:
        print(f"ticket {args.id}: {describe(handling)}")
    return 0


async def tickets_show(args: argparse.Namespace, config: Any) -> int:
    async with await Store.open(config.store.location, **config.store.pool) as store:
        handling = await store.ticket_handling(args.id)
        log = await store.ticket_status_log(args.id) if handling else []
    if handling is None:
        return fail(f"no ticket {args.id!r}")
    entries = [{**e, "at": iso(e["at"]), "due": e["due"].isoformat() if e["due"] else None} for e in log]
    if args.json:
        print(json.dumps({**handling_json(args.id, handling), "log": entries}, ensure_ascii=False, indent=2))
        return 0
    print(f"ticket {args.id}: {describe(handling)}")
    if entries:
        print_table(entries, [("at", "at"), ("status", "status"), ("unit", "unit"), ("due", "due"),
                              ("by", "source"), ("reason", "reason")])
    return 0


def describe(handling: Handling) -> str:
    parts = [handling.status]
    if handling.unit:
        parts.append(f"unit {handling.unit}")
    if handling.due:
        parts.append(f"due {handling.due.isoformat()}")
    if handling.extensions:
        parts.append(f"extended {handling.extensions}x")
    return ", ".join(parts)
