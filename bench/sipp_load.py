"""Benchmark (a): sipp callers through the real stack, static dialplan vs the gateway's entry + menu flow.

Both flows answer, play the welcome with barge-in, take the caller's key (3, RFC 2833), play the transfer prompt
and hang up; the static one does it with Read()/Playback() in the dialplan, the gateway one through FastAGI
(restriction check, call record, menu, channel variables). They stop short of the agent queue, whose two
sandbox agents would be the bottleneck. A call succeeds only if the server hangs up after the flow (sipp's
recv BYE without ontimeout). For each flow the rate climbs a ladder; the highest rate with 0 failed calls is
reported with the Asterisk and gateway CPU it took, and the ratio gateway/static.

Prints figures; asserts nothing. Usage: .venv/bin/python bench/sipp_load.py [--step-seconds 6] [--rates 10,20,40]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.config import load_config  # noqa: E402
from gateway.sandbox.dtmf_pcap import write_dtmf_pcaps  # noqa: E402
from gateway.sandbox.processes import wait_until  # noqa: E402
from gateway.sandbox.sipp_scenario import CallerScript, caller_scenario  # noqa: E402
from gateway.sandbox.stack import Stack  # noqa: E402
from gateway.sandbox.testcall import free_udp_port_pair  # noqa: E402

STATIC_EXTEN = "12340"
GATEWAY_EXTEN = "12341"


def add_bench_extensions(stack: Stack) -> None:
    cfg = stack.config
    prompts = cfg.ivr.asterisk_prompt_dir
    ctx = "hotline-in"
    static = [
        "Answer()",
        f"Read(KEY,{prompts}/welcome,1,,1,5)",
        "Set(__HOTLINE_REQUEST_TYPE=${IF($[\"${KEY}\" = \"3\"]?complaint:unspecified)})",
        f"Playback({prompts}/transfer_agent)",
        "Hangup()",
    ]
    gateway = ["Answer()", f"AGI(agi://{cfg.fastagi.host}:{cfg.fastagi.port}/entry)", "Hangup()"]
    for exten, apps in ((STATIC_EXTEN, static), (GATEWAY_EXTEN, gateway)):
        for prio, app in enumerate(apps, 1):
            r = stack.root.cli(f"dialplan add extension {exten},{prio},{app} into {ctx} replace")
            if r.returncode != 0:
                raise SystemExit(f"dialplan add failed: {r.stdout} {r.stderr}")


def remove_bench_extensions(stack: Stack) -> None:
    for exten in (STATIC_EXTEN, GATEWAY_EXTEN):
        stack.root.cli(f"dialplan remove extension {exten}@hotline-in")


def cpu_seconds(pid: int | None) -> float:
    """utime+stime of a process and its threads, in seconds."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def asterisk_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "asterisk"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


def start_sipp(stack: Stack, exten: str, rate: float, calls: int, workdir: Path, tag: str
               ) -> tuple[subprocess.Popen, Path]:
    """sipp callers at ``rate`` calls/s into ``exten`` of the stack's Asterisk, each keying 3 during the welcome;
    the process and its statistics file."""
    cfg = stack.config
    script = CallerScript(from_number="13800138000", dtmf="3", first_digit_after_ms=1000, hold_ms=15000,
                          expect_server_hangup=True)
    pcaps = write_dtmf_pcaps([("3", 0)], workdir / f"pcap-{tag}")
    scenario = workdir / f"load-{tag}.xml"
    scenario.write_text(caller_scenario(script, pcaps))
    stat_file = workdir / f"stat-{tag}.csv"
    argv = ["sipp", f"{cfg.sip.bind}:{cfg.sip.port}", "-sf", str(scenario), "-s", exten, "-i", "127.0.0.1",
            "-mp", str(free_udp_port_pair()), "-r", f"{rate:g}", "-m", str(calls), "-l", str(int(rate * 30) + 1),
            "-nostdin", "-timeout", f"{int(calls / max(rate, 0.1) + 60)}s", "-trace_stat", "-stf", str(stat_file),
            "-fd", "1", "-max_socket", "65000"]
    return subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL), stat_file


def run_step(stack: Stack, exten: str, rate: int, seconds: float, workdir: Path) -> dict:
    calls = max(1, int(rate * seconds))
    ast, gw = asterisk_pid(), stack.gateway.pid()
    ast0, gw0, t0 = cpu_seconds(ast), cpu_seconds(gw), time.monotonic()
    proc, stat_file = start_sipp(stack, exten, rate, calls, workdir, f"{exten}-{rate}")
    proc.wait()
    wall = time.monotonic() - t0
    ok, failed = parse_stats(stat_file)
    return {"rate": rate, "calls": calls, "ok": ok, "failed": failed, "wall_s": wall,
            "asterisk_cpu": (cpu_seconds(ast) - ast0) / wall * 100, "gateway_cpu": (cpu_seconds(gw) - gw0) / wall * 100,
            "sipp_rc": proc.returncode}


def parse_stats(stat_file: Path) -> tuple[int, int]:
    lines = stat_file.read_text().strip().splitlines() if stat_file.exists() else []
    if len(lines) < 2:
        return 0, 0
    head = lines[0].split(";")
    last = lines[-1].split(";")
    row = dict(zip(head, last))
    return int(row.get("SuccessfulCall(C)", 0)), int(row.get("FailedCall(C)", 0))


def ladder(stack: Stack, exten: str, rates: list[int], seconds: float, workdir: Path, label: str) -> dict | None:
    best = None
    for rate in rates:
        step = run_step(stack, exten, rate, seconds, workdir)
        print(f"  {label:8} {rate:4d} calls/s: {step['ok']:5d} ok {step['failed']:4d} failed   "
              f"asterisk {step['asterisk_cpu']:5.1f}% cpu  gateway {step['gateway_cpu']:5.1f}% cpu", flush=True)
        wait_until(lambda: not re.search(r"[1-9]\d* active call", stack.root.cli("core show channels count").stdout),
                   30, 0.5)
        if step["failed"] or step["ok"] < step["calls"]:
            break
        best = step
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="20,40,60,80,100,130,160,200,250,300,400,500")
    parser.add_argument("--step-seconds", type=float, default=6.0)
    parser.add_argument("--state-dir", default="/tmp/hotline-bench")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    config_path = state / "hotline.toml"
    config_path.write_text(f'[gateway]\nstate_dir = "{state}"\nlog_level = "WARNING"\n')
    stack = Stack(load_config(config_path), str(config_path))
    stack.up(log=lambda *_: None)
    try:
        add_bench_extensions(stack)
        with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
            print(f"sipp load, {args.step_seconds:.0f} s per step, caller keys 3 during the welcome")
            static = ladder(stack, STATIC_EXTEN, rates, args.step_seconds, Path(tmp), "static")
            gateway = ladder(stack, GATEWAY_EXTEN, rates, args.step_seconds, Path(tmp), "gateway")
        print()
        for label, best in (("static dialplan", static), ("gateway entry+menu", gateway)):
            if best:
                print(f"{label:20} highest rate with 0 failed: {best['rate']} calls/s "
                      f"(asterisk {best['asterisk_cpu']:.0f}% cpu, gateway {best['gateway_cpu']:.0f}% cpu)")
            else:
                print(f"{label:20} failed already at {rates[0]} calls/s")
        if static and gateway:
            print(f"ratio gateway/static: {gateway['rate'] / static['rate']:.2f}")
    finally:
        remove_bench_extensions(stack)
        stack.down(log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
