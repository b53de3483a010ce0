"""The backend's operations, free of HTTP: tokens and users, push and pull (SYNC.md).

Push runs in one transaction: it locks the client's row, then for each operation in seq order
answers a repeat from the stored result (`duplicate`), re-executes the next one against current
state (`opconsole.sync.ops`) and stores its outcome together with the change it made, or stops at a
gap. Every operation, whatever its outcome, appends its event to the change log once.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from opconsole.config import Config
from opconsole.domain import Contact, Operator, Role, from_iso, now_utc, to_iso
from opconsole.errors import OpconsoleError
from opconsole.ids import new_id
from opconsole.server.db import Connection, Database
from opconsole.sync import ops
from opconsole.sync.ops import APPLIED, DUPLICATE, REJECTED, User

TOKEN_PREFIX = "opc_"


class Unauthorized(OpconsoleError):
    """No token, or one that is unknown, expired or revoked (HTTP 401)."""


class Gone(OpconsoleError):
    """The cursor is beyond this server's history: it was restored from an older backup (HTTP 410)."""


@dataclass(frozen=True)
class PushResult:
    results: list[dict[str, Any]]
    last_seq: int
    gap: int | None  # the seq the server expected, when the batch skipped some


@dataclass(frozen=True)
class Page:
    changes: list[str]  # each entry as the JSON text the change log stores
    cursor: int
    cursor_event: str | None  # the event of the last change at or before `cursor`
    has_more: bool
    client_last_seq: int | None


