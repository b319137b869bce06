"""Benchmark (i): one node on SQLite against two nodes on PostgreSQL, in one run, as ratios.

1. The restriction check each call entry makes (`Store.active_restriction`, half hits, half misses) against a store
   of ``--rows`` restricted numbers: p50/p99 in microseconds on SQLite (the embedded file) and on PostgreSQL (the
   sandbox's own cluster on loopback, through the connection pool).
2. Calls/s through the real stack: sipp callers run the gateway's entry + menu flow (restriction check, call
   record, menu with a key, channel variables; bench/sipp_load.py's gateway extension, short of the agent queue)
   at rates that climb a ladder; the highest total rate with 0 failed calls, first on one node with SQLite, then
   on two nodes (`stack up --nodes 2`) on PostgreSQL with half the rate sent to each node.

Prints figures; asserts nothing. Both stacks run on this machine: two nodes share its 2 cores, so the ratio says
what the shared store costs, not what a second server would add.

    .venv/bin/python bench/two_nodes_postgres.py [--rows 100000] [--lookups 5000] [--rates 20,40,60,80,100,130]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.restriction_check import DECIDED, NOW, restricted, unrestricted  # noqa: E402
from bench.sipp_load import (  # noqa: E402
    GATEWAY_EXTEN,
    add_bench_extensions,
    parse_stats,
    remove_bench_extensions,
    start_sipp,
)
from gateway.config import load_config  # noqa: E402
from gateway.sandbox.cluster import node_files  # noqa: E402
from gateway.sandbox.postgres_cluster import PostgresCluster  # noqa: E402
from gateway.sandbox.processes import wait_until  # noqa: E402
from gateway.sandbox.stack import Stack  # noqa: E402
from gateway.store.database import Store  # noqa: E402


async def check_latency(location: str, rows: int, lookups: int) -> dict[str, float]:
    rng = random.Random(7)
    store = await Store.open(location)
    try:
        await store.add_restrictions_bulk((restricted(i), "harassed staff", "bench", 30, DECIDED) for i in range(rows))
        if store.backend.name == "postgres":
            await store._db.execute("ANALYZE restrictions")
        numbers = [restricted(rng.randrange(rows)) for _ in range(lookups // 2)]
        numbers += [unrestricted(rng.randrange(rows)) for _ in range(lookups - len(numbers))]
        rng.shuffle(numbers)
        for number in numbers[:200]:
            await store.active_restriction(number, NOW)
        samples = []
        for number in numbers:
            t0 = time.perf_counter_ns()
            await store.active_restriction(number, NOW)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        await store.close()
    samples.sort()
    return {"p50": statistics.median(samples), "p99": samples[int(len(samples) * 0.99) - 1]}


def ladder(stacks: list[Stack], rates: list[int], seconds: float, workdir: Path, label: str) -> int | None:
    best = None
    for rate in rates:
        per_node = rate / len(stacks)
        runs = [start_sipp(stack, GATEWAY_EXTEN, per_node, max(1, int(per_node * seconds)), workdir,
                           f"{label.replace(' ', '')}-{rate}-{i}") for i, stack in enumerate(stacks)]
        for proc, _ in runs:
            proc.wait()
        ok = failed = 0
        for _, stat_file in runs:
            o, f = parse_stats(stat_file)
            ok, failed = ok + o, failed + f
        expected = sum(max(1, int(per_node * seconds)) for _ in stacks)
        print(f"  {label:18} {rate:4d} calls/s: {ok:5d} ok {failed:4d} failed", flush=True)
        for stack in stacks:
            wait_until(lambda s=stack: not re.search(r"[1-9]\d* active call",
                                                     s.root.cli("core show channels count").stdout), 30, 0.5)
        if failed or ok < expected:
            break
        best = rate
    return best


def hotline(config: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "gateway.cli.main", "--config", str(config), *args], check=True,
                   capture_output=True, text=True, cwd=REPO, timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--rates", default="20,40,60,80,100,130,160")
    parser.add_argument("--step-seconds", type=float, default=6.0)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    with tempfile.TemporaryDirectory(prefix="hotline-bench-pg-") as tmp:
        sqlite_check = asyncio.run(check_latency(str(Path(tmp) / "check.sqlite"), args.rows, args.lookups))
        cluster = PostgresCluster.create(Path(tempfile.mkdtemp(prefix="hotline-pg-bench-")))
        try:
            pg_check = asyncio.run(check_latency(cluster.url(), args.rows, args.lookups))
        finally:
            cluster.remove()
    print(f"restriction check, {args.rows} numbers, {args.lookups} lookups (microseconds)")
    for label, figures in (("sqlite", sqlite_check), ("postgres", pg_check)):
        print(f"  {label:9} p50 {figures['p50']:8.1f}  p99 {figures['p99']:8.1f}")
    print(f"  ratio postgres/sqlite: p50 {pg_check['p50'] / sqlite_check['p50']:.2f}  "
          f"p99 {pg_check['p99'] / sqlite_check['p99']:.2f}")

    state = Path(tempfile.mkdtemp(prefix="hotline-bench-nodes-"))
    config_path = state / "hotline.toml"
    config_path.write_text(f'[gateway]\nstate_dir = "{state / "state"}"\nlog_level = "WARNING"\n')
    with tempfile.TemporaryDirectory(prefix="hotline-bench-sipp-") as work:
        print(f"\ncalls/s through the stack (gateway entry + menu), {args.step_seconds:.0f} s per step")
        single = Stack(load_config(config_path), str(config_path))
        single.up(log=lambda *_: None)
        try:
            add_bench_extensions(single)
            one = ladder([single], rates, args.step_seconds, Path(work), "1 node, sqlite")
        finally:
            remove_bench_extensions(single)
            single.down(log=lambda *_: None)
        hotline(config_path, "stack", "up", "--nodes", "2")
        try:
            stacks = [Stack(load_config(p), str(p)) for p in node_files(load_config(config_path))[0]]
            for stack in stacks:
                add_bench_extensions(stack)
            two = ladder(stacks, rates, args.step_seconds, Path(work), "2 nodes, postgres")
        finally:
            hotline(config_path, "stack", "down")
            _, pg_dir = node_files(load_config(config_path))
            if pg_dir is not None and (pg_dir / "port").exists():
                PostgresCluster.attach(pg_dir).remove()
    print(f"\n  1 node on SQLite:      highest rate with 0 failed: {one} calls/s")
    print(f"  2 nodes on PostgreSQL: highest rate with 0 failed: {two} calls/s")
    if one and two:
        print(f"  ratio 2 nodes postgres / 1 node sqlite: {two / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
