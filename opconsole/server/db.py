"""The server's database: SQLite for one site and tests, PostgreSQL (psycopg 3) for a central desk,
chosen by the URL. Both run the same SQL, written with `?` placeholders.

Every write goes through `transaction()`, which serialises writers on SQLite (BEGIN IMMEDIATE) and
takes row locks on PostgreSQL; the change-log cursor comes from a counter row updated inside the
writing transaction, so cursors commit in numeric order on both.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Protocol
from urllib.parse import urlsplit

from opconsole.errors import StoreError

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS server_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS users (
        login TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, groups TEXT NOT NULL,
        active INTEGER NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, login TEXT NOT NULL REFERENCES users (login), hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT, last_used_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS clients (
        client_id TEXT PRIMARY KEY, login TEXT NOT NULL, last_seq BIGINT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ops (
        client_id TEXT NOT NULL, seq BIGINT NOT NULL, op_id TEXT NOT NULL, fingerprint TEXT NOT NULL,
        result TEXT NOT NULL, PRIMARY KEY (client_id, seq))""",
    """CREATE TABLE IF NOT EXISTS records (
        id TEXT PRIMARY KEY, entity TEXT NOT NULL, key TEXT UNIQUE, version BIGINT NOT NULL,
        cursor BIGINT NOT NULL, doc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS changes (
        cursor BIGINT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, entity TEXT NOT NULL,
        entity_id TEXT NOT NULL, audience TEXT NOT NULL, entry TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS changes_entity ON changes (entity_id, cursor)",
    "INSERT INTO counters (name, value) VALUES ('cursor', 0) ON CONFLICT (name) DO NOTHING",
]


class Connection(Protocol):
    def execute(self, sql: str, params: tuple | list = ()) -> Any: ...

    def executemany(self, sql: str, rows: list) -> Any: ...


class Database:
    """A server database; `transaction()` hands out a connection for one unit of work."""

    kind = ""

    @staticmethod
    def open(url: str) -> Database:
        scheme = urlsplit(url).scheme
        if scheme == "sqlite":
            return SQLiteDatabase(url)
        if scheme in ("postgresql", "postgres"):
            return PostgresDatabase(url)
        raise StoreError(f"database URL {url!r} is neither sqlite:///PATH nor postgresql://...")

    def create_schema(self) -> None:
        with self.transaction() as conn:
            for statement in SCHEMA:
                conn.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        raise NotImplementedError

    def lock_row(self, sql: str) -> str:
        """`sql` (a SELECT of one row) taking that row's lock until the transaction ends."""
        return sql

    def close(self) -> None:
        pass


class SQLiteDatabase(Database):
    kind = "sqlite"

    def __init__(self, url: str):
        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db, sqlite:////abs/path.db
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"no directory {self.path.parent} for the server database")
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only view of one moment."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")


class PostgresDatabase(Database):
    kind = "postgresql"

    def __init__(self, url: str):
        try:
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StoreError("PostgreSQL needs the server extra: pip install 'opconsole[server]'") from None
        self.pool = ConnectionPool(url, min_size=1, max_size=10, open=True,
                                   kwargs={"autocommit": False}, configure=_no_prepare)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.pool.connection() as conn:
            with conn.transaction():
                yield _Placeholders(conn)

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _Placeholders(conn)

    def lock_row(self, sql: str) -> str:
        return sql + " FOR UPDATE"

    def close(self) -> None:
        self.pool.close()


def _no_prepare(conn: Any) -> None:
    conn.prepare_threshold = None


class _Placeholders:
    """psycopg with the `?` placeholders the shared SQL uses."""

    def __init__(self, conn: Any):
        self.conn = conn

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: list) -> Any:
        with self.conn.cursor() as cursor:
            return cursor.executemany(sql.replace("?", "%s"), rows)
