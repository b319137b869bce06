"""The hotline office's commands (Zhanjiang 12345 rules, art. 5 and 9): `hotline report daily` and
`hotline nuisance list|request`.

Exit status: 0 done, 1 nothing found (no such call), 2 bad input. The report holds no caller number; the review
list masks numbers unless --full.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.basics.clock import SHANGHAI
from gateway.cli.output import fail, iso, print_table, shown
from gateway.office.daily import read_report, report_dict
from gateway.console.office_api import office_settings
from gateway.office.nuisance import read_review_list, request_restriction
from gateway.office.report_csv import render_csv
from gateway.store.database import Store

__all__ = ["register", "render_report"]


def now() -> datetime:
    """The handlers' clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def register(subparsers: Any) -> None:
    report = subparsers.add_parser("report", help="the hotline office's reports")
    report_sub = report.add_subparsers(dest="report_command", metavar="COMMAND", required=True)
    daily = report_sub.add_parser("daily", help="one day's service figures, with their definitions and charts")
    daily.add_argument("--date", type=_day, help="the local day YYYY-MM-DD (default: yesterday)")
    daily.add_argument("--format", choices=("html", "json", "csv"), default="html")
    daily.add_argument("--out", help="write to this file instead of standard output")
    daily.set_defaults(func=report_daily)

    nuisance = subparsers.add_parser("nuisance", help="art. 9 nuisance review: numbers with many or silent calls")
    nuisance_sub = nuisance.add_subparsers(dest="nuisance_command", metavar="COMMAND", required=True)
    listing = nuisance_sub.add_parser("list", help="the numbers to review (never restricted by the list itself)")
    listing.add_argument("--date", type=_day, help="the last day of the window (default: today)")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--full", action="store_true", help="show full numbers instead of 138****8000")
    listing.set_defaults(func=nuisance_list)
    request = nuisance_sub.add_parser("request", help="raise a pending restriction request for a listed number")
    request.add_argument("call_id", help="the entry's latest call id (as listed)")
    request.add_argument("--by", required=True, help="who asks (recorded with the request)")
    request.add_argument("--reason", required=True)
    request.set_defaults(func=nuisance_request)


def _zone(config: Any) -> ZoneInfo:
    return ZoneInfo(config.gateway.timezone)


async def render_report(store: Store, day: date, *, config: Any, fmt: str) -> str:
    """The daily report of ``day`` in ``fmt`` (html, json, csv); the charts are drawn in an executor."""
    report = await read_report(store, day, zone=_zone(config), timely_answer_s=config.office.timely_answer_s)
    if fmt == "json":
        return json.dumps(report_dict(report), ensure_ascii=False, indent=2, default=str) + "\n"
    if fmt == "csv":
        return render_csv(report)
    # matplotlib is imported only here: the other commands start without it
    from gateway.office.charts import draw_charts
    from gateway.office.report_html import render_html

    charts = await asyncio.get_running_loop().run_in_executor(None, draw_charts, report)
    return render_html(report, charts)


async def report_daily(args: argparse.Namespace, config: Any) -> int:
    day = args.date or (now().astimezone(_zone(config)).date() - timedelta(days=1))
    async with await Store.open(config.store.location, **config.store.pool) as store:
        text = await render_report(store, day, config=config, fmt=args.format)
    if args.out:
        try:
            await asyncio.to_thread(Path(args.out).write_text, text, encoding="utf-8")
        except OSError as exc:
            return fail(f"cannot write {args.out}: {exc.strerror or exc}")
        print(f"report {day.isoformat()} ({args.format}) written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


async def nuisance_list(args: argparse.Namespace, config: Any) -> int:
    zone = _zone(config)
    day = args.date or now().astimezone(zone).date()
    async with await Store.open(config.store.location, **config.store.pool) as store:
        entries = await read_review_list(store, day, zone=zone, settings=office_settings(config).review, now=now())
    rows = [{"number": shown(e.number, args.full), "last_call_id": e.last_call_id,
             "busiest_day": e.busiest_day.isoformat() if e.busiest_day else None,
             "calls_on_busiest_day": e.calls_on_busiest_day, "silent_calls": e.silent_calls,
             "reasons": e.reasons, "restricted_until": iso(e.restricted_until), "pending_request": e.pending_request}
            for e in entries]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(f"no numbers to review in the {config.office.nuisance_window_days} days to {day.isoformat()}")
        return 0
    print_table([{**r, "why": "; ".join(r["reasons"])} for r in rows],
                [("number", "number"), ("latest call", "last_call_id"), ("why", "why"),
                 ("restricted until", "restricted_until"), ("pending request", "pending_request")])
    return 0


async def nuisance_request(args: argparse.Namespace, config: Any) -> int:
    try:
        async with await Store.open(config.store.location, **config.store.pool) as store:
            request_id = await request_restriction(store, args.call_id, requested_by=args.by, reason=args.reason,
                                                   at=now())
    except LookupError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 1
    except ValueError as exc:
        return fail(str(exc))
    print(f"pending restriction request {request_id} for the caller of {args.call_id}:"
          f" a supervisor confirms it with `hotline restrict confirm {request_id} --operator NAME`")
    return 0
