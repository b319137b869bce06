"""`hotline linkage list|match|handoffs`: the art. 14 emergency list, where a transcript would go, the hand-off log.

The list is the file the gateway uses: `[linkage] emergency_list` in the config, else the packaged
linkage/emergency.toml; `--file` checks another (an edit before it is put in place). `match` normalises the
transcript the way speech triage does, so its answer is the call's.

`list` also says when the gateway running on this state directory refused the file (e.g. a new centre's broker
user could not be added) or lacks something for the list in force: it then exits 1.

Exit status: 0 done (also when a transcript matches nothing), 1 the running gateway refused the list, 2 the list
does not validate or bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.cli.output import print_table
from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store
from ivr.triage.classify import normalise
from linkage.emergency_list import DEFAULT_EMERGENCY_PATH, EmergencyList, EmergencyListError, load_emergency_list


def register(subparsers: Any) -> None:
    linkage = subparsers.add_parser("linkage", help="emergency linkage with 110/119/120/122 and utilities (art. 14)")
    commands = linkage.add_subparsers(dest="linkage_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="the emergency list in use: situations and centres")
    listing.add_argument("--file", help="emergency list TOML (default: [linkage] emergency_list, else packaged)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=list_handler)

    match = commands.add_parser("match", help="which situation and centre a transcript would go to")
    match.add_argument("text", help="the transcript (vosk spacing is fine)")
    match.add_argument("--file", help="emergency list TOML (default: [linkage] emergency_list, else packaged)")
    match.add_argument("--json", action="store_true")
    match.set_defaults(func=match_handler)

    handoffs = commands.add_parser("handoffs", help="recent hand-offs with their timings and data push")
    handoffs.add_argument("--call", help="only this call id")
    handoffs.add_argument("--limit", type=int, default=50)
    handoffs.add_argument("--json", action="store_true")
    handoffs.set_defaults(func=handoffs_handler)


def emergency_list_path(config: Any) -> Path:
    """The configured list, or the packaged one when `[linkage] emergency_list` is absent or empty."""
    configured = getattr(getattr(config, "linkage", None), "emergency_list", None)
    return Path(configured) if configured else DEFAULT_EMERGENCY_PATH


def _load(args: argparse.Namespace, config: Any) -> EmergencyList:
    path = Path(args.file) if getattr(args, "file", None) else emergency_list_path(config)
    return load_emergency_list(path, require_centres=True)


def gateway_view(config: Any) -> dict | None:
    """The running gateway's account of its emergency list (its status file), or None if none runs here."""
    state_dir = getattr(config, "state_dir", None)
    if state_dir is None:
        return None
    try:
        status = json.loads((Path(state_dir) / "run" / "gateway.status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    view = status.get("emergency_list") if isinstance(status, dict) else None
    return view if isinstance(view, dict) else None


def _gateway_problems(view: dict | None, path: Path) -> list[str]:
    if view is None or Path(str(view.get("file"))).resolve() != path.resolve():
        return []
    problems = []
    if view.get("refused"):
        problems.append(f"REFUSED by the running gateway: {view['refused']} (in force: the list loaded "
                        f"{view.get('loaded_at')})")
    if view.get("unmet"):
        problems.append(f"the running gateway's list lacks: {view['unmet']}")
    return problems


async def list_handler(args: argparse.Namespace, config: Any) -> int:
    try:
        emergencies = _load(args, config)
    except EmergencyListError as exc:
        print(f"hotline linkage list: {exc}", file=sys.stderr)
        return 2
    view = gateway_view(config)
    problems = _gateway_problems(view, Path(emergencies.source))
    situations = [
        {"id": s.id, "name": s.name, "menu_key": s.menu_key, "centres": list(s.centres), "confirm": s.confirm,
         "category": s.category, "keywords": len(s.keywords), "frames": len(s.frames), "cancel": len(s.cancel)}
        for s in emergencies.situations
    ]
    centres = [
        {"name": c.name, "label": c.label, "dial": c.dial, "answer_timeout_s": c.answer_timeout_s, "push": c.push,
         "http_url": c.http_url, "http_timeout_s": c.http_timeout_s, "http_retries": c.http_retries}
        for c in emergencies.centres
    ]
    if args.json:
        print(json.dumps({"file": emergencies.source, "situations": situations, "centres": centres,
                          "gateway": view, "problems": problems}, ensure_ascii=False))
        return 1 if problems else 0
    print(f"# {emergencies.source}")
    for problem in problems:
        print(f"# {problem}")
    print_table([{**s, "centres": " > ".join(s["centres"]), "confirm": "yes" if s["confirm"] else "no"}
                  for s in situations],
                 [("SITUATION", "id"), ("NAME", "name"), ("KEY", "menu_key"), ("CENTRES", "centres"),
                  ("CONFIRM", "confirm"), ("KEYWORDS", "keywords"), ("FRAMES", "frames"), ("CANCEL", "cancel")])
    print()
    print_table([{**c, "push": c["push"] if c["push"] != "http" else f"http {c['http_url']} "
                   f"({c['http_timeout_s']:g} s x {c['http_retries'] + 1})",
                   "answer_timeout_s": f"{c['answer_timeout_s']:g} s"} for c in centres],
                 [("CENTRE", "name"), ("NAME", "label"), ("DIAL", "dial"), ("RING", "answer_timeout_s"),
                  ("PUSH", "push")])
    for problem in problems:
        print(f"hotline linkage list: {problem}", file=sys.stderr)
    return 1 if problems else 0


def match_record(emergencies: EmergencyList, text: str) -> dict:
    """Where a transcript would go, with what was heard (phrases, frames, how) and what was set aside."""
    match, withdrawn = emergencies.matcher().judge(normalise(text))
    if match is None:
        return {"situation": None, "centre": None, "centres": [], "confirm": False, "keyword": None,
                "how": None, "heard": [], "score": None, "also": [], "cancelled": list(withdrawn)}
    situation = emergencies.get(match.situation)
    return {"situation": match.situation, "centre": match.centre, "centres": list(situation.centres),
            "confirm": situation.confirm, "keyword": match.keyword, "how": match.how,
            "heard": list(match.evidence), "score": match.score, "also": list(match.also),
            "cancelled": list(withdrawn)}


async def match_handler(args: argparse.Namespace, config: Any) -> int:
    try:
        emergencies = _load(args, config)
    except EmergencyListError as exc:
        print(f"hotline linkage match: {exc}", file=sys.stderr)
        return 2
    record = match_record(emergencies, args.text)
    if args.json:
        print(json.dumps(record, ensure_ascii=False))
        return 0
    if record["situation"] is None:
        print("no emergency: the call goes to the ordinary queue")
    else:
        situation = emergencies.get(record["situation"])
        confirm = "after the caller confirms" if record["confirm"] else "at once"
        print(f"{situation.id} ({situation.name}) on {record['keyword']!r}: "
              f"{' > '.join(record['centres'])}, {confirm}")
        print(f"  heard ({record['how']}, score {record['score']}): {'; '.join(record['heard'])}")
        if record["also"]:
            print(f"  also heard: {', '.join(record['also'])}")
    for withdrawn in record["cancelled"]:
        print(f"  set aside: {withdrawn} (a cancelling context)")
    return 0


async def handoffs_handler(args: argparse.Namespace, config: Any) -> int:
    if args.limit < 0:
        print("hotline linkage handoffs: --limit must be 0 or more", file=sys.stderr)
        return 2
    async with await Store.open(config.store.location, **config.store.pool) as store:
        handoffs = await store.list_handoffs(call_id=args.call, limit=args.limit)
        for handoff in handoffs:
            handoff["pushes"] = await store.list_pushes(handoff_id=handoff["id"])
    if args.json:
        print(json.dumps([_handoff_json(h) for h in handoffs], ensure_ascii=False))
        return 0
    if not handoffs:
        print("no hand-offs")
        return 0
    print_table([_handoff_row(h) for h in handoffs],
                 [("ID", "id"), ("CALL", "call_id"), ("SITUATION", "situation"), ("CENTRE", "centre"),
                  ("TRIGGER", "trigger"), ("MODE", "mode"), ("REQUESTED", "requested_at"), ("RING", "ring"),
                  ("ANSWER", "answer"), ("RESULT", "result"), ("PUSH", "push")])
    return 0


def _handoff_json(handoff: dict) -> dict:
    out = {k: _iso(v) if isinstance(v, datetime) else v for k, v in handoff.items() if k != "pushes"}
    out["pushes"] = [{k: _iso(v) if isinstance(v, datetime) else v for k, v in p.items()}
                     for p in handoff["pushes"]]
    return out


def _handoff_row(handoff: dict) -> dict:
    requested = handoff["requested_at"]

    def after(at: datetime | None) -> str | None:
        return None if at is None else f"+{(at - requested).total_seconds():.1f}s"

    push = ", ".join(map(push_summary, handoff["pushes"])) or None
    return {**handoff, "requested_at": requested.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
            "ring": after(handoff["ring_at"]), "answer": after(handoff["answered_at"]), "push": push}


def push_summary(push: dict) -> str:
    """"http sent x3 (resumed after a restart)", "http failed x3: HTTP 503: busy": what became of one push."""
    text = f"{push['adapter']} {push['state']}" + (f" x{push['attempts']}" if push["attempts"] > 1 else "")
    if push.get("resumed_at") is not None:
        text += " (resumed after a restart)"
    if push["state"] in ("failed", "pending") and push.get("last_error"):
        text += f": {' '.join(push['last_error'].split())}"
    return text


def _iso(value: datetime) -> str:
    return value.astimezone(SHANGHAI).isoformat(timespec="milliseconds")
