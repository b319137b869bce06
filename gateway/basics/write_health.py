"""Health of the gateway's writes to its state disk: the store, the status file, recordings.

A full or failing disk must not take calls down (Zhanjiang 12345 rules, arts. 2-3: 7x24 human service), and it
must not flood the log either: at 100 calls a second one line per failed write would fill what is left of the
disk. So a failure is logged once per kind (what was written, and why it failed), then only counted; the first
write of that kind that succeeds again logs the recovery with the count. ``snapshot()`` is what
``hotline stack status`` shows.
"""
from __future__ import annotations

__all__ = ["STORE_ERRORS", "WriteHealth", "failure_kind", "is_disk_failure", "log_write_failure",
           "unless_disk_fails"]

import errno
import logging
import sqlite3
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg

from gateway.basics.logs import log_event

log = logging.getLogger("gateway.basics.write_health")

# SQLite's primary result codes (the low byte of the extended code) that mean the disk, not the statement.
_SQLITE_KINDS = {sqlite3.SQLITE_FULL: "disk_full", sqlite3.SQLITE_IOERR: "io_error",
                 sqlite3.SQLITE_READONLY: "read_only", sqlite3.SQLITE_CANTOPEN: "cant_open",
                 sqlite3.SQLITE_CORRUPT: "corrupt", sqlite3.SQLITE_NOTADB: "corrupt"}
# PostgreSQL's SQLSTATE classes that mean the server or the way to it, not the statement: 08 connection
# exception, 53 insufficient resources (53100 disk full), 57 operator intervention (a server shutting down),
# 58 system error (I/O).
_PG_CLASSES = {"08": "database_unreachable", "53": "database_resources", "57": "database_unreachable",
               "58": "io_error"}
# What the store raises for a failed statement, whichever its backend (a caller's "the store failed" clause).
STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
_ERRNO_KINDS = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EIO: "io_error",
                errno.EROFS: "read_only", errno.EACCES: "no_permission", errno.EPERM: "no_permission"}


def failure_kind(exc: BaseException) -> str | None:
    """"disk_full", "io_error", "read_only", ... for a failure of the disk under a write; None for any other
    error (a bad value, a constraint, a bug), which is the writer's business and not a health matter."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return _SQLITE_KINDS.get(code & 0xFF)
        text = str(exc).lower()
        if "database or disk is full" in text:
            return "disk_full"
        if "disk i/o error" in text:
            return "io_error"
        return None
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate or ""
        if state == "53100":
            return "disk_full"
        if state[:2] in _PG_CLASSES:
            return _PG_CLASSES[state[:2]]
        # No SQLSTATE: the client lost the server (connection refused or closed, no pool connection in time).
        return "database_unreachable" if isinstance(exc, psycopg.OperationalError) and not state else None
    if isinstance(exc, OSError):
        return _ERRNO_KINDS.get(exc.errno or 0)
    return None


def is_disk_failure(exc: BaseException) -> bool:
    return failure_kind(exc) is not None


@dataclass
class _Failing:
    kind: str
    since: float
    logged: bool = True
    count: int = 0
    last_error: str = ""


# A disk on the edge of full lets some writes through (a row that fits a page already there) and refuses others:
# an outage of the same kind that starts again this soon after the last one logged is counted, not logged.
QUIET_S = 300.0


@dataclass
class WriteHealth:
    """Counts failed writes per target ("store", "status", "recording", ...) and logs each outage once."""

    clock: object = time.time
    quiet_s: float = QUIET_S
    _failing: dict[str, _Failing] = field(default_factory=dict)
    _logged_at: dict[tuple[str, str], float] = field(default_factory=dict)
    failed_writes: int = 0
    recoveries: int = 0

    def failed(self, target: str, exc: BaseException) -> str | None:
        """Record a failed write; its kind (None: not a disk failure, nothing recorded)."""
        kind = failure_kind(exc)
        if kind is None:
            return None
        self.failed_writes += 1
        current = self._failing.get(target)
        if current is None or current.kind != kind:
            now = self.clock()
            logged = self._logged_at.get((target, kind))
            current = self._failing[target] = _Failing(kind, now, logged=logged is None or now - logged >= self.quiet_s)
            if current.logged:
                self._logged_at[(target, kind)] = now
                log_event(log, logging.ERROR, "state_write_failed", target=target, kind=kind,
                          error=f"{type(exc).__name__}: {exc}"[:200], action="calls_go_on")
        current.count += 1
        current.last_error = f"{type(exc).__name__}: {exc}"[:200]
        return kind

    def succeeded(self, target: str) -> None:
        """A write to ``target`` worked: if it was failing, that outage is over."""
        current = self._failing.pop(target, None)
        if current is not None:
            self.recoveries += 1
        if current is not None and current.logged:
            log_event(log, logging.WARNING, "state_write_recovered", target=target, kind=current.kind,
                      failed_writes=current.count, outage_s=f"{self.clock() - current.since:.1f}")

    @property
    def ok(self) -> bool:
        return not self._failing

    def failing(self, target: str) -> str | None:
        """The kind of failure ``target`` is in, or None."""
        current = self._failing.get(target)
        return current.kind if current else None

    def snapshot(self) -> dict:
        return {"ok": self.ok, "failed_writes": self.failed_writes, "recoveries": self.recoveries,
                "failing": {target: {"kind": f.kind, "count": f.count, "since": round(f.since, 1),
                                     "last_error": f.last_error} for target, f in sorted(self._failing.items())}}


def log_write_failure(logger: logging.Logger, exc: BaseException, event: str, **fields: object) -> None:
    """Log a failed write where it happened: a disk failure in one short DEBUG line (``WriteHealth`` has logged
    the outage once already), anything else as the error it is, with its traceback."""
    kind = failure_kind(exc)
    if kind is not None:
        log_event(logger, logging.DEBUG, event, **fields, kind=kind)
    else:
        log_event(logger, logging.ERROR, event, **fields, error=type(exc).__name__, exc_info=True)


T = TypeVar("T")


async def unless_disk_fails(write: Awaitable[T], logger: logging.Logger, event: str, **fields: object) -> T | None:
    """The result of ``write``, or None when the state disk refused it (logged as ``event``): for the writes a call
    goes on without. Any other error is raised as it is."""
    try:
        return await write
    except Exception as exc:
        if not is_disk_failure(exc):
            raise
        log_write_failure(logger, exc, event, **fields)
        return None
