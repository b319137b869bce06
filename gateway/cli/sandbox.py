"""`hotline stack up|down|status` and `hotline call`: the sandbox stack and scripted test calls into it."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the sandbox verbs to the `hotline` parser."""
    stack = subparsers.add_parser("stack", help="the sandbox stack: Asterisk, mosquitto, gateway")
    stack_sub = stack.add_subparsers(dest="stack_command", metavar="COMMAND", required=True)
    up = stack_sub.add_parser("up", help="start everything in the background; return when all are ready")
    up.add_argument("--simulated-agents", action="store_true", default=None,
                    help="also start sipp answering machines as the agents")
    up.add_argument("--nodes", type=int, default=1, choices=range(1, 10), metavar="N",
                    help="N Asterisk + gateway pairs sharing one PostgreSQL store and one broker (docs/deploy.md)")
    up.add_argument("--postgres", action="store_true",
                    help="the store on PostgreSQL (the sandbox's own cluster unless store.url names one)")
    up.set_defaults(func=cmd_stack_up)
    stack_sub.add_parser("down", help="stop everything").set_defaults(func=cmd_stack_down)
    status = stack_sub.add_parser("status", help="what runs and whether it is ready (exit 3: a part is down,"
                                  " 4: Asterisk does not run as its dedicated host account)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_stack_status)

    call = subparsers.add_parser("call", help="place a scripted test call into the sandbox (sipp)")
    call.add_argument("--from", dest="from_number", required=True, help="caller number")
    call.add_argument("--dtmf", default="", help="keys to press; ',' waits 2.5 s (e.g. '7,8' or '6,12345#')")
    call.add_argument("--hold", type=float, default=8.0, help="seconds to stay on the line after the last key")
    call.add_argument("--say", help="8 kHz 16-bit mono WAV the caller speaks after the keys")
    call.add_argument("--json", action="store_true")
    call.add_argument("--full", action="store_true", help="show the full number in the output")
    call.set_defaults(func=cmd_call)


def _stack(args: argparse.Namespace, config: Any):
    from gateway.sandbox.stack import Stack
    return Stack(config, args.config or None)


def _stacks(args: argparse.Namespace, config: Any) -> list:
    """The node stacks of the last `stack up --nodes/--postgres`, else the configured single stack."""
    from gateway.sandbox.cluster import running_nodes
    from gateway.sandbox.stack import Stack
    nodes = running_nodes(config)
    return [Stack(cfg, str(path)) for cfg, path in nodes] if nodes else [_stack(args, config)]


def cmd_stack_up(args: argparse.Namespace, config: Any) -> int:
    from gateway.config import load_config
    from gateway.sandbox.asterisk_root import AsteriskRootError
    from gateway.sandbox.cluster import cluster_file, node_files, postgres_for, write_node_files
    from gateway.sandbox.postgres_cluster import ClusterError
    from gateway.sandbox.stack import Stack, StackError
    try:
        if args.nodes == 1 and not args.postgres:
            _stack(args, config).up(simulated_agents=args.simulated_agents)
            recorded = [str(path.resolve()) for path in node_files(config)[0]]
            if not args.config or str(Path(args.config).resolve()) not in recorded:
                # the office's own file came up as one node (it could not while nodes held its ports)
                cluster_file(config).unlink(missing_ok=True)
            return 0
        url = postgres_for(config)
        print(f"store: PostgreSQL ({'configured' if config.store.url else 'the sandbox cluster'})")
        for path in write_node_files(config, args.config or None, args.nodes, url):
            Stack(load_config(path), str(path)).up(simulated_agents=args.simulated_agents)
    except (StackError, AsteriskRootError, ClusterError) as exc:
        print(f"stack up failed: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_stack_down(args: argparse.Namespace, config: Any) -> int:
    from gateway.sandbox.cluster import node_files
    from gateway.sandbox.postgres_cluster import PostgresCluster
    for stack in reversed(_stacks(args, config)):
        stack.down(log=_say_while_heard)
    _, postgres = node_files(config)
    if postgres is not None and (postgres / "port").exists():
        PostgresCluster.attach(postgres).stop()
        _say_while_heard("postgres: stopped")
    return 0


def _say_while_heard(message: str) -> None:
    """print, unless nobody reads our output any more (`make run | tee` after Ctrl-C): stopping goes on."""
    try:
        print(message, flush=True)
    except BrokenPipeError:
        # the rest, and the flush at exit, go nowhere instead of raising again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def cmd_stack_status(args: argparse.Namespace, config: Any) -> int:
    stacks = _stacks(args, config)
    statuses = [stack.status() for stack in stacks]
    if args.json:
        print(json.dumps(statuses[0] if len(statuses) == 1 else {"nodes": statuses}, indent=2))
    else:
        for stack, status in zip(stacks, statuses):
            if len(stacks) > 1:
                print(f"== {stack.config.cluster.name}")
            for part, info in status.items():
                print(f"{part:17} " + " ".join(f"{k}={v}" for k, v in (info.items() if isinstance(info, dict)
                                                                       else [])))
    running = all(s["asterisk"]["running"] and s["gateway"]["running"] and s["mosquitto"]["running"]
                  for s in statuses)
    for status in statuses:
        if not status["asterisk_account"]["ok"]:
            print("warning: Asterisk does not run as its dedicated host account: "
                  f"{status['asterisk_account']['problem']}", file=sys.stderr)
            return 4
    return 0 if running else 3


def cmd_call(args: argparse.Namespace, config: Any) -> int:
    from gateway.sandbox.sipp_scenario import parse_dtmf_script, sip_user
    from gateway.sandbox.testcall import place_call
    try:
        parse_dtmf_script(args.dtmf)
        sip_user(args.from_number)
    except ValueError as exc:
        print(f"hotline call: {exc}", file=sys.stderr)
        return 2
    say = Path(args.say) if args.say else None
    if say is not None:
        import wave
        from gateway.sandbox.voice_pcap import read_pcm_8k
        try:
            read_pcm_8k(say)
        except (OSError, EOFError, ValueError, wave.Error) as exc:
            print(f"hotline call: --say: {exc}", file=sys.stderr)
            return 2
    result = asyncio.run(place_call(config, args.from_number, args.dtmf, hold_s=args.hold, full=args.full,
                                    say=say))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            print(f"{key:12} {value}")
    return 0 if result["sipp_ok"] else 1
