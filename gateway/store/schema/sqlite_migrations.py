"""Versioned schema of the gateway store. Append new (version, sql) pairs; never edit an applied one.

Conventions: numbers are E.164 text; times are UTC ISO-8601 text with microseconds and "+00:00", a fixed width,
so text order is time order and indexes on them serve range queries.
"""

from __future__ import annotations

from gateway.store.schema.sqlite_through_v9 import THROUGH_V9


def check_versions(known: list[tuple[int, str]]) -> int:
    """The latest version of a migration list, after checking that its versions are unique, ascending, >= 1."""
    versions = [version for version, _ in known]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise RuntimeError(f"migration versions must be unique, ascending and >= 1: {versions}")
    return versions[-1] if versions else 0


MIGRATIONS: list[tuple[int, str]] = [
    *THROUGH_V9,
    (
        10,
        """
        -- Outbox rows are claimed by one publisher at a time (gateway/store/delivery.py, outbox_claim): with several
        -- gateways on one PostgreSQL database each screen-pop is published by one of them. The same columns here
        -- keep the two backends' schemas one.
        ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
        ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
        CREATE INDEX outbox_topic_seq ON outbox (topic, seq);
        """,
    ),
    (
        11,
        """
        -- The speech pre-fill as it was written (JSON {field: value}): the office's figure of pre-fill accuracy in
        -- use compares it with the ticket the agent saved (Zhanjiang 12345 rules, art. 5: analyse the work).
        ALTER TABLE ticket_drafts ADD COLUMN prefilled TEXT;

        -- Incident announcements (art. 18: answer scripts for incidents), played after the welcome while in force.
        -- prompt names the generated sound file; calls.announcement_id is the one a caller heard.
        CREATE TABLE announcements (
            id         INTEGER PRIMARY KEY,
            text       TEXT NOT NULL,
            prompt     TEXT NOT NULL,
            starts_at  TEXT NOT NULL,
            until      TEXT NOT NULL CHECK (until > starts_at),
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            removed_at TEXT,
            removed_by TEXT,
            CHECK ((removed_at IS NULL) = (removed_by IS NULL))
        );
        CREATE INDEX announcements_until ON announcements (until);
        ALTER TABLE calls ADD COLUMN announcement_id INTEGER;

        -- Where each incremental export (the provincial platform, art. 19) stands, so it resumes after a restart.
        CREATE TABLE export_cursors (
            name       TEXT PRIMARY KEY,
            position   TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );

        -- The office's daily figures read one day's rows by time.
        CREATE INDEX ratings_asked ON ratings (asked_at);
        CREATE INDEX ticket_drafts_created ON ticket_drafts (created_at);
        CREATE INDEX blocked_attempts_at ON blocked_attempts (at);
        CREATE INDEX callback_tasks_due ON callback_tasks (due);
        """,
    ),
]
