"""`hotline callbacks list|assign|done`: the call-back tasks a dissatisfied rating creates (Zhanjiang 12345 rules,
art. 15), for a supervisor who hands them out and an agent who closes them (with the ticket's one redo).

Numbers are masked unless ``--full`` (art. 20). Exit status: 0 done, 1 refused (a second redo), 2 bad input (no
such open task, bad agent name).
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from gateway.basics.clock import SHANGHAI
from gateway.cli.output import fail, iso, print_table, shown
from gateway.contract import is_valid_name
from gateway.store.aftercall import CALLBACK_OUTCOMES, RedoRefused
from gateway.store.database import Store


def now() -> datetime:
    """The handlers' clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def register(subparsers: Any) -> None:
    callbacks = subparsers.add_parser("callbacks", help="call-back tasks after a dissatisfied rating (art. 15)")
    commands = callbacks.add_subparsers(dest="callbacks_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="open call-back tasks, the earliest due first")
    listing.add_argument("--agent", help="only the tasks assigned to this agent")
    listing.add_argument("--all", action="store_true", help="done tasks too")
    listing.add_argument("--full", action="store_true", help="show whole numbers")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=callbacks_list)
    assign = commands.add_parser("assign", help="give a task to an agent")
    assign.add_argument("id", type=int)
    assign.add_argument("agent")
    assign.set_defaults(func=callbacks_assign)
    done = commands.add_parser("done", help="close a task after the call-back")
    done.add_argument("id", type=int)
    done.add_argument("--agent", required=True, help="who called back")
    done.add_argument("--outcome", choices=sorted(CALLBACK_OUTCOMES),
                      help="the last attempt's outcome, if not already recorded by the console")
    done.add_argument("--redo", action="store_true", help="send the ticket back to be handled again (once)")
    done.add_argument("--note")
    done.set_defaults(func=callbacks_done)


async def callbacks_list(args: argparse.Namespace, config: Any) -> int:
    async with await Store.open(config.store.location, **config.store.pool) as store:
        tasks = await store.callback_tasks(agent=args.agent, include_done=args.all)
    rows = [{**t, "number": shown(t["number"], args.full), "created_at": iso(t["created_at"]),
             "done_at": iso(t["done_at"]), "due": t["due"].isoformat()} for t in tasks]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif rows:
        print_table(rows, [("id", "id"), ("due", "due"), ("ticket", "ticket_id"), ("number", "number"),
                           ("reason", "reason"), ("agent", "assigned_to"), ("tries", "attempts"),
                           ("last", "outcome"), ("state", "state")])
    else:
        print("no call-back tasks")
    return 0


async def callbacks_assign(args: argparse.Namespace, config: Any) -> int:
    if args.agent not in {a.name for a in config.agents}:
        return fail(f"no agent {args.agent!r} in the configuration")
    try:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            await store.assign_callback(args.id, agent=args.agent)
    except LookupError as exc:
        return fail(str(exc.args[0]))
    print(f"call-back task {args.id} assigned to {args.agent}")
    return 0


async def callbacks_done(args: argparse.Namespace, config: Any) -> int:
    if not is_valid_name(args.agent):
        return fail(f"bad agent name {args.agent!r}")
    try:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            if args.outcome:
                await store.record_callback_attempt(args.id, agent=args.agent, outcome=args.outcome, at=now())
            await store.finish_callback(args.id, agent=args.agent, at=now(), note=args.note, redo=args.redo)
    except RedoRefused as exc:
        print(f"refused: {exc}")
        return 1
    except LookupError as exc:
        return fail(str(exc.args[0]))
    print(f"call-back task {args.id} done" + (", ticket sent back for its one redo" if args.redo else ""))
    return 0
