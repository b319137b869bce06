"""FastAGI throughput: gateway.agi.server.FastAGIServer against panoramisk.fast_agi.Application.

A synthetic Asterisk (this process) opens --sessions concurrent FastAGI connections; each server's handler
sends --commands GET VARIABLE / SET VARIABLE commands, and the client answers every one "200 result=1 (x)".
Each server runs in its own process so neither shares an event loop with the client; rounds alternate
between the two servers. Prints figures only.

    .venv/bin/python bench/fastagi_vs_panoramisk.py [--sessions 500] [--commands 20] [--rounds 5]

On a 2-core machine the client and the server under test each get about one core, so commands/s can be
bounded by the client; server CPU per 1000 commands (user + system, read from the server process) is the
figure that compares the two servers' cost. Both move with load on the machine: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCRIPT = "bench"
REPLY = b"200 result=1 (x)\n"


def _header(n: int) -> bytes:
    fields = [
        ("agi_network", "yes"), ("agi_network_script", SCRIPT), ("agi_request", f"agi://127.0.0.1/{SCRIPT}"),
        ("agi_channel", f"PJSIP/caller-{n:08x}"), ("agi_language", "zh"), ("agi_type", "PJSIP"),
        ("agi_uniqueid", f"1732690000.{n}"), ("agi_version", "22.10.1"), ("agi_callerid", "13800138000"),
        ("agi_calleridname", "张三"), ("agi_callingpres", "0"), ("agi_callingani2", "0"),
        ("agi_callington", "0"), ("agi_callingtns", "0"), ("agi_dnid", "12345"), ("agi_rdnis", "unknown"),
        ("agi_context", "hotline"), ("agi_extension", "12345"), ("agi_priority", "2"), ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""), ("agi_threadid", "140000000000000"),
    ]
    return "".join(f"{k}: {v}\n" for k, v in fields).encode() + b"\n"


# ------------------------------------------------------------------------------------------ servers

def _serve(kind: str, commands: int, conn) -> None:
    asyncio.run(_serve_async(kind, commands, conn))


async def _serve_async(kind: str, commands: int, conn) -> None:
    loop = asyncio.get_running_loop()
    if kind == "ours":
        from gateway.agi.session import AGISession
        from gateway.agi.server import FastAGIServer

        async def ours(session: AGISession) -> None:
            for i in range(commands):
                if i % 2:
                    await session.set_variable("TICKET", "T-1")
                else:
                    await session.get_variable("QUEUE")

        server = FastAGIServer({SCRIPT: ours}, port=0, backlog=1024)
        await server.start()
        port, stop = server.port, server.close
    else:
        from panoramisk.fast_agi import Application

        async def theirs(request) -> None:
            for i in range(commands):
                if i % 2:
                    await request.send_command('SET VARIABLE TICKET "T-1"')
                else:
                    await request.send_command("GET VARIABLE QUEUE")

        app = Application(loop=loop)
        app.add_route(SCRIPT, theirs)
        # Same backlog as ours: the comparison is about the protocol layer, not the listen queue.
        tcp = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=1024)
        port = tcp.sockets[0].getsockname()[1]

        async def stop() -> None:
            tcp.close()
            await tcp.wait_closed()

    conn.send(port)
    while True:
        request = await loop.run_in_executor(None, conn.recv)
        if request == "cpu":
            conn.send(time.process_time())
        else:
            break
    await stop()


# ------------------------------------------------------------------------------------------ client

async def _one_session(port: int, n: int, commands: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    answered = 0
    try:
        writer.write(_header(n))
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(REPLY)
            answered += 1
    except OSError:
        return False
    finally:
        writer.close()
    return answered == commands


@dataclass
class Round:
    seconds: float
    completed: int
    failed: int
    server_cpu: float


async def _round(port: int, sessions: int, commands: int, conn) -> Round:
    cpu_before = _ask_cpu(conn)
    started = time.perf_counter()
    results = await asyncio.wait_for(
        asyncio.gather(*(_one_session(port, n, commands) for n in range(sessions))), timeout=60
    )
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.05)  # let the server finish closing before reading its CPU time
    completed = sum(results)
    return Round(seconds, completed, sessions - completed, _ask_cpu(conn) - cpu_before)


def _ask_cpu(conn) -> float:
    conn.send("cpu")
    return conn.recv()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    servers = {}
    for kind in ("ours", "panoramisk"):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(kind, options.commands, child), daemon=True)
        process.start()
        servers[kind] = (process, parent, parent.recv())

    rounds: dict[str, list[Round]] = {kind: [] for kind in servers}

    async def run_all() -> None:
        for _ in range(options.rounds):
            for kind, (_, conn, port) in servers.items():
                rounds[kind].append(await _round(port, options.sessions, options.commands, conn))

    asyncio.run(run_all())
    for process, conn, _ in servers.values():
        conn.send("stop")
        process.join(5)

    print(f"FastAGI benchmark: {options.sessions} concurrent sessions x {options.commands} commands, "
          f"{options.rounds} rounds per server (alternating), python {sys.version.split()[0]}")
    print(f"{'server':<12} {'commands/s (median)':>20} {'best':>9} {'completed':>10} {'failed':>7} "
          f"{'server CPU ms/1000 cmds':>24}")
    medians = {}
    for kind, runs in rounds.items():
        total = options.sessions * options.commands
        rates = [r.completed * options.commands / r.seconds for r in runs]
        cpu = statistics.median(r.server_cpu * 1000 / total * 1000 for r in runs)
        medians[kind] = (statistics.median(rates), cpu)
        print(f"{kind:<12} {statistics.median(rates):>20,.0f} {max(rates):>9,.0f} "
              f"{sum(r.completed for r in runs):>10} {sum(r.failed for r in runs):>7} {cpu:>24.1f}")
    ours, theirs = medians["ours"], medians["panoramisk"]
    print(f"ratio ours/panoramisk: throughput {ours[0] / theirs[0]:.2f}, server CPU per command "
          f"{ours[1] / theirs[1]:.2f}")


if __name__ == "__main__":
    main()
