"""Shared pieces of the sync tests: sites (a store and a desk), an in-process transport to a backend,
and the checks that every side holds every ticket and event exactly once."""

from __future__ import annotations

import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from opconsole.config import Config
from opconsole.server.db import Database
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

    def changes(self, since: int, limit: int, wait: float, client_id: str,
                since_event: str | None = None) -> dict[str, Any]:
        try:
            page = self.backend.changes(self.user, since, limit, client_id, since_event)
        except ServerGone as exc:
            raise Gone(str(exc)) from None
        return {"changes": [json.loads(entry) for entry in page.changes], "cursor": page.cursor,
                "cursor_event": page.cursor_event,
                "has_more": page.has_more, "client_last_seq": page.client_last_seq}


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


class ServerProcess:
    """`opconsole serve` on a free loopback port, as a real process that tests can kill and restart."""

    def __init__(self, db_url: str, log: Path):
        self.db_url = db_url
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "opconsole", "serve", "--db", self.db_url, "--port", str(self.port),
                 "--rate", "100000"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not answer /healthz within 30 s")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as when the machine dies."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backend_for(db_url: str, config: Config) -> Backend:
    db = Database.open(db_url)
    db.create_schema()
    return Backend(db, config)


def day_of_traffic(desk: Desk, count: int, clock: Any) -> None:
    """`count` calls registered in one working day, each followed by what operators do with it."""
    rng = random.Random(count)
    with desk.store.write():
        for number in range(count):
            clock.advance(seconds=9)
            ticket = desk.register(subject=f"Call {number}: VPN drops every hour", category="vpn.drops",
                                   phone=f"+7916{1_000_000 + rng.randrange(400):07d}")
            roll = rng.random()
            if roll < 0.8:
                desk.take(ticket.key)
            if roll < 0.6:
                desk.resolve(ticket.key, "instructions", note="reinstalled the VPN client")
            elif roll < 0.7:
                desk.note(ticket.key, "the caller will call back after lunch")


def assert_exactly_once(backend: Backend, *stores: Store) -> None:
    """Every ticket and event exists exactly once on every side, the same everywhere, and every
    operation of each store has a recorded outcome."""
    server_tickets, server_events = server_state(backend)
    for store in stores:
        tickets, events = local_state(store)
        assert tickets == server_tickets
        assert events == server_events
        waiting = store.conn.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0]
        unknown = store.conn.execute("SELECT count(*) FROM events WHERE entity != 'operator' AND outcome IS NULL"
                                     ).fetchone()[0]
        assert (waiting, unknown) == (0, 0)
