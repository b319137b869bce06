"""`hotline`: the gateway's command line (service, stack, restrictions, calls, prompts, config)."""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from gateway.cli import announce as cli_announce
from gateway.cli import callbacks as cli_callbacks
from gateway.cli import classify as cli_classify
from gateway.cli import export as cli_export
from gateway.cli import linkage as cli_linkage
from gateway.cli import model as cli_model
from gateway.cli import pending as cli_pending
from gateway.cli import recordings as cli_recordings
from gateway.cli import report as cli_report
from gateway.cli import restrict as cli_restrict
from gateway.cli import tickets as cli_tickets
from gateway.cli import sandbox as cli_sandbox
from gateway.cli import store as cli_store
from gateway.cli import triage as cli_triage
from gateway.config import CONFIG_ENV, ConfigError, load_config
from gateway.basics.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12345 hotline gateway for Asterisk")
    parser.add_argument("--config", help=f"TOML config file (default: ${CONFIG_ENV}, else the embedded defaults)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="serve FastAGI and hold the AMI connection (foreground)")
    run.set_defaults(func=cmd_run)

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    check = config_sub.add_parser("check", help="validate the config file; name each bad field and why")
    check.set_defaults(func=cmd_config_check, needs_config=False)

    prompts = sub.add_parser("prompts", help="Mandarin prompts")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", metavar="COMMAND", required=True)
    build = prompts_sub.add_parser("build", help="generate the prompt WAVs (espeak-ng, 8 kHz) from the catalogue")
    build.add_argument("--force", action="store_true", help="regenerate unchanged prompts too")
    build.add_argument("--out", help="output directory (default: STATE_DIR/prompts/zh)")
    build.set_defaults(func=cmd_prompts_build)

    asterisk = sub.add_parser("asterisk", help="Asterisk configuration")
    ast_sub = asterisk.add_subparsers(dest="asterisk_command", metavar="COMMAND", required=True)
    render = ast_sub.add_parser("render", help="write the rendered asterisk_conf/ files into DIR")
    render.add_argument("dir")
    render.set_defaults(func=cmd_asterisk_render)

    cli_sandbox.register(sub)
    cli_restrict.register(sub)
    cli_pending.register(sub)
    cli_classify.register(sub)
    cli_model.register(sub)
    cli_linkage.register(sub)
    cli_triage.register(sub)
    cli_tickets.register(sub)
    cli_recordings.register(sub)
    cli_callbacks.register(sub)
    cli_store.register(sub)
    cli_export.register(sub)
    cli_announce.register(sub)
    cli_report.register(sub)
    return parser


def cmd_run(args: argparse.Namespace, config: Any) -> int:
    from gateway.service import serve
    setup_logging(config.gateway.log_level)
    return asyncio.run(serve(config))


def cmd_config_check(args: argparse.Namespace, config: Any) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    problems = []
    for label, path in (("ivr.menu", cfg.ivr.menu), ("ivr.prompt_catalogue", cfg.ivr.prompt_catalogue)):
        if not Path(path).is_file():
            problems.append(f"  {label}: file {path} does not exist")
    if not problems:
        from ivr.menu import MenuError, load_menu, validate_prompts
        from ivr.prompts import load_catalogue
        try:
            validate_prompts(load_menu(cfg.ivr.menu), load_catalogue(cfg.ivr.prompt_catalogue))
        except (MenuError, ValueError) as exc:
            problems.append(f"  ivr: {exc}")
    if cfg.speech.model is not None:
        from ivr.speech.recogniser import SpeechModelError, check_model_dir
        try:
            check_model_dir(cfg.speech.model)
        except SpeechModelError as exc:
            problems.append(f"  speech.model: {exc}")
    if cfg.triage.model is not None:
        from ivr.triage.model import ModelError, load_model
        try:
            load_model(cfg.triage.model)
        except ModelError as exc:
            problems.append(f"  triage.model: {exc}")
    if problems:
        print(f"invalid configuration {cfg.source}:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    print(f"configuration {cfg.source}: ok")
    return 0










def cmd_prompts_build(args: argparse.Namespace, config: Any) -> int:
    from ivr.prompts import PromptBuildError, build_prompts
    out = Path(args.out) if args.out else config.prompt_build_dir
    try:
        report = asyncio.run(build_prompts(config.ivr.prompt_catalogue, out, voice=config.ivr.espeak_voice,
                                           force=args.force))
    except PromptBuildError as exc:
        print(f"prompts build failed: {exc}", file=sys.stderr)
        return 1
    print(f"prompts in {out}: {report}")
    return 0




def cmd_asterisk_render(args: argparse.Namespace, config: Any) -> int:
    from gateway.asterisk_render import write_all
    for path in write_all(config, config.ami_secret(), Path(args.dir)):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = None
    if getattr(args, "needs_config", True):
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
    result = args.func(args, config)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
