"""Versioned schema migrations of the local store.

MIGRATIONS[n - 1] takes a store from schema version n - 1 to n. Migrations are append-only: never
edit one that has shipped, add the next. Each runs inside the store's BEGIN IMMEDIATE transaction.
"""

OPEN_STATUS_SQL = "status IN ('new', 'in_progress', 'waiting_on_caller', 'escalated')"
RUNNING_STATUS_SQL = "status IN ('new', 'in_progress', 'escalated')"  # open, and the SLA clock not paused


def queue_index(*, by_operator: bool = False, by_group: bool = False) -> str:
    """The partial index that lists open tickets in SLA order for a filter. Queries name it (INDEXED BY):
    without statistics the planner may pick tickets_status and sort."""
    return "tickets_queue_operator" if by_operator else "tickets_queue_group" if by_group else "tickets_queue"

MIGRATIONS: list[str] = [
    # 1: tickets, contacts, operators, the event log, and the guards that tie changes to events
    f"""
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE operators (
        login TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('operator', 'lead', 'admin')),
        groups TEXT NOT NULL DEFAULT '[]',
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        entity TEXT NOT NULL CHECK (entity IN ('ticket', 'contact', 'operator')),
        entity_id TEXT NOT NULL,
        version INTEGER,
        op TEXT NOT NULL,
        changes TEXT NOT NULL,
        note TEXT
    );
    CREATE INDEX events_entity ON events (entity_id, seq);
    CREATE UNIQUE INDEX events_entity_version ON events (entity_id, version) WHERE version IS NOT NULL;
    CREATE INDEX events_at ON events (at);
    CREATE TABLE contacts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        email TEXT,
        organisation TEXT,
        site TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE contact_phones (
        phone TEXT PRIMARY KEY,
        contact_id TEXT NOT NULL REFERENCES contacts (id),
        position INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX contact_phones_contact ON contact_phones (contact_id);
    CREATE TABLE tickets (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        contact_id TEXT REFERENCES contacts (id),
        subject TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        category TEXT,
        impact TEXT NOT NULL,
        urgency TEXT NOT NULL,
        priority TEXT NOT NULL,
        status TEXT NOT NULL,
        group_id TEXT NOT NULL,
        operator TEXT,
        created_at TEXT NOT NULL,
        response_due TEXT NOT NULL,
        resolution_due TEXT NOT NULL,
        sla_due TEXT NOT NULL,
        first_response_at TEXT,
        resolved_at TEXT,
        closed_at TEXT,
        waiting_since TEXT,
        paused_seconds INTEGER NOT NULL DEFAULT 0,
        resolution_code TEXT,
        resolution_note TEXT,
        first_contact_resolution INTEGER,
        reopen_count INTEGER NOT NULL DEFAULT 0,
        escalation_count INTEGER NOT NULL DEFAULT 0,
        wait_count INTEGER NOT NULL DEFAULT 0,
        fields TEXT NOT NULL DEFAULT '{{}}',
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX tickets_queue ON tickets (sla_due, key) WHERE {OPEN_STATUS_SQL};
    CREATE INDEX tickets_queue_group ON tickets (group_id, sla_due, key) WHERE {OPEN_STATUS_SQL};
    CREATE INDEX tickets_queue_operator ON tickets (operator, sla_due, key) WHERE {OPEN_STATUS_SQL};
    CREATE INDEX tickets_status ON tickets (status, created_at);
    CREATE INDEX tickets_contact ON tickets (contact_id, created_at);
    CREATE INDEX tickets_created ON tickets (created_at);
    CREATE TABLE ticket_links (
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        other_id TEXT NOT NULL REFERENCES tickets (id),
        kind TEXT NOT NULL DEFAULT 'related',
        created_at TEXT NOT NULL,
        PRIMARY KEY (ticket_id, other_id)
    );

    -- No ticket or contact changes without the event that describes it: the event carrying the
    -- new version must already be written in the same transaction.
    CREATE TRIGGER tickets_insert_needs_event BEFORE INSERT ON tickets
    WHEN NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
    BEGIN SELECT RAISE(ABORT, 'ticket change without its event'); END;
    CREATE TRIGGER tickets_update_needs_event BEFORE UPDATE ON tickets
    WHEN NEW.version != OLD.version + 1
      OR NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
    BEGIN SELECT RAISE(ABORT, 'ticket change without its event'); END;
    CREATE TRIGGER tickets_never_deleted BEFORE DELETE ON tickets
    BEGIN SELECT RAISE(ABORT, 'tickets are never deleted'); END;
    CREATE TRIGGER contacts_insert_needs_event BEFORE INSERT ON contacts
    WHEN NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
    BEGIN SELECT RAISE(ABORT, 'contact change without its event'); END;
    CREATE TRIGGER contacts_update_needs_event BEFORE UPDATE ON contacts
    WHEN NEW.version != OLD.version + 1
      OR NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
    BEGIN SELECT RAISE(ABORT, 'contact change without its event'); END;
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
    """,
    # 2: call-script runs, and the exact text of every script version a run used
    """
    CREATE TABLE script_versions (
        id INTEGER PRIMARY KEY,
        script_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        title TEXT NOT NULL,
        path TEXT NOT NULL,
        source TEXT NOT NULL,
        first_used_at TEXT NOT NULL,
        UNIQUE (script_id, version, sha256)
    );
    CREATE TABLE script_runs (
        id TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        script_id TEXT NOT NULL,
        script_version INTEGER NOT NULL REFERENCES script_versions (id),
        operator TEXT NOT NULL,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'finished', 'abandoned')),
        step TEXT NOT NULL,
        answers TEXT NOT NULL DEFAULT '[]',
        carried TEXT NOT NULL DEFAULT '{}',
        outcome TEXT CHECK (outcome IN ('resolve', 'escalate', 'continue'))
    );
    CREATE INDEX script_runs_ticket ON script_runs (ticket_id, state);
    CREATE INDEX script_runs_script ON script_runs (script_id, state, step);
    """,
    # 3: the knowledge base (articles, their stemmed full-text index) and what operators do with it
    """
    CREATE TABLE kb_articles (
        num INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        title TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        categories TEXT NOT NULL DEFAULT '[]',
        language TEXT NOT NULL,
        updated TEXT,
        owner TEXT,
        scripts TEXT NOT NULL DEFAULT '[]',
        body TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        imported_at TEXT NOT NULL,
        retired_at TEXT
    );
    CREATE INDEX kb_articles_path ON kb_articles (path);
    CREATE VIRTUAL TABLE kb_fts USING fts5(title, tags, body, tokenize = 'unicode61 remove_diacritics 2');
    CREATE TABLE kb_searches (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        operator TEXT NOT NULL,
        query TEXT NOT NULL,
        results INTEGER NOT NULL,
        ticket_id TEXT,
        opened TEXT
    );
    CREATE INDEX kb_searches_gaps ON kb_searches (opened, results);
    CREATE TABLE kb_feedback (
        id INTEGER PRIMARY KEY,
        article_id TEXT NOT NULL,
        ticket_id TEXT REFERENCES tickets (id),
        operator TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('attached', 'helped', 'not_helped'))
    );
    CREATE INDEX kb_feedback_article ON kb_feedback (article_id, kind);
    """,
    # 4: sync. The outbox holds every local change as an operation for the server, numbered without
    # gaps; events learn their outcome on the server; rows the server sent carry the change-log
    # cursor they came with, and that cursor (a server change already in the event log) is what
    # lets sync write them without a local event of their own.
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        op_id TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL UNIQUE REFERENCES events (id),
        entity_id TEXT NOT NULL,
        name TEXT NOT NULL,
        args TEXT NOT NULL,
        base TEXT NOT NULL,
        acked_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (entity_id) WHERE acked_at IS NULL;
    CREATE INDEX outbox_unacked ON outbox (seq) WHERE acked_at IS NULL;
    CREATE TABLE sync_held (
        entity_id TEXT PRIMARY KEY,
        entity TEXT NOT NULL,
        cursor INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    ALTER TABLE events ADD COLUMN outcome TEXT;
    ALTER TABLE events ADD COLUMN outcome_detail TEXT;
    CREATE INDEX events_lost ON events (entity_id) WHERE outcome IN ('conflict', 'rejected');
    ALTER TABLE tickets ADD COLUMN synced_cursor INTEGER;
    ALTER TABLE contacts ADD COLUMN synced_cursor INTEGER;

    DROP TRIGGER tickets_insert_needs_event;
    CREATE TRIGGER tickets_insert_needs_event BEFORE INSERT ON tickets
    WHEN NEW.synced_cursor IS NULL
     AND NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
    BEGIN SELECT RAISE(ABORT, 'ticket change without its event'); END;
    DROP TRIGGER tickets_update_needs_event;
    CREATE TRIGGER tickets_update_needs_event BEFORE UPDATE ON tickets
    WHEN NEW.version != OLD.version + 1
      OR (NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
          AND NOT coalesce(NEW.synced_cursor > coalesce(OLD.synced_cursor, 0), 0))
    BEGIN SELECT RAISE(ABORT, 'ticket change without its event'); END;
    DROP TRIGGER contacts_insert_needs_event;
    CREATE TRIGGER contacts_insert_needs_event BEFORE INSERT ON contacts
    WHEN NEW.synced_cursor IS NULL
     AND NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
    BEGIN SELECT RAISE(ABORT, 'contact change without its event'); END;
    DROP TRIGGER contacts_update_needs_event;
    CREATE TRIGGER contacts_update_needs_event BEFORE UPDATE ON contacts
    WHEN NEW.version != OLD.version + 1
      OR (NOT EXISTS (SELECT 1 FROM events WHERE entity_id = NEW.id AND version = NEW.version)
          AND NOT coalesce(NEW.synced_cursor > coalesce(OLD.synced_cursor, 0), 0))
    BEGIN SELECT RAISE(ABORT, 'contact change without its event'); END;
    DROP TRIGGER events_append_only_update;
    CREATE TRIGGER events_append_only_update
    BEFORE UPDATE OF seq, id, at, actor, entity, entity_id, version, op, changes, note ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
    """,
    # 5: the shift lead's board. Every query of a refresh walks one of these instead of the tickets:
    # open tickets by group, status, priority and operator (covering); tickets whose SLA clock runs,
    # by due; unassigned tickets by age; and every ticket by its response and resolution dues, which
    # decide the tickets a shift's SLA compliance counts.
    f"""
    CREATE INDEX tickets_board ON tickets (group_id, status, priority, operator, sla_due) WHERE {OPEN_STATUS_SQL};
    CREATE INDEX tickets_running ON tickets (sla_due, key) WHERE {RUNNING_STATUS_SQL};
    CREATE INDEX tickets_unassigned ON tickets (created_at, key) WHERE {OPEN_STATUS_SQL} AND operator IS NULL;
    CREATE INDEX tickets_response_due ON tickets (response_due, id);
    CREATE INDEX tickets_resolution_due ON tickets (resolution_due, id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
