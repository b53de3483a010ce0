from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from opconsole.errors import Conflict, InvalidInput, StoreError
from opconsole.migrations import MIGRATIONS, SCHEMA_VERSION
from opconsole.services import Desk
from opconsole.store import APPLICATION_ID, Store, split_sql


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def schema_of(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        objects = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        pragmas = [conn.execute(f"PRAGMA {name}").fetchone()[0]
                   for name in ("user_version", "application_id", "journal_mode")]
    return [*objects, tuple(pragmas)]


def test_new_store_follows_the_sqlite_rules(store: Store):
    pragma = lambda name: store.conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 2  # FULL
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") >= 5000
    assert pragma("application_id") == APPLICATION_ID
    assert pragma("user_version") == SCHEMA_VERSION
    assert store.site_prefix == "MSK"
    assert len(store.meta("client_id")) == 36


def build_store_at(path: Path, version: int) -> None:
    """A store as an older opconsole left it: migrations up to `version` only, with data."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for script in MIGRATIONS[:version]:
        for statement in split_sql(script):
            conn.execute(statement)
    if version:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("INSERT INTO meta VALUES ('site_prefix', 'MSK'), ('client_id', 'c')")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize("older", range(SCHEMA_VERSION))
def test_an_upgraded_store_ends_identical_to_a_fresh_one(tmp_path: Path, older: int):
    fresh, upgraded = tmp_path / "fresh.db", tmp_path / "upgraded.db"
    Store.open(fresh, site_prefix="MSK").close()
    build_store_at(upgraded, older)
    Store.open(upgraded, site_prefix="MSK").close()
    assert schema_of(upgraded) == schema_of(fresh)


def test_reopening_is_idempotent(store_path: Path):
    Store.open(store_path).close()
    before = schema_of(store_path)
    Store.open(store_path, quick_check=True).close()
    assert schema_of(store_path) == before


def test_a_newer_store_is_refused_and_untouched(store_path: Path):
    Store.open(store_path).close()
    with sqlite3.connect(store_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    digest = sha256(store_path)
    with pytest.raises(StoreError, match="newer opconsole"):
        Store.open(store_path)
    assert sha256(store_path) == digest


def test_a_foreign_database_is_refused_and_untouched(tmp_path: Path):
    foreign = tmp_path / "crm.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('x')")
    conn.close()
    digest = sha256(foreign)
    with pytest.raises(StoreError, match="another application"):
        Store.open(foreign)
    assert sha256(foreign) == digest
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_corrupt_file_is_refused_and_untouched(tmp_path: Path):
    corrupt = tmp_path / "broken.db"
    corrupt.write_bytes(b"this is not a database at all\n" * 200)
    digest = sha256(corrupt)
    with pytest.raises(StoreError, match="not an opconsole store"):
        Store.open(corrupt)
    assert sha256(corrupt) == digest


def test_quick_check_finds_a_damaged_page(desk: Desk, store: Store):
    for n in range(30):
        desk.register(phone="+79123456789", subject=f"Звонок {n}")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = store.conn.execute("PRAGMA page_size").fetchone()[0]
    root = store.conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tickets'").fetchone()[0]
    path = store.path
    store.close()
    with path.open("r+b") as raw:
        raw.seek((root - 1) * page_size)
        raw.write(b"\xff" * 64)
    with pytest.raises(StoreError, match="is damaged.*restore it from a backup"):
        Store.open(path, quick_check=True)


def test_a_missing_store_is_not_created_when_asked_not_to(tmp_path: Path):
    with pytest.raises(StoreError, match="opconsole init"):
        Store.open(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


def test_a_transaction_that_fails_midway_leaves_nothing(desk: Desk, store: Store):
    # The contact is created and a key number drawn before the category is found unknown.
    with pytest.raises(InvalidInput, match="unknown category"):
        desk.register(phone="+79123456789", subject="Не работает VPN", category="no-such-category")
    assert store.conn.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM events WHERE entity != 'operator'").fetchone()[0] == 0
    assert desk.register(phone="+79123456789", subject="Не работает VPN").key == "MSK-000001"


def test_write_rolls_back_on_any_error(store: Store):
    with pytest.raises(RuntimeError):
        with store.write():
            store.set_meta("half", "written")
            raise RuntimeError("power cut")
    assert store.meta("half") is None


def test_a_ticket_cannot_change_without_its_event(desk: Desk, store: Store):
    ticket = desk.register(phone="+79123456789", subject="Принтер")
    with pytest.raises(sqlite3.IntegrityError, match="without its event"):
        store.conn.execute("UPDATE tickets SET subject = 'x', version = version + 1 WHERE id = ?", (ticket.id,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM events")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        store.conn.execute("DELETE FROM tickets")


def test_stale_copies_conflict_instead_of_overwriting(store_path: Path, config, clock):
    first = Desk(Store.open(store_path, site_prefix="MSK"), config, "op1", clock)
    first.ensure_first_operator()
    second = Desk(Store.open(store_path), config, "op1", clock)
    ticket = first.register(phone="+79123456789", subject="Нет доступа к папке")
    seen_by_second = second.ticket(ticket.key)
    first.classify(ticket.key, category="file_access", expected_version=ticket.version)
    with pytest.raises(Conflict, match=f"{ticket.key} was changed by op1"):
        second.classify(ticket.key, category="mail", expected_version=seen_by_second.version)
    assert second.ticket(ticket.key).category == "file_access"
    first.store.close()
    second.store.close()


def test_other_connections_commits_are_visible_through_data_version(store_path: Path, config, clock):
    watcher = Store.open(store_path, site_prefix="MSK")
    writer = Desk(Store.open(store_path), config, "op1", clock)
    writer.ensure_first_operator()
    before = watcher.data_version()
    writer.register(phone="+79123456789", subject="Касса не печатает чек")
    assert watcher.data_version() != before
    watcher.close()
    writer.store.close()


def test_backup_is_a_consistent_store_and_never_overwrites(desk: Desk, store: Store, tmp_path: Path):
    desk.register(phone="+79123456789", subject="Outlook просит пароль")
    target = store.backup(tmp_path / "copy.db")
    with Store.open(target, create=False, quick_check=True) as copy:
        assert [t.key for t in copy.tickets(open_only=True)] == ["MSK-000001"]
    with pytest.raises(StoreError, match="already exists"):
        store.backup(target)


@pytest.mark.parametrize(("filters", "index"), [({}, "tickets_queue"), ({"group": "network"}, "tickets_queue_group"),
                                               ({"operator": "op1"}, "tickets_queue_operator")])
def test_the_queue_query_walks_an_index_in_due_order(store: Store, filters: dict, index: str):
    plans = []
    store.conn.set_trace_callback(lambda sql: plans.append(sql) if sql.startswith("SELECT") else None)
    store.queue(**filters)
    store.conn.set_trace_callback(None)
    plan = " | ".join(row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {plans[-1]}"))
    assert f"USING INDEX {index}" in plan
    assert "TEMP B-TREE" not in plan


def register_many(path: str, worker: int, count: int) -> None:
    from opconsole.config import load_config

    with Store.open(path) as store:
        desk = Desk(store, load_config(None), "op1")
        for n in range(count):
            # Workers share callers, so contact creation races too.
            desk.register(phone=f"+7912{(n % 40):07d}", subject=f"worker {worker} call {n}")


@pytest.mark.slow
def test_four_processes_writing_at_once_lose_nothing(store: Store, desk: Desk):
    path = str(store.path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=register_many, args=(path, w, 250)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=300)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    count = lambda sql: store.conn.execute(sql).fetchone()[0]  # noqa: E731
    assert count("SELECT count(*) FROM tickets") == 1000
    assert count("SELECT count(DISTINCT key) FROM tickets") == 1000
    assert count("SELECT max(key) FROM tickets") == "MSK-001000"
    assert count("SELECT count(*) FROM events WHERE op = 'ticket.create'") == 1000
    assert count("SELECT count(*) FROM tickets t WHERE NOT EXISTS "
                 "(SELECT 1 FROM events e WHERE e.entity_id = t.id AND e.version = t.version)") == 0
    assert count("SELECT count(*) FROM contacts") == 40
    assert count("SELECT count(*) FROM events WHERE op = 'contact.create'") == 40
