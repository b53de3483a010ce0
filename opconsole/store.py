"""The embedded local store: one SQLite file shared by every terminal at a site.

Rules (ARCHITECTURE.md): WAL, synchronous=FULL, a busy timeout, foreign keys, every write inside
BEGIN IMMEDIATE (migrations included), a quick_check on open where the caller can afford it, one
checkpointing process per store, backups through VACUUM INTO.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from opconsole.domain import (
    Channel, Contact, Operator, Role, Status, Ticket, format_key, from_iso, parse_key, plain, to_iso,
)
from opconsole.errors import Conflict, InvalidInput, NotFound, StoreError
from opconsole.ids import new_id
from opconsole.migrations import MIGRATIONS, OPEN_STATUS_SQL, SCHEMA_VERSION, queue_index

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)

APPLICATION_ID = 0x4F50434E  # "OPCN" in the database header marks a file as ours
BUSY_TIMEOUT_MS = 30_000
WAL_RESET_FIXED = (3, 51, 3)  # SQLite releases before this can corrupt a WAL database (see README)
TICKET_FIELDS = [f.name for f in fields(Ticket)]
TICKET_DATES = {"created_at", "response_due", "resolution_due", "sla_due", "first_response_at",
                "resolved_at", "closed_at", "waiting_since", "updated_at"}


@dataclass(frozen=True)
class Event:
    seq: int | None
    id: str
    at: str
    actor: str
    entity: str
    entity_id: str
    version: int | None
    op: str
    changes: dict[str, list[Any]]
    note: str | None
    outcome: str | None = None  # what the server did with it: applied, conflict, rejected (None: not synced)
    outcome_detail: Any = None  # {field: [server value, this event's value]} of a conflict; a rejection's reason

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "actor": self.actor, "entity": self.entity,
                "entity_id": self.entity_id, "version": self.version, "op": self.op,
                "changes": self.changes, "note": self.note, "outcome": self.outcome,
                "outcome_detail": self.outcome_detail}


def wal_reset_bug_affected(version: str = sqlite3.sqlite_version) -> bool:
    return tuple(int(part) for part in version.split(".")) < WAL_RESET_FIXED


class Store:
    """A connection to the store. Not shared between threads: open one per thread."""

    def __init__(self, path: Path, conn: sqlite3.Connection, checkpointer: int | None):
        self.path = path
        self.conn = conn
        self._checkpoint_lock = checkpointer

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over this connection, imported on first use: it costs ~25 ms of start-up."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True, quick_check: bool = False,
             site_prefix: str | None = None) -> Store:
        path = Path(path)
        if not path.exists() or path.stat().st_size == 0:
            if not create:
                raise StoreError(f"no store at {path}; create one with `opconsole init`")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the store directory {path.parent}: {exc.strerror}") from None
        elif path.is_dir():
            raise StoreError(f"{path} is a directory, not an opconsole store")
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=True)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None
        try:
            version = cls._identify(path, conn)
            checkpointer = cls._configure(path, conn)
            store = cls(path, conn, checkpointer)
            if version < SCHEMA_VERSION:
                store._migrate(site_prefix)
            if quick_check:
                store.quick_check()
            return store
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _identify(path: Path, conn: sqlite3.Connection) -> int:
        """The file's schema version; refuses foreign, corrupt and newer files without writing."""
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not an opconsole store: {exc}") from None
        if app_id != APPLICATION_ID and (app_id != 0 or tables or version):
            raise StoreError(f"{path} is an SQLite database of another application, not an opconsole store")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} was written by a newer opconsole (schema {version}, this one knows {SCHEMA_VERSION}); "
                "upgrade opconsole to use it; the file was not touched"
            )
        return version

    @staticmethod
    def _configure(path: Path, conn: sqlite3.Connection) -> int | None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")  # savepoint journals and sorts stay off the disk
        if wal_reset_bug_affected():
            log.info("SQLite %s has the WAL-reset bug fixed in 3.51.3; only one process checkpoints",
                        sqlite3.sqlite_version)
        # One process per store checkpoints; the others leave the WAL to it.
        lock_fd = os.open(f"{path}-checkpoint.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock_fd
        except BlockingIOError:
            os.close(lock_fd)
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            return None

    def _migrate(self, site_prefix: str | None) -> None:
        with self.write():
            current = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number in range(current + 1, SCHEMA_VERSION + 1):
                for statement in split_sql(MIGRATIONS[number - 1]):
                    self.conn.execute(statement)
                log.info("store %s migrated to schema %d", self.path, number)
            if current == 0:
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.set_meta("client_id", new_id())
                self.set_meta("site_prefix", site_prefix or "SD")
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()
        if self._checkpoint_lock is not None:
            os.close(self._checkpoint_lock)
            self._checkpoint_lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions and checks ----------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Store]:
        """One write transaction, taken immediately so concurrent writers queue instead of failing."""
        if self.conn.in_transaction:
            with self.db.atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Store]:
        """Several reads that see one moment of the store, whatever other terminals commit meanwhile."""
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.execute("COMMIT")

    def quick_check(self) -> None:
        try:
            problems = [row[0] for row in self.conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise StoreError(f"{self.path} is damaged: {'; '.join(problems[:5])}; restore it from a backup")

    def data_version(self) -> int:
        """Changes whenever another connection commits: a cheap poll for the console."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def backup(self, target: str | os.PathLike[str]) -> Path:
        target = Path(target)
        if target.exists():
            raise StoreError(f"{target} already exists; choose a new file name for the backup")
        try:
            self.conn.execute("VACUUM INTO ?", (str(target),))
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write the backup to {target}: {exc}") from None
        with Store.open(target, create=False, quick_check=True) as copy:
            copy.close()
        return target

    # --- meta ---------------------------------------------------------------------------------

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    @property
    def site_prefix(self) -> str:
        return self.meta("site_prefix") or "SD"

    def next_number(self, counter: str) -> int:
        row = self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value", (counter,)
        ).fetchone()
        return row[0]

    def raise_counter(self, counter: str, at_least: int) -> None:
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)", (counter, at_least)
        )

    # --- events -------------------------------------------------------------------------------

    def add_event(self, event: Event) -> None:
        self.conn.execute(
            "INSERT INTO events (id, at, actor, entity, entity_id, version, op, changes, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.id, event.at, event.actor, event.entity, event.entity_id, event.version, event.op,
             json.dumps(event.changes, ensure_ascii=False), event.note),
        )

    def queue_op(self, event: Event, args: dict[str, Any], base: dict[str, Any] | None = None) -> None:
        """The outbox operation that sends `event`'s change to the server; in the event's transaction."""
        self.conn.execute(
            "INSERT INTO outbox (op_id, event_id, entity_id, name, args, base) VALUES (?, ?, ?, ?, ?, ?)",
            (new_id(), event.id, event.entity_id, event.op, json.dumps(args, ensure_ascii=False),
             json.dumps(base or {}, ensure_ascii=False)))

    def events_for(self, entity_id: str) -> list[Event]:
        rows = self.conn.execute("SELECT * FROM events WHERE entity_id = ? ORDER BY seq", (entity_id,))
        return [event_from_row(row) for row in dict_rows(rows)]

    def last_event_for(self, entity_id: str) -> Event | None:
        row = first_row(self.conn.execute(
            "SELECT * FROM events WHERE entity_id = ? ORDER BY seq DESC LIMIT 1", (entity_id,)))
        return event_from_row(row) if row else None

    # --- tickets ------------------------------------------------------------------------------

    def insert_ticket(self, ticket: Ticket, event: Event) -> None:
        self.add_event(event)
        row = ticket_to_row(ticket)
        columns = ", ".join(row)
        self.conn.execute(f"INSERT INTO tickets ({columns}) VALUES ({', '.join('?' * len(row))})",
                          list(row.values()))

    def update_ticket(self, ticket: Ticket, event: Event) -> None:
        """Write `ticket` (version already bumped) if the stored row still has the previous version."""
        self.add_event(event)
        row = ticket_to_row(ticket)
        assignments = ", ".join(f"{name} = ?" for name in row if name != "id")
        values = [value for name, value in row.items() if name != "id"]
        cursor = self.conn.execute(
            f"UPDATE tickets SET {assignments} WHERE id = ? AND version = ?",
            values + [ticket.id, ticket.version - 1],
        )
        if cursor.rowcount != 1:
            raise Conflict(f"ticket {ticket.key} was changed by someone else meanwhile; reload it")

    def ticket(self, key_or_id: str) -> Ticket:
        text = key_or_id.strip()
        try:
            text = format_key(*parse_key(text))  # "msk-42" finds MSK-000042
        except InvalidInput:
            pass  # not a key: perhaps an id
        row = first_row(self.conn.execute("SELECT * FROM tickets WHERE key = ? OR id = ?", (text, text)))
        if row is None:
            raise NotFound(f"no ticket {key_or_id!r} in this store")
        return ticket_from_row(row)

    def tickets(self, *, status: str | None = None, operator: str | None = None, group: str | None = None,
                open_only: bool = False, limit: int = 200, offset: int = 0) -> list[Ticket]:
        """Open tickets in SLA order (`open_only`), or any tickets newest first."""
        where, params = [], []
        for column, value in (("status", status), ("operator", operator), ("group_id", group)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if open_only:
            index = queue_index(by_operator=bool(operator), by_group=bool(group))
            source, order = f"tickets INDEXED BY {index}", "sla_due, key"
            where.append(OPEN_STATUS_SQL)
        else:
            source, order = "tickets", "created_at DESC, key DESC"
        sql = f"SELECT * FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order} LIMIT ? OFFSET ?"
        return [ticket_from_row(row) for row in dict_rows(self.conn.execute(sql, params + [limit, offset]))]

    def queue(self, *, group: str | None = None, operator: str | None = None, limit: int = 200,
              offset: int = 0) -> list[Ticket]:
        """Open tickets, the most urgent SLA first: the operator's main list."""
        return self.tickets(open_only=True, group=group, operator=operator, limit=limit, offset=offset)

    def count_tickets(self) -> int:
        return self.conn.execute("SELECT count(*) FROM tickets").fetchone()[0]

    def tickets_of_contact(self, contact_id: str, *, since: str) -> list[Ticket]:
        cursor = self.conn.execute(
            f"SELECT * FROM tickets WHERE contact_id = ? AND ({OPEN_STATUS_SQL} OR created_at >= ?) "
            "ORDER BY created_at DESC LIMIT 50", (contact_id, since))
        return [ticket_from_row(row) for row in dict_rows(cursor)]

    def link(self, ticket_id: str, other_id: str, kind: str, at: str) -> bool:
        """Link two tickets; False if they are already linked, in either direction."""
        linked = self.conn.execute(
            "SELECT 1 FROM ticket_links WHERE (ticket_id = ? AND other_id = ?) OR (ticket_id = ? AND other_id = ?)",
            (ticket_id, other_id, other_id, ticket_id)).fetchone()
        if linked:
            return False
        self.conn.execute("INSERT INTO ticket_links (ticket_id, other_id, kind, created_at) VALUES (?, ?, ?, ?)",
                          (ticket_id, other_id, kind, at))
        return True

    def links_of(self, ticket_id: str) -> list[dict[str, str]]:
        cursor = self.conn.execute(
            "SELECT l.kind, t.key, t.subject, t.status FROM ticket_links l JOIN tickets t ON t.id = l.other_id "
            "WHERE l.ticket_id = ? UNION ALL "
            "SELECT l.kind, t.key, t.subject, t.status FROM ticket_links l JOIN tickets t ON t.id = l.ticket_id "
            "WHERE l.other_id = ? ORDER BY 2", (ticket_id, ticket_id))
        return list(dict_rows(cursor))

    # --- contacts -----------------------------------------------------------------------------

    def some_phones(self, limit: int) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT phone FROM contact_phones LIMIT ?", (limit,))]

    def contact_by_phone(self, phone: str) -> Contact | None:
        row = self.conn.execute("SELECT contact_id FROM contact_phones WHERE phone = ?", (phone,)).fetchone()
        return self.contact(row[0]) if row else None

    def contact(self, contact_id: str) -> Contact:
        data = first_row(self.conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)))
        if data is None:
            raise NotFound(f"no contact {contact_id!r} in this store")
        phones = [r[0] for r in self.conn.execute(
            "SELECT phone FROM contact_phones WHERE contact_id = ? ORDER BY position", (contact_id,))]
        return Contact(id=data["id"], name=data["name"], phones=phones, email=data["email"],
                       organisation=data["organisation"], site=data["site"],
                       created_at=from_iso(data["created_at"]), version=data["version"])

    def insert_contact(self, contact: Contact, event: Event) -> None:
        self.add_event(event)
        at = to_iso(contact.created_at)
        self.conn.execute(
            "INSERT INTO contacts (id, name, email, organisation, site, created_at, updated_at, version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (contact.id, contact.name, contact.email, contact.organisation, contact.site, at, at, contact.version))
        for position, phone in enumerate(contact.phones):
            self.conn.execute("INSERT INTO contact_phones (phone, contact_id, position) VALUES (?, ?, ?)",
                              (phone, contact.id, position))

    # --- operators ----------------------------------------------------------------------------

    def operator(self, login: str) -> Operator:
        row = first_row(self.conn.execute("SELECT * FROM operators WHERE login = ?", (login,)))
        if row is None:
            raise NotFound(f"unknown operator {login!r}; add one with `opconsole operator add`")
        return operator_from_row(row)

    def operators(self) -> list[Operator]:
        cursor = self.conn.execute("SELECT * FROM operators ORDER BY login")
        return [operator_from_row(row) for row in dict_rows(cursor)]

    def upsert_operator(self, op: Operator, at: str) -> None:
        self.conn.execute(
            "INSERT INTO operators (login, name, role, groups, active, created_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (login) DO UPDATE SET name = excluded.name, role = excluded.role, "
            "groups = excluded.groups, active = excluded.active",
            (op.login, op.name, op.role.value, json.dumps(list(op.groups)), int(op.active), at))


class PerThread:
    """One store connection per thread, opened on first use: sqlite3 connections are bound to the
    thread that made them, and the console reads from worker threads."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    def get(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store.open(self.path, create=False)
        return store


# --- row mapping ------------------------------------------------------------------------------

def dict_rows(cursor: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row))


def first_row(cursor: sqlite3.Cursor) -> dict[str, Any] | None:
    return next(dict_rows(cursor), None)


def ticket_to_row(ticket: Ticket) -> dict[str, Any]:
    row = {name: plain(getattr(ticket, name)) for name in TICKET_FIELDS}
    row["fields"] = json.dumps(ticket.fields, ensure_ascii=False, sort_keys=True)
    fcr = ticket.first_contact_resolution
    row["first_contact_resolution"] = None if fcr is None else int(fcr)
    return row


def ticket_from_row(row: dict[str, Any]) -> Ticket:
    values = {name: row[name] for name in TICKET_FIELDS}
    for name in TICKET_DATES:
        values[name] = from_iso(values[name])
    values["channel"] = Channel(values["channel"])
    values["status"] = Status(values["status"])
    values["fields"] = json.loads(values["fields"])
    fcr = values["first_contact_resolution"]
    values["first_contact_resolution"] = None if fcr is None else bool(fcr)
    return Ticket(**values)


def operator_from_row(row: dict[str, Any]) -> Operator:
    return Operator(login=row["login"], name=row["name"], role=Role(row["role"]),
                    groups=tuple(json.loads(row["groups"])), active=bool(row["active"]))


def event_from_row(row: dict[str, Any]) -> Event:
    return Event(seq=row["seq"], id=row["id"], at=row["at"], actor=row["actor"], entity=row["entity"],
                 entity_id=row["entity_id"], version=row["version"], op=row["op"],
                 changes=json.loads(row["changes"]), note=row["note"], outcome=row["outcome"],
                 outcome_detail=json.loads(row["outcome_detail"]) if row["outcome_detail"] else None)


def split_sql(script: str) -> list[str]:
    """Statements of a migration script, keeping trigger bodies whole."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
