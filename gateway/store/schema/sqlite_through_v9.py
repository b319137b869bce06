"""The gateway store's SQLite schema, versions 1 to 9: the schema PostgreSQL's baseline restates
(`gateway.store.schema.postgres_migrations`). Applied migrations are never edited; later ones are in
`gateway.store.schema.sqlite_migrations`."""

from __future__ import annotations

THROUGH_V9: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE restrictions (
            id          INTEGER PRIMARY KEY,
            number      TEXT NOT NULL CHECK (number GLOB '+[1-9]*'),
            reason      TEXT NOT NULL,
            operator    TEXT NOT NULL,
            days        INTEGER NOT NULL CHECK (days BETWEEN 1 AND 365),
            decided_at  TEXT NOT NULL,
            until       TEXT NOT NULL CHECK (until > decided_at),
            lifted_at   TEXT,
            lifted_by   TEXT,
            lift_reason TEXT,
            CHECK ((lifted_at IS NULL) = (lifted_by IS NULL))
        );
        -- The call-entry check: latest decision for one number (rowid breaks ties on decided_at).
        CREATE INDEX restrictions_number_decided ON restrictions (number, decided_at);

        CREATE TABLE restriction_audit (
            id             INTEGER PRIMARY KEY,
            action         TEXT NOT NULL CHECK (action IN ('add', 'lift')),
            restriction_id INTEGER NOT NULL REFERENCES restrictions (id),
            number         TEXT NOT NULL,
            operator       TEXT NOT NULL,
            reason         TEXT NOT NULL,
            at             TEXT NOT NULL,
            days           INTEGER,
            until          TEXT
        );
        CREATE INDEX restriction_audit_number ON restriction_audit (number, id);
        -- Who restricted whom and why must stay provable (art. 9 measures can be contested).
        CREATE TRIGGER restriction_audit_no_update BEFORE UPDATE ON restriction_audit
        BEGIN
            SELECT RAISE(ABORT, 'restriction_audit is append-only');
        END;
        CREATE TRIGGER restriction_audit_no_delete BEFORE DELETE ON restriction_audit
        BEGIN
            SELECT RAISE(ABORT, 'restriction_audit is append-only');
        END;
        """,
    ),
    (
        2,
        """
        CREATE TABLE calls (
            call_id      TEXT PRIMARY KEY,
            number       TEXT,
            channel      TEXT,
            started_at   TEXT,
            ivr_path     TEXT NOT NULL DEFAULT '[]',
            request_type TEXT,
            emergency    TEXT,
            outcome      TEXT CHECK (outcome IS NULL OR outcome IN
                             ('blocked', 'queued', 'answered', 'abandoned', 'ivr', 'failed')),
            queued_at    TEXT,
            answered_at  TEXT,
            ended_at     TEXT,
            agent        TEXT,
            priority     INTEGER,
            ticket_query TEXT
        );
        CREATE INDEX calls_started ON calls (started_at);

        CREATE TABLE blocked_attempts (
            id             INTEGER PRIMARY KEY,
            call_id        TEXT NOT NULL,
            number         TEXT,
            restriction_id INTEGER NOT NULL REFERENCES restrictions (id),
            at             TEXT NOT NULL
        );
        CREATE INDEX blocked_attempts_number ON blocked_attempts (number, at);

        CREATE TABLE tickets (
            ticket_no  TEXT PRIMARY KEY,
            status     TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            call_id    TEXT
        );
        """,
    ),
    (
        3,
        """
        -- Ticket drafts pre-filled by the IVR and the agent (art. 10, 11). The id is read to the caller over the
        -- phone and keyed back in the IVR's progress query (art. 12): digits only, local date + daily sequence.
        CREATE TABLE ticket_drafts (
            ticket_id           TEXT PRIMARY KEY CHECK (ticket_id GLOB '[0-9]*' AND ticket_id NOT GLOB '*[^0-9]*'),
            call_id             TEXT,
            type                TEXT,
            category            TEXT,
            unit                TEXT,
            address             TEXT,
            callback_number     TEXT,
            emergency           TEXT,
            emergency_situation TEXT,
            due                 TEXT,
            summary             TEXT,
            transcript          TEXT,
            status              TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'saved')),
            agent               TEXT,
            created_at          TEXT NOT NULL,
            updated_at          TEXT NOT NULL
        );
        CREATE INDEX ticket_drafts_call ON ticket_drafts (call_id, created_at);
        CREATE INDEX ticket_drafts_callback ON ticket_drafts (callback_number, created_at);

        -- Last sequence number handed out per local (Asia/Shanghai) day.
        CREATE TABLE ticket_sequences (
            day  TEXT PRIMARY KEY,
            last INTEGER NOT NULL CHECK (last >= 1)
        );

        -- The caller history on a screen-pop looks calls up by number.
        CREATE INDEX calls_number_started ON calls (number, started_at);

        -- Durable outbox for MQTT (screen-pops): a row leaves only after the broker's PUBACK. AUTOINCREMENT so a
        -- removed seq is never handed out again: publish order is seq order across restarts.
        CREATE TABLE outbox (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id      TEXT NOT NULL UNIQUE,
            topic           TEXT NOT NULL,
            payload         TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            last_error      TEXT,
            last_attempt_at TEXT
        );

        -- Art. 9: an agent asks for a restriction, a supervisor confirms (-> restrictions + audit) or rejects it.
        CREATE TABLE pending_restrictions (
            id              INTEGER PRIMARY KEY,
            number          TEXT NOT NULL CHECK (number GLOB '+[1-9]*'),
            reason          TEXT NOT NULL,
            requested_by    TEXT NOT NULL,
            call_id         TEXT,
            requested_at    TEXT NOT NULL,
            status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
            decided_by      TEXT,
            decided_at      TEXT,
            decision_reason TEXT,
            restriction_id  INTEGER REFERENCES restrictions (id),
            CHECK ((status = 'pending') = (decided_by IS NULL)),
            CHECK ((status = 'confirmed') = (restriction_id IS NOT NULL))
        );
        CREATE INDEX pending_restrictions_status ON pending_restrictions (status, requested_at);
        CREATE INDEX pending_restrictions_number ON pending_restrictions (number, requested_at);
        """,
    ),
    (
        4,
        """
        -- Art. 14 linkage: every hand-off of a call to 110/119/120/122 or a utility, with its timings.
        -- result is checked in gateway/store/rows.py (HANDOFF_RESULTS) so a new outcome needs no migration.
        CREATE TABLE handoffs (
            id           INTEGER PRIMARY KEY,
            call_id      TEXT NOT NULL,
            ticket_id    TEXT,
            situation    TEXT,
            centre       TEXT NOT NULL,
            trigger      TEXT NOT NULL CHECK (trigger IN ('menu', 'speech', 'agent')),
            mode         TEXT NOT NULL CHECK (mode IN ('blind', 'threeway')),
            requested_at TEXT NOT NULL,
            ring_at      TEXT,
            answered_at  TEXT,
            ended_at     TEXT,
            result       TEXT,
            detail       TEXT
        );
        CREATE INDEX handoffs_call ON handoffs (call_id, requested_at);
        CREATE INDEX handoffs_requested ON handoffs (requested_at);

        -- The case data sent with a hand-off. push_id is the message id on MQTT and the Idempotency-Key on HTTP.
        CREATE TABLE pushes (
            id         INTEGER PRIMARY KEY,
            push_id    TEXT NOT NULL UNIQUE,
            handoff_id INTEGER REFERENCES handoffs (id),
            call_id    TEXT,
            centre     TEXT NOT NULL,
            adapter    TEXT NOT NULL CHECK (adapter IN ('mqtt', 'http', 'none')),
            state      TEXT NOT NULL DEFAULT 'pending'
                           CHECK (state IN ('pending', 'queued', 'sent', 'failed', 'skipped')),
            attempts   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX pushes_handoff ON pushes (handoff_id);
        CREATE INDEX pushes_call ON pushes (call_id, created_at);
        """,
    ),
    (
        5,
        """
        -- How sure the speech pre-fill was of each field: JSON {"type": {"score": 0.8, "runner_up": "help",
        -- "runner_up_score": 0.1}, ...}; the console marks low-confidence fields for the agent to check.
        ALTER TABLE ticket_drafts ADD COLUMN scores TEXT;
        """,
    ),
    (
        6,
        """
        -- Art. 20: the console names a ticket by a random public id, never by the guessable ticket number (the
        -- number stays what the caller hears and keys into the progress query).
        ALTER TABLE ticket_drafts ADD COLUMN public_id TEXT;
        UPDATE ticket_drafts SET public_id = lower(hex(randomblob(16))) WHERE public_id IS NULL;
        CREATE UNIQUE INDEX ticket_drafts_public_id ON ticket_drafts (public_id);
        CREATE TRIGGER ticket_drafts_public_id_required BEFORE INSERT ON ticket_drafts WHEN NEW.public_id IS NULL
        BEGIN
            SELECT RAISE(ABORT, 'ticket_drafts.public_id is required');
        END;

        -- Who may work on a ticket besides a supervisor: every agent who answered its call (the screen-pop on
        -- AgentConnect) and every agent it was assigned to (by a supervisor, or for a return call). Append-only.
        CREATE TABLE ticket_assignments (
            id          INTEGER PRIMARY KEY,
            ticket_id   TEXT NOT NULL REFERENCES ticket_drafts (ticket_id),
            agent       TEXT NOT NULL,
            source      TEXT NOT NULL CHECK (source IN ('answered', 'supervisor', 'return_call')),
            assigned_by TEXT,
            call_id     TEXT,
            at          TEXT NOT NULL,
            CHECK ((source = 'supervisor') = (assigned_by IS NOT NULL))
        );
        CREATE INDEX ticket_assignments_ticket ON ticket_assignments (ticket_id, agent);
        INSERT INTO ticket_assignments (ticket_id, agent, source, call_id, at)
            SELECT ticket_id, agent, 'answered', call_id, updated_at FROM ticket_drafts WHERE agent IS NOT NULL;

        -- The screen-pops sent, without their content: the console of an agent who reconnects is sent its
        -- current call's pop again, rebuilt from the store under the same message id.
        CREATE TABLE screenpops (
            id         INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL UNIQUE,
            agent      TEXT NOT NULL,
            call_id    TEXT NOT NULL,
            ticket_id  TEXT,
            reason     TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX screenpops_agent ON screenpops (agent, id);

        -- Every console access to a ticket by anyone but the ticket's agent, and every refusal: who, what, when,
        -- which ticket (art. 20). No caller number. Append-only, like restriction_audit.
        CREATE TABLE ticket_access_audit (
            id        INTEGER PRIMARY KEY,
            at        TEXT NOT NULL,
            viewer    TEXT NOT NULL,
            role      TEXT NOT NULL CHECK (role IN ('agent', 'supervisor')),
            action    TEXT NOT NULL,
            ticket_id TEXT NOT NULL,
            basis     TEXT NOT NULL CHECK (basis IN ('assigned', 'supervisor', 'denied'))
        );
        CREATE INDEX ticket_access_audit_ticket ON ticket_access_audit (ticket_id, id);
        CREATE TRIGGER ticket_access_audit_no_update BEFORE UPDATE ON ticket_access_audit
        BEGIN
            SELECT RAISE(ABORT, 'ticket_access_audit is append-only');
        END;
        CREATE TRIGGER ticket_access_audit_no_delete BEFORE DELETE ON ticket_access_audit
        BEGIN
            SELECT RAISE(ABORT, 'ticket_access_audit is append-only');
        END;
        """,
    ),
    (
        7,
        """
        -- A data push the gateway stopped in the middle of stays 'pending' and is taken up again at the next start
        -- (linkage/push_resume.py): rebuilt from the hand-off, call and ticket rows, so no copy of the case is kept.
        -- resumed_at: when a start took it up.
        ALTER TABLE pushes ADD COLUMN resumed_at TEXT;
        CREATE INDEX pushes_pending ON pushes (created_at) WHERE state = 'pending';
        """,
    ),
    (
        8,
        """
        -- The units' handling of a ticket as the work-order system reports it (art. 10-13, gateway/workorder):
        -- which unit has it since when, its due date (art. 11 period, extended at most twice) and every report.
        ALTER TABLE tickets ADD COLUMN request_type TEXT;
        ALTER TABLE tickets ADD COLUMN unit TEXT;
        ALTER TABLE tickets ADD COLUMN unit_received TEXT;
        ALTER TABLE tickets ADD COLUMN due TEXT;
        ALTER TABLE tickets ADD COLUMN extensions INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE ticket_status_log (
            id        INTEGER PRIMARY KEY,
            ticket_no TEXT NOT NULL,
            status    TEXT NOT NULL,
            unit      TEXT,
            due       TEXT,
            at        TEXT NOT NULL,
            source    TEXT NOT NULL,
            reason    TEXT
        );
        CREATE INDEX ticket_status_log_ticket ON ticket_status_log (ticket_no, id);
        CREATE TRIGGER ticket_status_log_no_update BEFORE UPDATE ON ticket_status_log
        BEGIN
            SELECT RAISE(ABORT, 'ticket_status_log is append-only');
        END;
        """,
    ),
    (
        9,
        """
        -- After the call (Zhanjiang 12345 rules, art. 15; 国办发〔2019〕51号): each survey asked, its rating (1-5, or
        -- NULL: not rated), with the call and the ticket; the call-back tasks a dissatisfied rating creates.
        CREATE TABLE ratings (
            id        INTEGER PRIMARY KEY,
            kind      TEXT NOT NULL CHECK (kind IN ('intake', 'handling')),
            call_id   TEXT NOT NULL,
            ticket_id TEXT,
            number    TEXT,
            asked_at  TEXT NOT NULL,
            rating    INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
            rated_at  TEXT,
            redo      INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX ratings_number_asked ON ratings (number, asked_at);
        CREATE INDEX ratings_ticket ON ratings (ticket_id, id);
        CREATE UNIQUE INDEX ratings_call_kind ON ratings (call_id, kind);

        CREATE TABLE callback_tasks (
            id          INTEGER PRIMARY KEY,
            ticket_id   TEXT,
            call_id     TEXT NOT NULL,
            rating_id   INTEGER REFERENCES ratings (id),
            number      TEXT NOT NULL,
            reason      TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            due         TEXT NOT NULL,
            assigned_to TEXT,
            state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),
            attempts    INTEGER NOT NULL DEFAULT 0,
            outcome     TEXT,
            done_at     TEXT,
            done_by     TEXT,
            note        TEXT
        );
        CREATE INDEX callback_tasks_open ON callback_tasks (state, due);
        CREATE UNIQUE INDEX callback_tasks_rating ON callback_tasks (rating_id);
        CREATE TABLE callback_attempts (
            id       INTEGER PRIMARY KEY,
            task_id  INTEGER NOT NULL REFERENCES callback_tasks (id),
            agent    TEXT NOT NULL,
            at       TEXT NOT NULL,
            outcome  TEXT NOT NULL CHECK (outcome IN ('reached', 'no_answer', 'busy', 'failed'))
        );
        -- art. 15: a ticket is redone at most once
        CREATE TABLE ticket_redos (
            ticket_id TEXT PRIMARY KEY,
            task_id   INTEGER NOT NULL REFERENCES callback_tasks (id),
            agent     TEXT NOT NULL,
            at        TEXT NOT NULL
        );

        -- The automated return call once a ticket is done (一事一评): placed within calling hours, tried again
        -- after a failure, given up after the configured number of tries.
        CREATE TABLE return_calls (
            id           INTEGER PRIMARY KEY,
            ticket_id    TEXT NOT NULL,
            number       TEXT NOT NULL,
            state        TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'calling', 'answered', 'gave_up')),
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_at      TEXT NOT NULL,
            last_outcome TEXT,
            created_at   TEXT NOT NULL,
            updated_at   TEXT NOT NULL
        );
        CREATE INDEX return_calls_due ON return_calls (state, next_at);
        CREATE INDEX return_calls_ticket ON return_calls (ticket_id);

        -- Recordings of answered calls (art. 20): one row per call, the file as filed, its state.
        CREATE TABLE call_recordings (
            call_id     TEXT PRIMARY KEY,
            public_id   TEXT NOT NULL UNIQUE,   -- random: the console's URL never names a guessable call id
            ticket_id   TEXT,
            agent       TEXT,
            path        TEXT NOT NULL,
            format      TEXT NOT NULL,
            duration_s  REAL NOT NULL,
            size        INTEGER NOT NULL,
            sha256      TEXT NOT NULL,
            state       TEXT NOT NULL CHECK (state IN ('converted', 'original', 'purged')),
            note        TEXT,
            recorded_at TEXT NOT NULL,
            purged_at   TEXT
        );
        CREATE INDEX call_recordings_recorded ON call_recordings (recorded_at);
        CREATE TABLE recording_access_audit (
            id      INTEGER PRIMARY KEY,
            call_id TEXT NOT NULL,
            viewer  TEXT NOT NULL,
            role    TEXT NOT NULL,
            action  TEXT NOT NULL,
            allowed INTEGER NOT NULL,
            at      TEXT NOT NULL
        );
        CREATE TRIGGER recording_access_audit_no_update BEFORE UPDATE ON recording_access_audit
        BEGIN
            SELECT RAISE(ABORT, 'recording_access_audit is append-only');
        END;
        CREATE TRIGGER recording_access_audit_no_delete BEFORE DELETE ON recording_access_audit
        BEGIN
            SELECT RAISE(ABORT, 'recording_access_audit is append-only');
        END;
        """,
    ),
]
