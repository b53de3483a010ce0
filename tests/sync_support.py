"""Shared pieces of the sync tests: sites (a store and a desk), an in-process transport to a backend,
and the checks that every side holds every ticket and event exactly once."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opconsole.config import Config
from opconsole.server.service import Backend, Gone as ServerGone
from opconsole.services import Desk
from opconsole.store import Store
from opconsole.sync.client import Gone, Syncer
from opconsole.sync.ops import User


class InProcess:
    """The backend called directly, with a JSON round trip so nothing is shared by reference."""

    def __init__(self, backend: Backend, user: User):
        self.backend = backend
        self.user = user

    def push(self, client_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        result = self.backend.push(self.user, client_id, json.loads(json.dumps(ops)))
        return json.loads(json.dumps({"results": result.results, "last_seq": result.last_seq, "gap": result.gap}))

    def changes(self, since: int, limit: int, wait: float, client_id: str) -> dict[str, Any]:
        try:
            page = self.backend.changes(self.user, since, limit, client_id)
        except ServerGone as exc:
            raise Gone(str(exc)) from None
        return json.loads(json.dumps({"changes": page.changes, "cursor": page.cursor, "has_more": page.has_more,
                                      "client_last_seq": page.client_last_seq}))


@dataclass
class Site:
    store: Store
    desk: Desk

    def syncer(self, transport: Any, **kwargs: Any) -> Syncer:
        return Syncer(self.store, transport, **kwargs)


def open_site(path: Path, prefix: str, config: Config, clock: Any, actor: str = "op1") -> Site:
    store = Store.open(path, site_prefix=prefix)
    desk = Desk(store, config, actor, clock=clock)
    desk.ensure_first_operator()
    return Site(store, desk)


def local_state(store: Store) -> tuple[dict[str, dict], set[str]]:
    """Tickets by id (their own fields) and the ids of ticket and contact events."""
    conn = store.conn
    conn.row_factory = sqlite3.Row
    try:
        tickets = {row["id"]: comparable(dict(row)) for row in conn.execute("SELECT * FROM tickets")}
        events = [row[0] for row in conn.execute("SELECT id FROM events WHERE entity != 'operator'")]
    finally:
        conn.row_factory = None
    assert len(events) == len(set(events)), "an event is stored twice"
    return tickets, set(events)


def server_state(backend: Backend) -> tuple[dict[str, dict], set[str]]:
    with backend.db.snapshot() as conn:
        docs = [json.loads(row[0]) for row in conn.execute("SELECT doc FROM records WHERE entity = 'ticket'")]
        events = [row[0] for row in conn.execute("SELECT event_id FROM changes")]
    assert len(events) == len(set(events)), "an event is in the change log twice"
    return {doc["id"]: comparable(doc) for doc in docs}, set(events)


def comparable(ticket: dict[str, Any]) -> dict[str, Any]:
    """A ticket's own fields, whatever side it was read from (local rows hold fields as JSON text)."""
    row = {k: v for k, v in ticket.items() if k not in ("version", "synced_cursor")}
    if isinstance(row.get("fields"), str):
        row["fields"] = json.loads(row["fields"])
    if isinstance(row.get("first_contact_resolution"), int):
        row["first_contact_resolution"] = bool(row["first_contact_resolution"])
    return row
