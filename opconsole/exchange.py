"""Export and import of a whole store as JSON lines: a lossless round trip.

One record a line, `{"type": ..., ...}`: a header, then operators, events, contacts, tickets and
links, in that order (an entity's events precede it, so the store's event guards accept it). Import
merges by stable ids: a record already present unchanged is counted and skipped, a bad or
conflicting one is reported as FILE:LINE and skipped, and everything else loads in one transaction.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from opconsole.domain import parse_key, valid_prefix
from opconsole.errors import InvalidInput
from opconsole.migrations import SCHEMA_VERSION
from opconsole.store import TICKET_DATES, TICKET_FIELDS, Store, dict_rows, ticket_from_row

FORMAT = "opconsole-export"
CANONICAL_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CONTACT_COLUMNS = ("id", "name", "email", "organisation", "site", "created_at", "updated_at", "version")
EVENT_COLUMNS = ("id", "at", "actor", "entity", "entity_id", "version", "op", "changes", "note")
OPERATOR_COLUMNS = ("login", "name", "role", "groups", "active", "created_at")
LINK_COLUMNS = ("ticket_id", "other_id", "kind", "created_at")


def export_lines(store: Store) -> Iterator[str]:
    """The store as JSON lines, read in one snapshot so the copy is consistent."""
    conn = store.conn
    conn.execute("BEGIN")
    try:
        yield dumps({"type": "header", "format": FORMAT, "schema": SCHEMA_VERSION, "site_prefix": store.site_prefix})
        for row in dict_rows(conn.execute("SELECT * FROM operators ORDER BY login")):
            yield dumps({"type": "operator", **row, "groups": json.loads(row["groups"]), "active": bool(row["active"])})
        for row in dict_rows(conn.execute("SELECT * FROM events ORDER BY seq")):
            row.pop("seq")
            yield dumps({"type": "event", **row, "changes": json.loads(row["changes"])})
        phones: dict[str, list[str]] = {}
        for phone, contact_id in conn.execute("SELECT phone, contact_id FROM contact_phones ORDER BY contact_id, position"):
            phones.setdefault(contact_id, []).append(phone)
        for row in dict_rows(conn.execute("SELECT * FROM contacts ORDER BY id")):
            yield dumps({"type": "contact", **row, "phones": phones.get(row["id"], [])})
        for row in dict_rows(conn.execute("SELECT * FROM tickets ORDER BY id")):
            yield dumps({"type": "ticket", **row, "fields": json.loads(row["fields"])})
        for row in dict_rows(conn.execute("SELECT * FROM ticket_links ORDER BY ticket_id, other_id")):
            yield dumps({"type": "link", **row})
    finally:
        conn.execute("COMMIT")


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)


class Skip(Exception):
    """This record cannot be loaded; the message says why."""


def import_file(store: Store, path: Path) -> ImportReport:
    report = ImportReport()
    loaders: dict[str, Callable[[Store, dict[str, Any]], bool]] = {
        "operator": load_operator, "event": load_event, "contact": load_contact,
        "ticket": load_ticket, "link": load_link,
    }
    highest: dict[str, int] = {}
    with store.write(), path.open("rb") as lines:
        adopt_prefix = store.count_tickets() == 0
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            record: dict[str, Any] = {}
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise Skip("a record must be a JSON object")
                kind = record.get("type")
                if kind == "header":
                    check_header(record)
                    if adopt_prefix and record.get("site_prefix"):
                        store.set_meta("site_prefix", valid_prefix(record["site_prefix"]))
                    continue
                if kind not in loaders:
                    raise Skip(f"unknown record type {kind!r}")
                added = loaders[kind](store, record)
                if kind == "ticket":
                    prefix, n = parse_key(record["key"])
                    highest[prefix] = max(highest.get(prefix, 0), n)
            except UnicodeDecodeError:
                report.problems.append(f"{path}:{number}: not UTF-8 text")
                continue
            except json.JSONDecodeError as exc:
                report.problems.append(f"{path}:{number}: not valid JSON: {exc.msg}")
                continue
            except InvalidInput as exc:
                report.problems.append(f"{path}:{number}: {exc}")
                continue
            except Skip as exc:
                report.problems.append(f"{path}:{number}: {exc}")
                continue
            except (KeyError, TypeError, ValueError) as exc:
                report.problems.append(f"{path}:{number}: malformed {record.get('type')} record: {exc!r}")
                continue
            except sqlite3.IntegrityError as exc:
                report.problems.append(f"{path}:{number}: {record.get('type')} refused by the store: {exc}")
                continue
            if added:
                report.added += 1
            else:
                report.unchanged += 1
        for prefix, n in highest.items():
            store.raise_counter(f"ticket:{prefix}", n)
    return report


def check_header(record: dict[str, Any]) -> None:
    if record.get("format") != FORMAT:
        raise Skip(f"not an opconsole export (format {record.get('format')!r})")
    if not isinstance(record.get("schema"), int) or record["schema"] > SCHEMA_VERSION:
        raise Skip(f"written by a newer opconsole (schema {record.get('schema')}); upgrade to import it")


def insert_or_compare(store: Store, table: str, key: str, row: dict[str, Any], ignore: tuple[str, ...] = ()) -> bool:
    """Insert `row`; True if added, False if an equal row exists (`ignore`d columns aside), Skip if a
    different one does."""
    columns = ", ".join(row)
    cursor = store.conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))}) ON CONFLICT ({key}) DO NOTHING",
        list(row.values()))
    if cursor.rowcount == 1:
        return True
    existing = next(dict_rows(store.conn.execute(
        f"SELECT {columns} FROM {table} WHERE {key} = ?", (row[key],))))
    different = sorted(name for name in row if existing[name] != row[name] and name not in ignore)
    if different:
        raise Skip(f"{table[:-1]} {row[key]} already exists with other values ({', '.join(different)})")
    return False


def load_operator(store: Store, record: dict[str, Any]) -> bool:
    row = {name: record[name] for name in OPERATOR_COLUMNS}
    row["groups"] = json.dumps(list(row["groups"]))
    row["active"] = int(bool(row["active"]))
    return insert_or_compare(store, "operators", "login", row, ignore=("created_at",))


def load_event(store: Store, record: dict[str, Any]) -> bool:
    row = {name: record[name] for name in EVENT_COLUMNS}
    if not isinstance(row["changes"], dict):
        raise Skip("event changes must be an object")
    row["changes"] = json.dumps(row["changes"], ensure_ascii=False)
    return insert_or_compare(store, "events", "id", row)


# Every other record is one INSERT, which SQLite undoes alone when it fails; a contact and its phones
# take several, so a bad phone must take its contact back with it.
def load_contact(store: Store, record: dict[str, Any]) -> bool:
    row = {name: record[name] for name in CONTACT_COLUMNS}
    store.conn.execute("SAVEPOINT contact")
    try:
        added = insert_or_compare(store, "contacts", "id", row)
        for position, phone in enumerate(record["phones"]):
            insert_or_compare(store, "contact_phones", "phone",
                              {"phone": phone, "contact_id": row["id"], "position": position})
    except BaseException:
        store.conn.execute("ROLLBACK TO contact")
        raise
    finally:
        store.conn.execute("RELEASE contact")
    return added


def load_ticket(store: Store, record: dict[str, Any]) -> bool:
    if not isinstance(record["fields"], dict):
        raise Skip("ticket fields must be an object")
    row = {name: record[name] for name in TICKET_FIELDS}
    row["fields"] = json.dumps(record["fields"], ensure_ascii=False, sort_keys=True)
    ticket = ticket_from_row(row)  # validates every value
    parse_key(ticket.key)
    for name in TICKET_DATES:
        if row[name] is not None and not CANONICAL_INSTANT.fullmatch(row[name]):
            raise Skip(f"ticket {name} {row[name]!r} is not a UTC instant like 2026-11-27T09:30:00.000Z")
    clash = store.conn.execute("SELECT id FROM tickets WHERE key = ? AND id != ?", (ticket.key, ticket.id)).fetchone()
    if clash:
        raise Skip(f"key {ticket.key} belongs to another ticket in this store")
    return insert_or_compare(store, "tickets", "id", row)


def load_link(store: Store, record: dict[str, Any]) -> bool:
    return store.link(*(record[name] for name in LINK_COLUMNS))
