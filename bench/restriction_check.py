"""Call-entry restriction check against a store holding 1,000,000 restricted numbers.

Prints figures only: bulk-insert time, then p50/p99/mean latency (microseconds) and lookups/s for
`Store.active_restriction` (half hits, half misses, shuffled), and the same lookups against a 1,000-row store
in the same run; the ratio shows whether the lookup cost grows with the table (it should not: one index seek).

    .venv/bin/python bench/restriction_check.py [--rows 1000000] [--lookups 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.basics.clock import SHANGHAI
from gateway.store.database import Store  # noqa: E402

DECIDED = datetime(2026, 3, 1, 15, 0, tzinfo=SHANGHAI)
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=SHANGHAI)


def restricted(i: int) -> str:
    return f"+86139{i:08d}"


def unrestricted(i: int) -> str:
    return f"+86137{i:08d}"


async def build(path: Path, rows: int) -> tuple[Store, float]:
    store = await Store.open(path)
    started = time.perf_counter()
    await store.add_restrictions_bulk(
        (restricted(i), "harassed staff", "bench", 30, DECIDED) for i in range(rows)
    )
    return store, time.perf_counter() - started


async def measure(store: Store, rows: int, lookups: int, rng: random.Random) -> dict[str, float]:
    numbers = [restricted(rng.randrange(rows)) for _ in range(lookups // 2)]
    numbers += [unrestricted(rng.randrange(rows)) for _ in range(lookups - len(numbers))]
    rng.shuffle(numbers)
    for number in numbers[:200]:  # warm the page cache and the connection thread
        await store.active_restriction(number, NOW)
    hits = 0
    samples = []
    started = time.perf_counter()
    for number in numbers:
        t0 = time.perf_counter_ns()
        found = await store.active_restriction(number, NOW)
        samples.append((time.perf_counter_ns() - t0) / 1000)
        hits += found is not None
    elapsed = time.perf_counter() - started
    if hits != lookups // 2:
        raise SystemExit(f"expected {lookups // 2} hits, got {hits}")
    samples.sort()
    return {
        "p50": samples[len(samples) // 2],
        "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "mean": statistics.fmean(samples),
        "rate": lookups / elapsed,
    }


def show(label: str, figures: dict[str, float]) -> None:
    print(
        f"{label}: p50 {figures['p50']:.1f} us  p99 {figures['p99']:.1f} us  mean {figures['mean']:.1f} us"
        f"  {figures['rate']:,.0f} lookups/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        store, insert_s = await build(Path(tmp) / "big.sqlite", args.rows)
        try:
            print(f"bulk insert: {args.rows:,} restrictions (+ audit rows) in {insert_s:.2f} s"
                  f" ({args.rows / insert_s:,.0f} rows/s)")
            big = await measure(store, args.rows, args.lookups, rng)
        finally:
            await store.close()
        size_mb = (Path(tmp) / "big.sqlite").stat().st_size / 1e6
        print(f"database size: {size_mb:.0f} MB")
        show(f"{args.rows:,} rows, {args.lookups:,} lookups (50% hits)", big)

        store, _ = await build(Path(tmp) / "small.sqlite", args.baseline_rows)
        try:
            small = await measure(store, args.baseline_rows, args.lookups, rng)
        finally:
            await store.close()
        show(f"{args.baseline_rows:,} rows baseline", small)
        print(f"ratio {args.rows:,} / {args.baseline_rows:,} rows: p50 {big['p50'] / small['p50']:.2f}x"
              f"  p99 {big['p99'] / small['p99']:.2f}x  mean {big['mean'] / small['mean']:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
