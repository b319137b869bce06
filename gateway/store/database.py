"""The gateway's store: restrictions and their audit, call records, ticket drafts, the MQTT outbox, pending
restriction requests, linkage hand-offs and their data pushes, the after-call records.

Two backends run the same SQL: SQLite (`backends.sqlite`, the embedded default for one machine) and PostgreSQL
(`backends.postgres`, the database several gateways share). ``Store.open(target)`` picks one by the target: a
``postgresql://`` URL, else a SQLite path (or ``sqlite:PATH``). Reads go through ``self._db``; writes through
``self._write()``, one transaction: ``durable`` for an operator's act that must outlive a power loss, ``serial`` for
a write that reads and then decides (one at a time across gateways; every SQLite write is).

Disk and database failures (SQLITE_FULL, SQLITE_IOERR, a PostgreSQL server gone away, ...) of any write are
recorded in ``self.health`` (logged once per kind, not once per call); the exception still reaches the writer, who
decides what the call does without it.

Numbers are E.164 text. Datetimes go in as aware datetimes, are stored as UTC text and come back aware in
Asia/Shanghai (the hotline's civil time).

Layout: this module keeps the choice of backend and the transaction (`_write`) plus restrictions;
`calls.CallsMixin` adds call records, call entry and queueing; `tickets.TicketsMixin` ticket drafts and status,
caller history and pending restrictions; `handling.HandlingMixin` the units' handling of tickets as the work-order
system reports it; `aftercall.AfterCallMixin` survey ratings, call-back tasks and redos;
`return_calls.ReturnCallsMixin` the automated return calls; `recordings.RecordingsMixin` call recordings and their
access audit; `ticket_access.TicketAccessMixin` public ids, assignments, the
screen-pop log and the console's access audit; `delivery.DeliveryMixin` the outbox, hand-offs and pushes;
`office.OfficeMixin` the reads behind the office's figures and nuisance review; `announcements.AnnouncementsMixin`
the incident announcements and the calls that heard them; `exporting.ExportMixin` the export to the provincial
platform (its pages and cursors); `rows` holds the row conversions,
field validators and value sets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.basics.phone import normalise_strict
from gateway.basics.store_url import is_postgres_url
from gateway.restriction import Restriction, check_days
from gateway.store.aftercall import AfterCallMixin
from gateway.store.announcements import AnnouncementsMixin
from gateway.store.calls import CallsMixin
from gateway.basics.write_health import WriteHealth
from gateway.store.delivery import DeliveryMixin
from gateway.store.exporting import ExportMixin
from gateway.store.handling import HandlingMixin
from gateway.store.office import OfficeMixin
from gateway.store.backends.postgres import PostgresBackend
from gateway.store.recordings import RecordingsMixin
from gateway.store.return_calls import ReturnCallsMixin
from gateway.store.rows import (
    RESTRICTION_COLUMNS,
    from_ts,
    insert_restriction,
    lookup_key,
    prepare_bulk,
    restriction_from_row,
    restriction_in_force,
    check_text,
    to_ts,
)
from gateway.store.backends.sqlite import SQLiteBackend
from gateway.store.ticket_access import TicketAccessMixin
from gateway.store.tickets import TicketsMixin

STORE_TARGET = "store"


class Store(CallsMixin, TicketsMixin, HandlingMixin, AfterCallMixin, ReturnCallsMixin, RecordingsMixin,
            TicketAccessMixin, DeliveryMixin, OfficeMixin, AnnouncementsMixin, ExportMixin):
    def __init__(self, backend: SQLiteBackend | PostgresBackend, health: WriteHealth | None = None) -> None:
        self.backend = backend
        self._db: Any = backend.reader
        self.path: Path | None = backend.path
        self.health = health or WriteHealth()

    @classmethod
    async def open(cls, target: str | Path, *, health: WriteHealth | None = None, **pool: Any) -> Store:
        """The store at ``target``: a PostgreSQL URL (``pool``: `PostgresBackend.open`'s pool settings) or a
        SQLite file, ``sqlite:PATH`` or a plain path, created with its parent folders if missing."""
        if target is None or not str(target).strip():
            # str(None) would be a file named "None" in the working directory
            raise ValueError("no store location: give a SQLite path or a postgresql:// URL")
        if is_postgres_url(target):
            backend: SQLiteBackend | PostgresBackend = await PostgresBackend.open(str(target), **pool)
        else:
            text = str(target)
            backend = await SQLiteBackend.open(text[len("sqlite:"):] if text.startswith("sqlite:") else text)
        return cls(backend, health)

    @property
    def target(self) -> str:
        """Where the store is, for messages (a PostgreSQL URL without its password)."""
        return self.backend.target

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def schema_version(self) -> int:
        return await self.backend.schema_version()

    @asynccontextmanager
    async def _write(self, *, durable: bool = False, serial: bool = False) -> AsyncIterator[Any]:
        """One write transaction; ``durable``: on disk at its COMMIT; ``serial``: alone (see above)."""
        try:
            async with self.backend.write(durable=durable, serial=serial) as db:
                yield db
        except Exception as exc:
            self.health.failed(STORE_TARGET, exc)
            raise
        self.health.succeeded(STORE_TARGET)

    # -- restrictions -----------------------------------------------------------------------------------------

    async def add_restriction(
        self, number: str, *, reason: str, operator: str, days: int, decided_at: datetime
    ) -> Restriction:
        number = normalise_strict(number)
        reason, operator = check_text(reason, "reason"), check_text(operator, "operator")
        check_days(days)
        async with self._write(durable=True) as db:
            return await insert_restriction(db, number, reason=reason, operator=operator, days=days,
                                             decided_at=decided_at)

    async def add_restrictions_bulk(self, rows: Iterable[tuple[str, str, str, int, datetime]]) -> None:
        """(number, reason, operator, days, decided_at) rows in one transaction, each audited as an 'add'.

        Every number is validated like an operator's (~20 us each in phonenumbers); that runs in a worker thread
        so a large import does not stall calls served by the same event loop.
        """
        prepared = await asyncio.to_thread(prepare_bulk, list(rows))
        async with self._write(durable=True) as db:
            before = (await db.execute_fetchall("SELECT COALESCE(MAX(id), 0) FROM restrictions"))[0][0]
            await db.executemany(
                "INSERT INTO restrictions (number, reason, operator, days, decided_at, until) VALUES (?,?,?,?,?,?)",
                prepared,
            )
            await db.execute(
                "INSERT INTO restriction_audit (action, restriction_id, number, operator, reason, at, days, until)"
                " SELECT 'add', id, number, operator, reason, decided_at, days, until FROM restrictions"
                " WHERE id > ? ORDER BY id",
                (before,),
            )

    async def active_restriction(self, number: str | None, now: datetime) -> Restriction | None:
        """The restriction in force for `number` at `now`: one indexed lookup of the latest decision."""
        key = lookup_key(number)
        return None if key is None else await restriction_in_force(self._db, key, now)

    async def lift_restriction(self, number: str, *, operator: str, reason: str, at: datetime) -> Restriction | None:
        number = normalise_strict(number)
        operator, reason = check_text(operator, "operator"), check_text(reason, "reason")
        async with self._write(durable=True) as db:
            active = await restriction_in_force(db, number, at)
            if active is None:
                return None
            await db.execute(
                "UPDATE restrictions SET lifted_at = ?, lifted_by = ?, lift_reason = ? WHERE id = ?",
                (to_ts(at), operator, reason, active.id),
            )
            await db.execute(
                "INSERT INTO restriction_audit (action, restriction_id, number, operator, reason, at, days, until)"
                " VALUES ('lift', ?, ?, ?, ?, ?, NULL, ?)",
                (active.id, number, operator, reason, to_ts(at), to_ts(active.until)),
            )
            rows = await db.execute_fetchall(
                f"SELECT {RESTRICTION_COLUMNS} FROM restrictions WHERE id = ?", (active.id,)
            )
        return restriction_from_row(rows[0])

    async def list_restrictions(self, now: datetime, *, include_inactive: bool = False) -> list[Restriction]:
        """Newest decision first. By default only those in force at `now` (one per number)."""
        if include_inactive:
            rows = await self._db.execute_fetchall(
                f"SELECT {RESTRICTION_COLUMNS} FROM restrictions ORDER BY decided_at DESC, id DESC"
            )
            return [restriction_from_row(row) for row in rows]
        at = to_ts(now)
        rows = await self._db.execute_fetchall(
            f"SELECT {RESTRICTION_COLUMNS} FROM restrictions AS r"
            " WHERE r.decided_at <= :now AND r.until > :now AND (r.lifted_at IS NULL OR r.lifted_at > :now)"
            " AND NOT EXISTS (SELECT 1 FROM restrictions AS n WHERE n.number = r.number AND n.decided_at <= :now"
            "   AND (n.decided_at > r.decided_at OR (n.decided_at = r.decided_at AND n.id > r.id)))"
            " ORDER BY r.decided_at DESC, r.id DESC",
            {"now": at},
        )
        return [r for r in map(restriction_from_row, rows) if r.is_active(now)]

    async def restriction_audit(self, number: str | None = None) -> list[dict]:
        """Every add and lift, oldest first."""
        sql = "SELECT id, action, restriction_id, number, operator, reason, at, days, until FROM restriction_audit"
        params: tuple = ()
        if number is not None:
            sql += " WHERE number = ?"
            params = (normalise_strict(number),)
        rows = await self._db.execute_fetchall(sql + " ORDER BY id", params)
        return [{**dict(row), "at": from_ts(row["at"]), "until": from_ts(row["until"])} for row in rows]

