"""Supervisor commands for restriction requests (art. 9): `hotline restrict pending|confirm|reject`.

An agent who is insulted or threatened asks, from the console, for the caller's number to be restricted; the
request waits here until a supervisor confirms it (the restriction and its audit entry are created then, under
the supervisor's name) or rejects it with a reason. One agent's click never blocks a number by itself.

Exit status like `cli_restrict`: 0 done, 1 nothing to do (request already decided), 2 bad input (unknown id,
bad days). Numbers are masked unless --full (art. 20).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from gateway.cli.output import fail, iso, print_table, shown
from gateway.console.recordings_api import recording_url
from gateway.basics.clock import SHANGHAI
from gateway.restriction import last_day
from gateway.store.database import Store


def now() -> datetime:
    """The handlers' clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def register_restrict_commands(restrict_commands: Any) -> None:
    """Add pending/confirm/reject to the `restrict` sub-commands made by `cli_restrict.register`."""
    pending = restrict_commands.add_parser("pending", help="restriction requests from agents awaiting a decision")
    pending.add_argument("--all", action="store_true", help="include confirmed and rejected requests")
    pending.add_argument("--json", action="store_true")
    pending.add_argument("--full", action="store_true", help="show full numbers instead of 138****8000")
    pending.set_defaults(func=pending_list)

    confirm = restrict_commands.add_parser("confirm", help="confirm a request: restrict the number now")
    confirm.add_argument("id", type=int)
    confirm.add_argument("--operator", required=True, help="the supervisor deciding (recorded in the audit)")
    confirm.add_argument("--days", type=int, default=None, help="natural days after today (default: config)")
    confirm.add_argument("--json", action="store_true")
    confirm.add_argument("--full", action="store_true")
    confirm.set_defaults(func=pending_confirm)

    reject = restrict_commands.add_parser("reject", help="reject a request; nobody is restricted")
    reject.add_argument("id", type=int)
    reject.add_argument("--operator", required=True)
    reject.add_argument("--reason", required=True)
    reject.set_defaults(func=pending_reject)


def register(subparsers: Any) -> None:
    """Add the three commands under `restrict`: the one `cli_restrict.register(subparsers)` made if it ran first,
    else a new one."""
    restrict = subparsers.choices.get("restrict")
    if restrict is None:
        restrict = subparsers.add_parser("restrict", help="art. 9 number restrictions")
        commands = restrict.add_subparsers(dest="restrict_command", metavar="COMMAND", required=True)
    else:
        commands = next(a for a in restrict._actions if isinstance(a, argparse._SubParsersAction))
    register_restrict_commands(commands)


# -- handlers --------------------------------------------------------------------------------------------------


async def pending_list(args: argparse.Namespace, config: Any) -> int:
    async with await Store.open(config.store.location, **config.store.pool) as store:
        requests = await store.list_pending_restrictions(include_decided=args.all)
        # the evidence (art. 9): the recording of the call the request was made on, once it is filed
        evidence = {r["call_id"]: await store.call_recording(r["call_id"]) for r in requests if r.get("call_id")}
    rows = [{**_request_json(r, full=args.full), "recording": _evidence(evidence.get(r.get("call_id")))}
            for r in requests]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no pending restriction requests" if not args.all else "no restriction requests")
        return 0
    print_table(
        [{**row, "recording_shown": _evidence_shown(row["recording"])} for row in rows],
        [("id", "id"), ("requested", "requested_at"), ("number", "number"), ("by", "requested_by"),
         ("call id", "call_id"), ("recording", "recording_shown"), ("status", "status"), ("reason", "reason")],
    )
    return 0


async def pending_confirm(args: argparse.Namespace, config: Any) -> int:
    days = args.days if args.days is not None else config.restriction.default_days
    try:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            restriction = await store.confirm_pending_restriction(args.id, operator=args.operator, at=now(),
                                                                  days=days)
    except LookupError as exc:
        return fail(str(exc.args[0]))
    except ValueError as exc:
        if "already" in str(exc):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return fail(str(exc))
    number = shown(restriction.number, args.full)
    if args.json:
        print(json.dumps({"request_id": args.id, "restriction_id": restriction.id, "number": number, "days": days,
                          "until": iso(restriction.until), "last_day": last_day(restriction.until).isoformat(),
                          "operator": restriction.operator, "reason": restriction.reason}, ensure_ascii=False))
    else:
        print(f"confirmed request {args.id}: restricted {number} for {days} days until {iso(restriction.until)}"
              f" (last day {last_day(restriction.until).isoformat()}): id={restriction.id}"
              f" operator={restriction.operator}")
    return 0


async def pending_reject(args: argparse.Namespace, config: Any) -> int:
    try:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            await store.reject_pending_restriction(args.id, operator=args.operator, reason=args.reason, at=now())
    except LookupError as exc:
        return fail(str(exc.args[0]))
    except ValueError as exc:
        if "already" in str(exc):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return fail(str(exc))
    print(f"rejected request {args.id}: operator={args.operator} reason={json.dumps(args.reason, ensure_ascii=False)}")
    return 0


def _evidence(recording: dict | None) -> dict | None:
    """The call's recording as a supervisor opens it on the console (GET ``url``, audited there)."""
    if recording is None:
        return None
    return {"id": recording["public_id"], "state": recording["state"], "duration_s": recording["duration_s"],
            "url": recording_url(recording["public_id"])}


def _evidence_shown(evidence: dict | None) -> str:
    if evidence is None:
        return "none yet"
    if evidence["state"] == "purged":
        return "purged"
    return f"{evidence['duration_s']:.0f}s on the console"


def _request_json(request: dict, *, full: bool) -> dict:
    return {
        **request,
        "number": shown(request["number"], full),
        "requested_at": iso(request["requested_at"]),
        "decided_at": iso(request["decided_at"]),
    }
