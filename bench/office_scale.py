"""Benchmark: the hotline office's reads on a busy city's month, on SQLite and on PostgreSQL.

Fills a store with ``--days`` days of ``--calls`` calls a day (default 30 x 20,000: a city of several million),
with the rows a real day leaves: tickets for the calls that reached the queue, surveys, hand-offs, refused calls,
call-back tasks. Then times, on each backend:

- one daily report (`hotline report daily`): the JSON figures, and the HTML page with its charts;
- the nuisance review of one day (a 7-day window);
- the export of the whole month (`gateway.export`, when present), counting the records.

The rows are bulk-inserted with SQL (a benchmark's data, not the call path). Prints figures; asserts nothing.

    .venv/bin/python bench/office_scale.py [--days 30] [--calls 20000] [--backends sqlite,postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.basics.clock import SHANGHAI  # noqa: E402
from gateway.cli.report import render_report  # noqa: E402
from gateway.office.nuisance import ReviewSettings, read_review_list  # noqa: E402
from gateway.sandbox.postgres_cluster import PostgresCluster  # noqa: E402
from gateway.store.database import Store  # noqa: E402
from gateway.store.rows import to_ts  # noqa: E402

FIRST_DAY = date(2026, 11, 1)
BATCH = 5000
TYPES = ("consultation", "help", "complaint", "report", "suggestion", "unspecified")
UNITS = ("市住房和城乡建设局", "市生态环境局", "市交通运输局", "市市场监督管理局", "赤坎区人民政府", "供电局", "自来水公司")
CATEGORIES = ("噪音", "交通", "供水", "供电", "物业", "消费维权", "环境卫生")
CENTRES = ("110", "119", "120", "122", "water", "power", "gas")


def _number(rng: random.Random) -> str:
    # a few heavy callers among many occasional ones, so the nuisance review finds some
    if rng.random() < 0.003:
        return f"+861370000{rng.randrange(4):04d}"
    return f"+86138{rng.randrange(10**8):08d}"


def day_rows(day: date, calls: int, rng: random.Random) -> dict[str, list[tuple]]:
    """One day's rows, table by table, as tuples for the INSERTs below."""
    rows: dict[str, list[tuple]] = {k: [] for k in ("calls", "tickets", "blocked", "ratings", "handoffs", "tasks")}
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    for n in range(calls):
        # more calls by day than by night
        hour = rng.choices(range(24), weights=[1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 10, 12, 14, 14, 12, 10, 8, 6,
                                               4, 3, 2, 1])[0]
        at = start + timedelta(hours=hour, seconds=rng.randrange(3600), microseconds=rng.randrange(10**6))
        call_id = f"{int(at.timestamp())}.{day.toordinal() % 1000}{n}"
        fate = rng.random()
        queued = answered = ended = None
        outcome, path = "abandoned", "[]"
        request_type = rng.choice(TYPES)
        if fate < 0.005:
            outcome, ended = "blocked", at
            rows["blocked"].append((call_id, "+8613900000001", 1, to_ts(at)))
        elif fate < 0.06:
            ended = at + timedelta(seconds=rng.randrange(2, 20))
        elif fate < 0.07:
            outcome = "failed"
        else:
            path = json.dumps([str(TYPES.index(request_type) + 1)])
            queued = at + timedelta(seconds=rng.randrange(8, 25))
            wait = rng.expovariate(1 / 14)
            if fate < 0.14:
                ended = queued + timedelta(seconds=wait * 2)
            else:
                outcome, answered = "answered", queued + timedelta(seconds=wait)
                ended = answered + timedelta(seconds=rng.randrange(60, 400))
        rows["calls"].append((call_id, _number(rng), "PJSIP/trunk-1", to_ts(at), path, request_type, outcome,
                              queued and to_ts(queued), answered and to_ts(answered), ended and to_ts(ended),
                              "agent1" if answered else None, 0))
        if queued is not None:
            ticket = f"{day.strftime('%Y%m%d')}{n + 1:05d}"
            spoken = rng.random() < 0.7
            prefilled = json.dumps({"type": request_type, "category": rng.choice(CATEGORIES),
                                    "unit": rng.choice(UNITS)}, ensure_ascii=False) if spoken else None
            rows["tickets"].append((ticket, f"{rng.getrandbits(128):032x}", call_id, request_type,
                                    rng.choice(CATEGORIES), rng.choice(UNITS), "saved" if answered else "draft",
                                    prefilled, "录音转写" if spoken else None, to_ts(queued), to_ts(queued)))
            if answered is not None and rng.random() < 0.5:
                rating = rng.choice((1, 1, 1, 2, 2, 3, 4, 5, None))
                rows["ratings"].append(("intake", call_id, ticket, to_ts(ended), rating))
                if rating in (4, 5):
                    rows["tasks"].append((ticket, call_id, "+86138", "dissatisfied", to_ts(ended),
                                          (day + timedelta(days=1)).isoformat(),
                                          "done" if rng.random() < 0.8 else "open",
                                          to_ts(ended + timedelta(hours=20))))
            if rng.random() < 0.01:
                rows["handoffs"].append((call_id, rng.choice(CENTRES), "menu", "blind", to_ts(queued),
                                         to_ts(queued + timedelta(seconds=rng.randrange(3, 20))), "answered"))
    return rows