class Backend:
    def __init__(self, db: Database, config: Config, clock: Callable[[], datetime] = now_utc):
        self.db = db
        self.config = config
        self.clock = clock

    # --- users and tokens -----------------------------------------------------------------------

    def create_token(self, login: str, role: str, groups: list[str] | None = None, days: int | None = 90,
                     name: str | None = None) -> tuple[str, str]:
        """A new token for `login` (created, or updated to `role` and `groups`): (token id, the token).
        Only its hash is kept; the token itself is shown this once."""
        role_value = Role(role) if role in Role._value2member_map_ else None
        if role_value is None:
            raise OpconsoleError(f"role {role!r} is not one of: {', '.join(r.value for r in Role)}")
        groups = groups or [self.config.first_line]
        for group in groups:
            if group not in self.config.groups:
                raise OpconsoleError(f"unknown group {group!r}; `opconsole group list` shows them")
        token_id, secret = new_id(), secrets.token_urlsafe(32)
        token = f"{TOKEN_PREFIX}{token_id}_{secret}"
        now = self.clock()
        expires = to_iso(now + timedelta(days=days)) if days else None
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO users (login, name, role, groups, active, created_at) VALUES (?, ?, ?, ?, 1, ?) "
                "ON CONFLICT (login) DO UPDATE SET role = excluded.role, groups = excluded.groups, active = 1",
                (login, name or login, role_value.value, json.dumps(groups), to_iso(now)))
            conn.execute("INSERT INTO tokens (id, login, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                         (token_id, login, token_hash(token), to_iso(now), expires))
        return token_id, token

    def revoke(self, token_id: str | None = None, login: str | None = None) -> int:
        """Revoke one token, or every token of a user; the number revoked."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND (id = ? OR login = ?)",
                (to_iso(self.clock()), token_id, login))
            return cursor.rowcount

    def tokens(self) -> list[dict[str, Any]]:
        with self.db.snapshot() as conn:
            rows = conn.execute("SELECT t.id, t.login, u.role, t.created_at, t.expires_at, t.revoked_at, "
                                "t.last_used_at FROM tokens t JOIN users u ON u.login = t.login "
                                "ORDER BY t.created_at").fetchall()
        names = ("id", "login", "role", "created_at", "expires_at", "revoked_at", "last_used_at")
        return [dict(zip(names, row)) for row in rows]

    def authenticate(self, token: str | None) -> User:
        if not token:
            raise Unauthorized("no API token; send it as 'Authorization: Bearer TOKEN'")
        with self.db.snapshot() as conn:
            row = conn.execute(
                "SELECT u.login, u.role, u.groups, u.active, t.expires_at, t.revoked_at FROM tokens t "
                "JOIN users u ON u.login = t.login WHERE t.hash = ?", (token_hash(token),)).fetchone()
        if row is None:
            raise Unauthorized("unknown API token")
        login, role, groups, active, expires_at, revoked_at = row
        if revoked_at is not None:
            raise Unauthorized(f"this API token was revoked at {revoked_at}")
        if expires_at is not None and from_iso(expires_at) <= self.clock():
            raise Unauthorized(f"this API token expired at {expires_at}")
        if not active:
            raise Unauthorized(f"user {login} is deactivated")
        return User(login, Role(role), tuple(json.loads(groups)))

    # --- push -----------------------------------------------------------------------------------

    def push(self, user: User, client_id: str, batch: list[dict[str, Any]]) -> PushResult:
        results: list[dict[str, Any]] = []
        gap = None
        with self.db.transaction() as conn:
            last_seq = self._lock_client(conn, user, client_id)
            work = PushWork(conn, batch, self._cursors(conn, sum(op["seq"] > last_seq for op in batch)))
            for op in batch:
                seq = op["seq"]
                if seq <= last_seq:
                    results.append(self._repeat(work, client_id, op))
                elif seq == last_seq + 1:
                    results.append(self._execute(work, user, client_id, op))
                    last_seq = seq
                else:
                    gap = last_seq + 1
                    break
            work.flush()
            conn.execute("UPDATE clients SET last_seq = ?, login = ? WHERE client_id = ?", (last_seq, user.login, client_id))
        return PushResult(results, last_seq, gap)

    def _lock_client(self, conn: Connection, user: User, client_id: str) -> int:
        conn.execute("INSERT INTO clients (client_id, login, last_seq, created_at) VALUES (?, ?, 0, ?) "
                     "ON CONFLICT (client_id) DO NOTHING", (client_id, user.login, to_iso(self.clock())))
        return conn.execute(self.db.lock_row("SELECT last_seq FROM clients WHERE client_id = ?"),
                            (client_id,)).fetchone()[0]

    @staticmethod
    def _cursors(conn: Connection, count: int) -> Iterator[int]:
        """`count` change-log cursors, from the counter row. Its lock is held to the commit, so pushes
        commit in cursor order and every read after this sees every earlier push."""
        last = conn.execute("UPDATE counters SET value = value + ? WHERE name = 'cursor' RETURNING value",
                            (count,)).fetchone()[0]
        return iter(range(last - count + 1, last + 1))

    @staticmethod
    def _repeat(work: PushWork, client_id: str, op: dict[str, Any]) -> dict[str, Any]:
        """The answer to an operation processed before: its stored outcome, with the record as it is now."""
        row = work.stored(client_id, op["seq"])
        if row is None or row[0] != fingerprint(op):
            return {"seq": op["seq"], "outcome": REJECTED, "cursor": None, "doc": None,
                    "detail": f"seq {op['seq']} was already used by another operation of this client"}
        stored = json.loads(row[1])
        record = work.record(op["entity_id"])
        cursor, doc = (record["cursor"], record["doc"]) if record else (None, None)
        return {**stored, "outcome": DUPLICATE, "original": stored["outcome"], "cursor": cursor, "doc": doc}

    def _execute(self, work: PushWork, user: User, client_id: str, op: dict[str, Any]) -> dict[str, Any]:
        """Re-execute one operation; its event goes into the change log with the outcome, once."""
        event = op["event"]
        cursor = next(work.cursors)
        record = work.record(op["entity_id"])
        before = record["doc"] if record else None
        if event["id"] in work.events:
            refused = ops.Outcome(REJECTED, detail=f"event {event['id']} was already pushed")
            return {**work.result(client_id, op, refused, None), "doc": None}
        if record and record["entity"] != op["entity"]:
            outcome, after = ops.Outcome(REJECTED, detail=f"{op['entity_id']} is a {record['entity']}"), None
        elif op["entity"] == "contact":
            outcome, after = self._contact(op, before)
        else:
            outcome, after = self._ticket(work, user, op, before, record["version"] if record else 0)
        doc = after or before
        doc_json = json.dumps(doc, ensure_ascii=False)
        if after is not None:
            work.save(op["entity"], op["entity_id"], after, doc_json, cursor)
        event_json = json.dumps({**event, "entity": op["entity"], "entity_id": op["entity_id"], "op": op["name"],
                                 "outcome": outcome.status, "detail": outcome.detail}, ensure_ascii=False)
        entry = (f'{{"cursor":{cursor},"entity":{json.dumps(op["entity"])},"entity_id":{json.dumps(op["entity_id"])},'
                 f'"doc":{doc_json},"event":{event_json}}}')  # built from the parts, each serialised once
        work.change(cursor, event["id"], op["entity"], op["entity_id"], audience(before, doc), entry)
        return {**work.result(client_id, op, outcome, cursor), "doc": doc}

    def _ticket(self, work: PushWork, user: User, op: dict[str, Any], before: dict[str, Any] | None,
                version: int) -> tuple[ops.Outcome, dict[str, Any] | None]:
        """The outcome of a ticket operation and the ticket's new document, if it changed."""
        current = ops.ticket_from_doc(before) if before else None
        created = op["args"].get("ticket") if op["name"] == "ticket.create" and current is None else None
        key = created.get("key") if isinstance(created, dict) else None
        if key and key in work.keys:
            detail = f"key {key} is taken by another ticket; give each site its own prefix (`opconsole init --site`)"
            return ops.Outcome(REJECTED, detail=detail), None
        contact = work.contact(current.contact_id) if current and current.contact_id else None
        outcome = ops.execute(self.config, user, op, current, contact, self._operators(work.conn, op["args"].get("to")))
        if outcome.after is None:
            return outcome, None
        outcome.after.updated_at = from_iso(op["event"]["at"])
        return outcome, ops.ticket_doc(outcome.after, version + 1)

    @staticmethod
    def _contact(op: dict[str, Any], before: dict[str, Any] | None) -> tuple[ops.Outcome, dict[str, Any] | None]:
        doc = op["args"].get("contact")
        if op["name"] != "contact.create":
            return ops.Outcome(REJECTED, detail=f"unknown contact operation {op['name']!r}"), None
        if before is not None:
            return ops.Outcome(REJECTED, detail=f"contact {op['entity_id']} already exists"), None
        if not isinstance(doc, dict) or doc.get("id") != op["entity_id"]:
            return ops.Outcome(REJECTED, detail="contact.create needs the contact with its id"), None
        return ops.Outcome(APPLIED), {**doc, "version": 1}

    @staticmethod
    def _operators(conn: Connection, login: Any) -> dict[str, Operator]:
        if not isinstance(login, str):
            return {}
        row = conn.execute("SELECT login, name, role, groups, active FROM users WHERE login = ?", (login,)).fetchone()
        if row is None:
            return {}
        return {login: Operator(row[0], row[1], Role(row[2]), tuple(json.loads(row[3])), bool(row[4]))}

    # --- pull -----------------------------------------------------------------------------------

    def latest_cursor(self) -> int:
        with self.db.snapshot() as conn:
            return conn.execute("SELECT value FROM counters WHERE name = 'cursor'").fetchone()[0]

    def changes(self, user: User, since: int, limit: int, client_id: str | None = None,
                since_event: str | None = None) -> Page:
        """The changes after cursor `since` that `user` may see. `since_event`, the `cursor_event` of the
        page that gave `since`, proves that cursor still means the same history here."""
        with self.db.snapshot() as conn:
            latest = conn.execute("SELECT value FROM counters WHERE name = 'cursor'").fetchone()[0]
            if since > latest or since_event is not None and last_event(conn, since) != since_event:
                raise Gone(f"cursor {since} is not in this server's history (latest {latest}): the server was "
                           "restored from an older backup; read the feed again from the start")
            sql, params = "SELECT cursor, entry FROM changes WHERE cursor > ?", [since]
            if user.role is Role.OPERATOR:
                patterns = [f"%|g:{g}|%" for g in user.groups] + [f"%|o:{user.login}|%"]
                sql += " AND (entity = 'contact' OR " + " OR ".join("audience LIKE ?" for _ in patterns) + ")"
                params += patterns
            rows = conn.execute(sql + " ORDER BY cursor LIMIT ?", params + [limit + 1]).fetchall()
            client_last_seq = None
            if client_id:
                row = conn.execute("SELECT last_seq FROM clients WHERE client_id = ?", (client_id,)).fetchone()
                client_last_seq = row[0] if row else 0
            has_more = len(rows) > limit
            rows = rows[:limit]
            cursor = rows[-1][0] if has_more else latest
            cursor_event = last_event(conn, cursor)
        return Page([entry for _, entry in rows], cursor, cursor_event, has_more, client_last_seq)


def last_event(conn: Connection, cursor: int) -> str | None:
    """The id of the event at `cursor`, or at the last change before it (some cursors have no change)."""
    row = conn.execute("SELECT event_id FROM changes WHERE cursor <= ? ORDER BY cursor DESC LIMIT 1",
                       (cursor,)).fetchone()
    return row[0] if row else None


class PushWork:
    """One push's unit of work: the records, keys and events it touches are read in one query each,
    kept up to date as its operations run, and its writes go to the database together at the end.
    Fewer round trips matter most on PostgreSQL."""

    def __init__(self, conn: Connection, batch: list[dict[str, Any]], cursors: Iterator[int]):
        self.conn = conn
        self.cursors = cursors
        self.records: dict[str, dict[str, Any] | None] = dict.fromkeys({op["entity_id"] for op in batch})
        for entity_id, entity, version, cursor, doc in self._select(
                "SELECT id, entity, version, cursor, doc FROM records WHERE id IN", list(self.records)):
            self.records[entity_id] = {"entity": entity, "version": version, "cursor": cursor, "doc": json.loads(doc)}
        created = [op["args"]["ticket"].get("key") for op in batch if op["name"] == "ticket.create"
                   and isinstance(op["args"].get("ticket"), dict)]
        self.keys = {row[0] for row in self._select("SELECT key FROM records WHERE key IN",
                                                    [k for k in created if isinstance(k, str)])}
        self.events = {row[0] for row in self._select("SELECT event_id FROM changes WHERE event_id IN",
                                                      [op["event"]["id"] for op in batch])}
        self.saved: dict[str, tuple] = {}
        self.changes: list[tuple] = []
        self.results: list[tuple] = []

    def _select(self, sql: str, values: list[Any]) -> list[tuple]:
        rows: list[tuple] = []
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            rows += self.conn.execute(f"{sql} ({', '.join('?' * len(chunk))})", chunk).fetchall()
        return rows

    def record(self, entity_id: str) -> dict[str, Any] | None:
        if entity_id not in self.records:  # a ticket's contact, outside the batch
            row = self.conn.execute("SELECT entity, version, cursor, doc FROM records WHERE id = ?",
                                    (entity_id,)).fetchone()
            self.records[entity_id] = (None if row is None else
                                       {"entity": row[0], "version": row[1], "cursor": row[2], "doc": json.loads(row[3])})
        return self.records[entity_id]

    def contact(self, contact_id: str) -> Contact | None:
        record = self.record(contact_id)
        if record is None or record["entity"] != "contact":
            return None
        doc = record["doc"]
        return Contact(id=doc["id"], name=doc.get("name") or "", phones=doc.get("phones") or [],
                       email=doc.get("email"), organisation=doc.get("organisation"), site=doc.get("site"))

    def save(self, entity: str, entity_id: str, doc: dict[str, Any], doc_json: str, cursor: int) -> None:
        key = doc.get("key") if entity == "ticket" else None
        self.records[entity_id] = {"entity": entity, "version": doc["version"], "cursor": cursor, "doc": doc}
        self.saved[entity_id] = (entity_id, entity, key, doc["version"], cursor, doc_json)
        if key:
            self.keys.add(key)

    def change(self, cursor: int, event_id: str, entity: str, entity_id: str, audience: str, entry: str) -> None:
        self.events.add(event_id)
        self.changes.append((cursor, event_id, entity, entity_id, audience, entry))

    def result(self, client_id: str, op: dict[str, Any], outcome: ops.Outcome, cursor: int | None) -> dict[str, Any]:
        """The outcome kept for a repeat of the operation (the record itself is read again then)."""
        result = {"seq": op["seq"], "outcome": outcome.status, "detail": outcome.detail, "cursor": cursor}
        self.results.append((client_id, op["seq"], op["op_id"], fingerprint(op), json.dumps(result, ensure_ascii=False)))
        return result

    def stored(self, client_id: str, seq: int) -> tuple[str, str] | None:
        """(fingerprint, result) of an operation processed before, in this push or an earlier one."""
        for stored_client, stored_seq, _, print_, result in self.results:
            if (stored_client, stored_seq) == (client_id, seq):
                return print_, result
        return self.conn.execute("SELECT fingerprint, result FROM ops WHERE client_id = ? AND seq = ?",
                                 (client_id, seq)).fetchone()

    def flush(self) -> None:
        executemany(self.conn, "INSERT INTO records (id, entity, key, version, cursor, doc) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET version = excluded.version, cursor = excluded.cursor, "
                    "doc = excluded.doc", list(self.saved.values()))
        executemany(self.conn, "INSERT INTO changes (cursor, event_id, entity, entity_id, audience, entry) "
                    "VALUES (?, ?, ?, ?, ?, ?)", self.changes)
        executemany(self.conn, "INSERT INTO ops (client_id, seq, op_id, fingerprint, result) VALUES (?, ?, ?, ?, ?)",
                    self.results)


def executemany(conn: Connection, sql: str, rows: list[tuple]) -> None:
    if rows:
        conn.executemany(sql, rows)


def audience(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """Who may see a ticket change: its groups and operators before and after, as `|g:GROUP|o:LOGIN|`."""
    marks = {f"g:{doc['group_id']}" for doc in (before, after) if doc and doc.get("group_id")}
    marks |= {f"o:{doc['operator']}" for doc in (before, after) if doc and doc.get("operator")}
    return "|" + "|".join(sorted(marks)) + "|"


def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so one round of SHA-256 is enough to keep them unguessable at rest."""
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(op: dict[str, Any]) -> str:
    payload = {name: op.get(name) for name in ("op_id", "name", "entity", "entity_id", "args", "base", "event")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
