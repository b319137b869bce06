"""`hotline export --since T --until T [--format jsonl] [--out FILE] [--full]`: the calls and tickets of a time window
(and the restriction audit when ``export.include_restriction_audit``) as JSON lines, one record a line, in the
schema of docs/export.md (Zhanjiang 12345 rules, art. 19). Caller numbers are masked unless ``--full`` is given and
``export.full_numbers`` allows it (art. 20).

T is a date (``2026-11-30``: its 00:00 in Asia/Shanghai) or an ISO 8601 time, Asia/Shanghai unless it carries an
offset (``2026-11-30T08:00``, ``2026-11-30T00:00Z``). A record is in the window when its time (a call's start, a
ticket's creation, an audit entry's act) is at or after --since and before --until.

Exit status: 0 written, 1 the output file or the store failed (the file is then not left half-written), 2 bad input.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TextIO

from gateway.basics.clock import SHANGHAI
from gateway.cli.output import fail, iso
from gateway.export.reading import export_records
from gateway.export.records import ExportOptions
from gateway.store.database import Store

FORMATS = ("jsonl",)
_CHUNK = 2000       # lines written at a time, off the event loop


def register(subparsers: Any) -> None:
    export = subparsers.add_parser("export", help="calls and tickets of a time window as JSON lines (art. 19)")
    export.add_argument("--since", required=True, metavar="T", help="start, included (date or ISO 8601 time)")
    export.add_argument("--until", required=True, metavar="T", help="end, excluded (date or ISO 8601 time)")
    export.add_argument("--format", default="jsonl", choices=FORMATS, help="jsonl: one JSON record a line")
    export.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    export.add_argument("--full", action="store_true",
                        help="full caller numbers (needs export.full_numbers = true in the configuration)")
    export.set_defaults(func=export_window)


def parse_time(text: str) -> datetime:
    """A date (its 00:00 in Asia/Shanghai) or an ISO 8601 time, Asia/Shanghai without an offset; ValueError."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), SHANGHAI)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date or time (2026-11-30, 2026-11-30T08:00, "
                         "2026-11-30T08:00+08:00)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=SHANGHAI)


async def export_window(args: argparse.Namespace, config: Any) -> int:
    try:
        since = parse_time(args.since)
    except ValueError as exc:
        return fail(f"--since: {exc}")
    try:
        until = parse_time(args.until)
    except ValueError as exc:
        return fail(f"--until: {exc}")
    if until <= since:
        return fail(f"--until ({iso(until)}) must be after --since ({iso(since)})")
    if args.full and not config.export.full_numbers:
        return fail("--full needs export.full_numbers = true in the configuration (art. 20); numbers stay masked")
    options = ExportOptions(source=config.export.source, full_numbers=args.full,
                            include_restriction_audit=config.export.include_restriction_audit)
    out = Path(args.out) if args.out else None
    partial = out.with_name(f".{out.name}.partial") if out else None
    try:
        stream = await asyncio.to_thread(_open, partial) if partial else sys.stdout
    except OSError as exc:
        print(f"error: --out: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        counts = await _write(config, since, until, options, stream)
        if partial:
            await asyncio.to_thread(_finish, stream, partial, out)
    except Exception as exc:  # noqa: BLE001 - a failure of the store or the disk: no half-written file is left
        if partial:
            await asyncio.to_thread(_discard, stream, partial)
        print(f"error: export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    what = ", ".join(f"{counts[kind]} {kind.replace('_', ' ')} records" for kind in options.kinds)
    print(f"exported {what} ({options.numbers} numbers) from {iso(since)} to {iso(until)}"
          f"{f' to {out}' if out else ''}", file=sys.stderr)
    return 0


async def _write(config: Any, since: datetime, until: datetime, options: ExportOptions, stream: TextIO) -> Counter:
    counts: Counter = Counter()
    lines: list[str] = []
    async with await Store.open(config.store.location, **config.store.pool) as store:
        async for record in export_records(store, since, until, options):
            counts[record["record_type"]] += 1
            lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            if len(lines) >= _CHUNK:
                await asyncio.to_thread(_write_lines, stream, lines)
                lines = []
    if lines:
        await asyncio.to_thread(_write_lines, stream, lines)
    await asyncio.to_thread(stream.flush)
    return counts


def _open(path: Path) -> TextIO:
    # the callers' requests and (with --full) numbers: readable by the office's group, like the recordings
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w", encoding="utf-8")


def _write_lines(stream: TextIO, lines: list[str]) -> None:
    stream.write("\n".join(lines) + "\n")


def _finish(stream: TextIO, partial: Path, out: Path) -> None:
    stream.flush()
    os.fsync(stream.fileno())
    stream.close()
    os.replace(partial, out)


def _discard(stream: TextIO, partial: Path) -> None:
    stream.close()
    partial.unlink(missing_ok=True)