INSERTS = {
    "calls": "INSERT INTO calls (call_id, number, channel, started_at, ivr_path, request_type, outcome, queued_at,"
             " answered_at, ended_at, agent, priority) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    "tickets": "INSERT INTO ticket_drafts (ticket_id, public_id, call_id, type, category, unit, status, prefilled,"
               " transcript, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "blocked": "INSERT INTO blocked_attempts (call_id, number, restriction_id, at) VALUES (?,?,?,?)",
    "ratings": "INSERT INTO ratings (kind, call_id, ticket_id, asked_at, rating) VALUES (?,?,?,?,?)",
    "handoffs": "INSERT INTO handoffs (call_id, centre, trigger, mode, requested_at, answered_at, result)"
                " VALUES (?,?,?,?,?,?,?)",
    "tasks": "INSERT INTO callback_tasks (ticket_id, call_id, number, reason, created_at, due, state, done_at)"
             " VALUES (?,?,?,?,?,?,?,?)",
}


async def fill(store: Store, days: int, calls: int) -> float:
    started = time.perf_counter()
    await store.add_restriction("+8613900000001", reason="辱骂话务员", operator="lead1", days=30,
                                decided_at=datetime(2026, 10, 30, tzinfo=SHANGHAI))
    rng = random.Random(12345)
    for offset in range(days):
        rows = day_rows(FIRST_DAY + timedelta(days=offset), calls, rng)
        for table, sql in INSERTS.items():
            for i in range(0, len(rows[table]), BATCH):
                async with store._write() as db:
                    await db.executemany(sql, rows[table][i:i + BATCH])
    if store.backend.name == "postgres":
        async with store._write() as db:
            await db.execute("ANALYZE")
    return time.perf_counter() - started


async def timed(coro) -> tuple[float, object]:
    started = time.perf_counter()
    result = await coro
    return time.perf_counter() - started, result


async def measure(location: str, days: int, calls: int) -> dict[str, object]:
    config = SimpleNamespace(gateway=SimpleNamespace(timezone="Asia/Shanghai"),
                             office=SimpleNamespace(timely_answer_s=15))
    async with await Store.open(location) as store:
        fill_s = await fill(store, days, calls)
        day = FIRST_DAY + timedelta(days=days // 2)
        await render_report(store, day, config=config, fmt="json")   # warm the caches once
        json_s, text = await timed(render_report(store, day, config=config, fmt="json"))
        html_s, _ = await timed(render_report(store, day, config=config, fmt="html"))
        offered = next(r["value"] for r in json.loads(text)["headline"] if r["key"] == "offered")
        review_s, entries = await timed(read_review_list(
            store, day, zone=SHANGHAI, settings=ReviewSettings(calls_per_day=10, silent_calls=3, window_days=7),
            now=datetime.now(SHANGHAI)))
        export = await export_month(store, days)
    return {"fill_s": fill_s, "report_json_s": json_s, "report_html_s": html_s, "offered": offered,
            "review_s": review_s, "review_entries": len(entries), **export}


async def export_month(store: Store, days: int) -> dict[str, object]:
    try:
        from gateway.export.reading import export_records
        from gateway.export.records import ExportOptions
    except ImportError:
        return {"export_s": None, "export_records": None}
    since = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=SHANGHAI)
    started = time.perf_counter()
    count = 0
    async for _ in export_records(store, since, since + timedelta(days=days), ExportOptions()):
        count += 1
    return {"export_s": time.perf_counter() - started, "export_records": count}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="hotline-bench-office-") as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results[backend] = asyncio.run(measure(str(Path(tmp) / "office.sqlite"), args.days, args.calls))
            else:
                cluster = PostgresCluster.create(Path(tempfile.mkdtemp(prefix="hotline-pg-bench-")))
                try:
                    results[backend] = asyncio.run(measure(cluster.url(), args.days, args.calls))
                finally:
                    cluster.remove()
    print(f"office reads on {args.days} days x {args.calls} calls a day")
    for backend, r in results.items():
        export = (f"{r['export_s']:.1f} s for {r['export_records']} records" if r["export_s"] is not None
                  else "not available")
        print(f"  {backend:9} fill {r['fill_s']:.0f} s | daily report: json {r['report_json_s']:.2f} s,"
              f" html with charts {r['report_html_s']:.2f} s ({r['offered']} calls) | nuisance review"
              f" {r['review_s']:.2f} s ({r['review_entries']} numbers) | month export {export}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
