"""Nothing lost, nothing doubled: consoles syncing with a real `opconsole serve` on loopback, on SQLite
and on PostgreSQL, through a killed server, a dropped connection, a repeated push, concurrent edits,
a restart and a revoked token."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sync_support import ServerProcess, assert_exactly_once, backend_for, day_of_traffic, server_state

from opconsole.sync.client import HttpTransport, Offline, Report, SyncError, SyncLoop, status

pytestmark = pytest.mark.slow


@pytest.fixture
def server(server_db_url, tmp_path):
    process = ServerProcess(server_db_url, tmp_path / "server.log").start()
    yield process
    process.stop()


@pytest.fixture
def token(backend):
    return backend.create_token("op1", "lead")[1]


def http(server, token, **kwargs):
    return HttpTransport(server.url, token, **kwargs)


def test_a_day_offline_then_sync(server, backend, token, sites, clock):
    msk, spb = sites
    day_of_traffic(msk.desk, 3000, clock)
    waiting = status(msk.store).waiting
    report = msk.syncer(http(server, token)).once()
    assert report.pushed == waiting
    assert report.outcomes == {"applied": waiting}
    spb.syncer(http(server, token)).once()
    assert spb.store.count_tickets() == 3000
    assert_exactly_once(backend, msk.store, spb.store)


class KillDuringPush(HttpTransport):
    """Kills the server while the n-th push is on the wire."""

    def __init__(self, *args, server, at_push: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.server, self.at_push, self.pushes = server, at_push, 0

    def push(self, client_id, ops):
        self.pushes += 1
        if self.pushes == self.at_push:
            threading.Timer(0.005, self.server.kill).start()
        return super().push(client_id, ops)


def test_the_server_killed_during_a_push(server, backend, token, sites, clock):
    msk, spb = sites
    day_of_traffic(msk.desk, 400, clock)
    dying = KillDuringPush(server.url, token, server=server, at_push=2)
    with pytest.raises(Offline):
        msk.syncer(dying, batch=100).once()
    assert status(msk.store).waiting > 0
    server.start()
    msk.syncer(http(server, token), batch=100).once()
    spb.syncer(http(server, token)).once()
    assert_exactly_once(backend, msk.store, spb.store)


class CuttingProxy:
    """A TCP proxy to the server that drops the connection once, after `cut_after` bytes of a response."""

    def __init__(self, target_port: int, cut_after: int):
        self.target_port, self.cut_after, self.cut = target_port, cut_after, False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, response: bool) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if response and not self.cut and sent + len(data) > self.cut_after:
                    self.cut = True
                    sink.sendall(data[: self.cut_after - sent])
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_the_connection_drops_during_a_pull(server, backend, token, sites, clock):
    msk, spb = sites
    day_of_traffic(msk.desk, 300, clock)
    msk.syncer(http(server, token)).once()
    proxy = CuttingProxy(server.port, cut_after=50_000)
    try:
        with pytest.raises(Offline):
            spb.syncer(HttpTransport(f"http://127.0.0.1:{proxy.port}", token)).once()
        assert proxy.cut
        spb.syncer(HttpTransport(f"http://127.0.0.1:{proxy.port}", token)).once()
    finally:
        proxy.close()
    assert_exactly_once(backend, msk.store, spb.store)


def test_the_same_push_delivered_twice(server, backend, token, sites, clock):
    msk, spb = sites
    day_of_traffic(msk.desk, 50, clock)
    syncer = msk.syncer(http(server, token))
    ops = syncer.replica.pending(500)
    first = syncer.transport.push(syncer.client_id, ops)
    second = syncer.transport.push(syncer.client_id, ops)
    assert {r["outcome"] for r in first["results"]} == {"applied"}
    assert {r["outcome"] for r in second["results"]} == {"duplicate"}
    final = {op["entity_id"]: result for op, result in zip(ops, first["results"])}
    for op, repeat in zip(ops, second["results"]):  # a repeat answers with the record as it is now
        assert repeat["doc"] == final[op["entity_id"]]["doc"]
        assert repeat["cursor"] <= final[op["entity_id"]]["cursor"]
    syncer.replica.record_results(second["results"])
    msk.syncer(http(server, token)).once()
    spb.syncer(http(server, token)).once()
    assert_exactly_once(backend, msk.store, spb.store)


def test_two_sites_edit_the_same_field(server, backend, token, sites):
    msk, spb = sites
    ticket = msk.desk.register(subject="Printer jams on every page", category="printing.paper_jam")
    for site in (msk, spb):
        site.syncer(http(server, token)).once()
    msk.desk.classify(ticket.key, urgency="high")
    spb.desk.classify(ticket.key, urgency="low")
    assert msk.syncer(http(server, token)).once().outcomes == {"applied": 1}
    assert spb.syncer(http(server, token)).once().outcomes == {"conflict": 1}
    msk.syncer(http(server, token)).once()
    for site in sites:
        assert site.store.ticket(ticket.key).urgency == "high"
        lost = site.store.conn.execute(
            "SELECT outcome_detail FROM events WHERE outcome = 'conflict'").fetchone()[0]
        assert lost == '{"urgency": ["high", "low"]}'  # the losing value, kept and shown on both sides
    assert_exactly_once(backend, msk.store, spb.store)


def test_the_server_restarts_from_its_database(server, backend, token, sites, clock):
    msk, spb = sites
    day_of_traffic(msk.desk, 100, clock)
    msk.syncer(http(server, token)).once()
    before = server_state(backend)
    cursor = backend.latest_cursor()
    server.stop()
    day_of_traffic(spb.desk, 100, clock)  # spb works on while the server is down
    with pytest.raises(Offline):
        spb.syncer(http(server, token)).once()
    server.start()
    assert server_state(backend) == before and backend.latest_cursor() == cursor
    for site in (spb, msk):
        site.syncer(http(server, token)).once()
    assert_exactly_once(backend, msk.store, spb.store)


def test_a_token_revoked_during_sync(server, backend, token, sites, tmp_path, clock):
    msk, spb = sites
    loop = SyncLoop(msk.store.path, lambda: http(server, token), long_poll=0.5, poll_interval=0.02)
    loop.start()
    try:
        day_of_traffic(msk.desk, 20, clock)
        until(lambda: status(msk.store).waiting == 0)
        revoke = subprocess.run([sys.executable, "-m", "opconsole", "server", "token", "revoke", "--db",
                                 server.db_url, "--user", "op1"], capture_output=True, text=True)
        assert revoke.returncode == 0, revoke.stderr
        day_of_traffic(msk.desk, 5, clock)
        until(lambda: "revoked" in (loop.error or ""))
        until(lambda: status(msk.store).state == "offline")
        assert "revoked" in status(msk.store).reason
        assert status(msk.store).waiting > 0  # kept, to send once someone logs in again
    finally:
        loop.close()
    with pytest.raises(SyncError, match="revoked"):
        msk.syncer(http(server, token)).once()
    fresh = backend.create_token("op1", "lead")[1]
    msk.syncer(http(server, fresh)).once()
    spb.syncer(http(server, fresh)).once()
    assert_exactly_once(backend, msk.store, spb.store)


def test_a_change_wakes_the_other_consoles_long_poll(server, backend, token, sites):
    """The feed answers a waiting console as soon as a push commits, not when its wait runs out (30 s
    here); how fast that is, is measured in benchmarks/bench_sync.py."""
    msk, spb = sites
    loops = [SyncLoop(site.store.path, lambda: http(server, token), long_poll=30) for site in sites]
    for loop in loops:
        loop.start()
    try:
        until(lambda: status(spb.store).state == "online")
        ticket = msk.desk.register(subject="Cash register does not print receipts", category="printing.not_printing")
        until(lambda: spb.store.conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket.id,)).fetchone(),
              timeout=10)
    finally:
        for loop in loops:
            loop.close(timeout=0)


def until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_a_push_after_the_last_gets_no_report(server, token, sites):
    """The report of a sync with nothing to do is empty, not an error."""
    assert sites[0].syncer(http(server, token)).once(Report()).pushed == 0


def test_the_server_restored_from_an_older_backup(tmp_path, config, clock):
    """The server loses the last hours: each console notices (its cursor no longer names the same
    history), reads the feed again and pushes what the server lost, and all converge. Another site's
    new work after the restore reuses the lost cursors: only the event check can tell."""
    import sqlite3

    from sync_support import open_site

    db = tmp_path / "server.db"
    server = ServerProcess(f"sqlite:///{db}", tmp_path / "server.log").start()
    backend = backend_for(server.db_url, config)
    token = backend.create_token("op1", "lead")[1]
    sites = [open_site(tmp_path / f"{p}.db", p, config, clock) for p in ("MSK", "SPB", "EKB")]
    msk, spb, ekb = sites
    try:
        day_of_traffic(msk.desk, 30, clock)
        for site in sites:
            site.syncer(http(server, token)).once()
        with sqlite3.connect(db) as live, sqlite3.connect(tmp_path / "backup.db") as copy:
            live.backup(copy)
        day_of_traffic(msk.desk, 40, clock)  # pushed, then lost with the restore
        msk.syncer(http(server, token)).once()
        ekb.syncer(http(server, token)).once()  # ekb read the history that will be lost
        server.stop()
        backend.db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        (tmp_path / "backup.db").rename(db)
        server.start()
        backend = backend_for(server.db_url, config)
        day_of_traffic(spb.desk, 60, clock)  # new work that takes the lost cursors again
        spb.syncer(http(server, token)).once()
        reports = []
        for _ in range(3):
            for site in sites:
                reports.append(site.syncer(http(server, token)).once())
        assert any(report.restarted for report in reports) and any(report.requeued for report in reports)
        assert_exactly_once(backend, *(site.store for site in sites))
        assert msk.store.count_tickets() == 130
    finally:
        for site in sites:
            site.store.close()
        server.stop()
        backend.db.close()
