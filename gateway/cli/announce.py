"""`hotline announce add|remove|list`: the incident announcements callers hear after the welcome (Zhanjiang 12345
rules, art. 18: the answer script of a major or sudden incident). See docs/announcements.md.

Times are read and shown in the hotline's civil time (``gateway.timezone``) unless an offset is given. Every
gateway picks a change up within seconds, without a restart. Exit status: 0 done, 1 nothing to remove, 2 bad input.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime, tzinfo
from typing import Any

from gateway.announcement import Announcement, check_text, check_window, in_force, parse_time, prompt_name
from gateway.basics.clock import SHANGHAI
from gateway.cli.output import fail, print_table
from gateway.store.database import Store

__all__ = ["register"]


def now() -> datetime:
    """The handlers' clock (tests replace it)."""
    return datetime.now(SHANGHAI)


def register(subparsers: Any) -> None:
    announce = subparsers.add_parser("announce", help="incident announcements after the welcome (art. 18)")
    commands = announce.add_subparsers(dest="announce_command", metavar="COMMAND", required=True)

    add = commands.add_parser("add", help="callers hear TEXT after the welcome until a time")
    add.add_argument("--text", required=True, help="what callers hear (Mandarin, spoken by espeak-ng)")
    add.add_argument("--until", required=True, help="YYYY-MM-DDTHH:MM[:SS][+HH:MM] or +N(m|h|d) from now")
    add.add_argument("--from", dest="starts", help="when it begins (same forms; default: now)")
    add.add_argument("--by", help="the operator (default: the login name)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=announce_add)

    remove = commands.add_parser("remove", help="stop an announcement now")
    remove.add_argument("id", type=int)
    remove.add_argument("--by", help="the operator (default: the login name)")
    remove.set_defaults(func=announce_remove)

    listing = commands.add_parser("list", help="announcements in force or still to begin (all with --all)")
    listing.add_argument("--all", action="store_true", help="ended and removed ones too")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=announce_list)


async def announce_add(args: argparse.Namespace, config: Any) -> int:
    at, tz = now(), config.gateway.tz
    try:
        text = check_text(args.text)
        until = parse_time(args.until, tz, at)
        starts = parse_time(args.starts, tz, at) if args.starts else at
        check_window(starts, until, at)
        by = _operator(args.by)
    except ValueError as exc:
        return fail(str(exc))
    async with await Store.open(config.store.location, **config.store.pool) as store:
        before = in_force(await store.list_announcements(at), starts)
        added = await store.add_announcement(text=text, prompt=prompt_name(text, config.ivr.espeak_voice),
                                             starts_at=starts, until=until, created_by=by, at=at)
    if args.json:
        print(json.dumps(_json(added, tz, "in force" if added.is_in_force(at) else "to begin"), ensure_ascii=False))
        return 0
    print(f"announcement {added.id}: callers hear it after the welcome from {_shown(added.starts_at, tz)}"
          f" until {_shown(added.until, tz)} (by {added.created_by}); every gateway plays it within seconds")
    if before is not None:
        print(f"it takes the place of announcement {before.id} while both are in force (the latest added wins)")
    return 0


async def announce_remove(args: argparse.Namespace, config: Any) -> int:
    try:
        by = _operator(args.by)
    except ValueError as exc:
        return fail(str(exc))
    at = now()
    async with await Store.open(config.store.location, **config.store.pool) as store:
        removed = await store.remove_announcement(args.id, by=by, at=at)
        known = removed is not None or await store.get_announcement(args.id) is not None
    if removed is None:
        print(f"error: announcement {args.id} {'was removed before' if known else 'does not exist'}; "
              "nothing removed", file=sys.stderr)
        return 1
    print(f"announcement {removed.id} removed at {_shown(at, config.gateway.tz)} (by {by}); callers stop hearing it"
          " within seconds")
    return 0


async def announce_list(args: argparse.Namespace, config: Any) -> int:
    at, tz = now(), config.gateway.tz
    async with await Store.open(config.store.location, **config.store.pool) as store:
        listed = await store.list_announcements(at, include_ended=args.all)
    playing = in_force(listed, at)
    rows = [_json(a, tz, _state(a, at, playing)) for a in listed]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no announcements" if args.all else "no announcement in force or to begin")
        return 0
    print_table(rows, [("id", "id"), ("state", "state"), ("from", "starts_at"), ("until", "until"),
                       ("by", "created_by"), ("text", "text")])
    return 0


def _state(a: Announcement, at: datetime, playing: Announcement | None) -> str:
    if playing is not None and a.id == playing.id:
        return "in force"
    if a.removed_at is not None and a.removed_at <= at:
        return "removed"
    if a.until <= at:
        return "ended"
    if a.starts_at > at:
        return "to begin"
    return "superseded"        # in force, but one added later is what callers hear


def _json(a: Announcement, tz: tzinfo, state: str) -> dict:
    return {"id": a.id, "state": state, "text": a.text, "prompt": a.prompt, "starts_at": _shown(a.starts_at, tz),
            "until": _shown(a.until, tz), "created_by": a.created_by, "created_at": _shown(a.created_at, tz),
            "removed_at": _shown(a.removed_at, tz), "removed_by": a.removed_by}


def _shown(value: datetime | None, tz: tzinfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")


def _operator(given: str | None) -> str:
    name = given if given is not None else _login()
    if not name or not name.strip():
        raise ValueError("--by must name the operator")
    return name.strip()


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
