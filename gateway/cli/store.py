"""`hotline store migrate`: bring the configured store (or ``--to``) to this code's schema version, and
`hotline store copy --from SRC --to DST`: move an office's store to another backend, checked table by table
(`gateway.store.copying`). A store is a SQLite path (``sqlite:PATH`` or a plain path) or a postgresql:// URL.

Exit status: 0 done; 1 the copy does not match its source (the tables are named); 2 bad input (a store that
cannot be opened, a destination that holds data, schema versions that differ).
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.basics.write_health import STORE_ERRORS
from gateway.cli.output import fail, print_table
from gateway.store.backends.postgres import masked_url
from gateway.store.copying import CopyRefused, copy_store
from gateway.store.database import Store
from gateway.store.schema.sqlite_migrations import MIGRATIONS


def register(subparsers: Any) -> None:
    store = subparsers.add_parser("store", help="the store: schema migrations, a copy to another backend")
    commands = store.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    migrate = commands.add_parser("migrate", help="apply the schema migrations this code has")
    migrate.add_argument("--to", help="this store instead of the configured one")
    migrate.set_defaults(func=store_migrate)
    copy = commands.add_parser("copy", help="copy every table to an empty store of either backend and check it")
    copy.add_argument("--from", dest="source", help="the store to copy (default: the configured one)")
    copy.add_argument("--to", dest="destination", required=True, help="the empty store to fill")
    copy.add_argument("--json", action="store_true")
    copy.set_defaults(func=store_copy)


async def _open(location: str, config: Any) -> Store:
    pool = config.store.pool if location == config.store.location else {}
    return await Store.open(location, **pool)


async def store_migrate(args: argparse.Namespace, config: Any) -> int:
    location = args.to or config.store.location
    try:
        async with await _open(location, config) as store:
            version = await store.schema_version()
            print(f"store {store.target}: schema version {version} (this code's latest: {MIGRATIONS[-1][0]})")
    except (*STORE_ERRORS, OSError, RuntimeError) as exc:
        return fail(f"{masked_url(location)}: {exc}")
    return 0


async def store_copy(args: argparse.Namespace, config: Any) -> int:
    source_location = args.source or config.store.location
    if source_location == args.destination:
        return fail("--from and --to name the same store")
    try:
        async with await _open(source_location, config) as source, await _open(args.destination, config) as dest:
            results = await copy_store(source, dest)
            where = (source.target, dest.target)
    except CopyRefused as exc:
        return fail(str(exc))
    except (*STORE_ERRORS, OSError, RuntimeError) as exc:
        return fail(f"{type(exc).__name__}: {exc}")
    rows = [{"table": r.table, "rows": r.source_rows, "copied": r.copied_rows, "sha256": r.source_digest[:16],
             "match": "yes" if r.matches else "NO"} for r in results]
    if args.json:
        print(json.dumps({"from": where[0], "to": where[1], "tables": [
            {"table": r.table, "rows": r.source_rows, "copied": r.copied_rows, "source_sha256": r.source_digest,
             "copied_sha256": r.copied_digest, "match": r.matches} for r in results]}, ensure_ascii=False))
    else:
        print(f"copied {where[0]} -> {where[1]}")
        print_table(rows, [("table", "table"), ("rows", "rows"), ("copied", "copied"), ("sha256", "sha256"),
                           ("match", "match")])
    wrong = [r.table for r in results if not r.matches]
    if wrong:
        print(f"error: the copy differs from its source in {', '.join(wrong)}")
        return 1
    return 0
