"""Sync with a real `opconsole serve` on loopback, on SQLite and on PostgreSQL.

(1) Push throughput: one site's whole outbox (100k tickets registered offline, ~1.8 operations a
    ticket: create, take, resolve) pushed in batches of 500; operations per second, wall clock.
(2) Initial pull: an empty console (a fresh store) pulls that history: every ticket and event.
(3) Live: 50 consoles (SyncLoops in 5 processes), each registering a ticket every 2 s; for every
    ticket and every other console, the time from the commit on its console to the commit of the
    pulled change on the other one.

Targets (issue 6): (2) <= 20 s for 100k tickets; (3) p95 <= 1 s. (1) is reported, no target.

    .venv/bin/python benchmarks/bench_sync.py [--tickets N] [--consoles N] [--seconds S] [--skip-postgres]

The site store is built once and kept in benchmarks/.data/. PostgreSQL is a throwaway server from
the machine's binaries (tests/postgres.py), with fsync on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common
from _common import ROOT, bench_config, data_dir, remove_store, report_latency

sys.path.insert(0, str(ROOT / "tests"))
import postgres  # noqa: E402
from sync_support import ServerProcess, backend_for  # noqa: E402

TARGET_PULL_S = 20.0
TARGET_LIVE_P95_S = 1.0


def site_store(tickets: int) -> Path:
    """A store whose outbox holds `tickets` tickets registered offline (cached by schema)."""
    from opconsole.services import Desk
    from opconsole.store import Store

    path = data_dir() / f"sync-site-{tickets}.db"
    stamp = Path(f"{path}.schema")
    if path.exists() and stamp.exists() and stamp.read_text() == _common.schema_fingerprint():
        return path
    remove_store(path)
    rng = random.Random(tickets)
    started = time.perf_counter()
    with Store.open(path, site_prefix="MSK") as store:
        desk = Desk(store, bench_config(), "op1")
        desk.ensure_first_operator()
        with store.write():
            for number in range(tickets):
                ticket = desk.register(subject=f"Call {number}: printer offline", category="printing.not_printing")
                if rng.random() < 0.5:
                    desk.take(ticket.key)
                    if rng.random() < 0.6:
                        desk.resolve(ticket.key, "instructions", note="restarted the print spooler")
    stamp.write_text(_common.schema_fingerprint())
    print(f"  built the site store: {tickets:,} tickets in {time.perf_counter() - started:.1f} s")
    return path


def fresh_store(folder: Path, name: str, prefix: str):
    from opconsole.store import Store

    return Store.open(folder / f"{name}.db", site_prefix=prefix)


def push_and_pull(kind: str, url: str, site: Path, folder: Path, pulls: int) -> dict:
    from opconsole.store import Store
    from opconsole.sync.client import HttpTransport, Report, Syncer
    from opconsole.sync.replica import Replica

    backend = backend_for(url, bench_config())
    token = backend.create_token("bench", "lead")[1]
    server = ServerProcess(url, folder / f"server-{kind}.log").start()
    try:
        copy = folder / f"site-{kind}.db"
        shutil.copy(site, copy)
        with Store.open(copy, create=False) as store:
            waiting = Replica(store).pending_count()
            started = time.perf_counter()
            report = Syncer(store, HttpTransport(server.url, token, timeout=120), batch=500).once()
            pushed_in = time.perf_counter() - started
        rate = report.pushed / pushed_in
        print(f"  [{kind}] push: {report.pushed:,} of {waiting:,} operations in {pushed_in:.1f} s = "
              f"{rate:,.0f} operations/s ({report.outcomes})")
        times = []
        for run in range(pulls):
            with fresh_store(folder, f"pull-{kind}-{run}", "SPB") as store:
                started = time.perf_counter()
                pulled = Syncer(store, HttpTransport(server.url, token, timeout=120)).once(Report())
                times.append(time.perf_counter() - started)
                count = store.count_tickets()
            print(f"  [{kind}] initial pull {run + 1}: {pulled.pulled:,} changes, {count:,} tickets "
                  f"in {times[-1]:.1f} s")
        result = report_latency(f"[{kind}] initial pull of {count:,} tickets", times, "s", target=TARGET_PULL_S,
                                target_stat="median")
        return {"push_ops_per_s": rate, "pull": result}
    finally:
        server.stop()
        backend.db.close()


# --- live: many consoles -------------------------------------------------------------------------

def console_process(index: int, count: int, folder: str, url: str, token: str, seconds: float,
                    start_at: float, results: str) -> None:
    """`count` consoles in this process: each syncs in the background and registers a ticket every 2 s.
    Records when each ticket was committed here, and when each pulled ticket landed here."""
    import opconsole.sync.replica as replica_module
    from opconsole.services import Desk
    from opconsole.store import Store
    from opconsole.sync.client import HttpTransport, SyncLoop

    seen: list[tuple[str, str, float]] = []  # (console, ticket id, time committed here)
    lock = threading.Lock()
    original = replica_module.Replica.apply_page

    def recording_apply(self, changes, *args):
        original(self, changes, *args)
        now = time.time()
        with lock:
            seen.extend((self.store.path.stem, e["entity_id"], now) for e in changes if e["event"]["op"] == "ticket.create")

    replica_module.Replica.apply_page = recording_apply
    config = bench_config()
    consoles, loops = [], []
    for n in range(count):
        prefix = f"C{index:02d}{n:02d}"[:8]
        store = Store.open(Path(folder) / f"{prefix}.db", site_prefix=prefix.replace("C", "K"))
        desk = Desk(store, config, "op1")
        desk.ensure_first_operator()
        loop = SyncLoop(store.path, lambda: HttpTransport(url, token, timeout=60), long_poll=20, poll_interval=0.02)
        loop.start()
        consoles.append(desk)
        loops.append(loop)
    committed: list[tuple[str, str, float]] = []
    time.sleep(max(0.0, start_at - time.time()))
    rng = random.Random(index)
    next_at = [time.time() + rng.uniform(0, 2) for _ in consoles]
    end = start_at + seconds
    while time.time() < end:
        n = min(range(count), key=next_at.__getitem__)
        time.sleep(max(0.0, next_at[n] - time.time()))
        ticket = consoles[n].register(subject="Printer offline", category="printing.not_printing")
        committed.append((consoles[n].store.path.stem, ticket.id, time.time()))
        next_at[n] += 2.0
    time.sleep(5)  # the last tickets travel
    for loop in loops:
        loop.close(timeout=0)
    with lock:
        Path(results).write_text(json.dumps({"committed": committed, "seen": seen}))


def live(kind: str, url: str, folder: Path, consoles: int, seconds: float, processes: int = 5) -> dict:
    backend = backend_for(url, bench_config())
    token = backend.create_token("bench", "lead")[1]
    server = ServerProcess(url, folder / f"live-{kind}.log").start()
    try:
        start_at = time.time() + 3 + consoles * 0.05
        per = [consoles // processes + (1 if i < consoles % processes else 0) for i in range(processes)]
        results = [folder / f"live-{kind}-{i}.json" for i in range(processes)]
        workers = [multiprocessing.Process(target=console_process, args=(
            i, per[i], str(folder), server.url, token, seconds, start_at, str(results[i]))) for i in range(processes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        committed, seen = {}, []
        for path in results:
            data = json.loads(path.read_text())
            committed.update({ticket: (console, at) for console, ticket, at in data["committed"]})
            seen += data["seen"]
        latencies = [at - committed[ticket][1] for console, ticket, at in seen
                     if ticket in committed and committed[ticket][0] != console]
        expected = len(committed) * (consoles - 1)
        print(f"  [{kind}] {consoles} consoles, {len(committed):,} tickets in {seconds:.0f} s; "
              f"{len(latencies):,} of {expected:,} (ticket, other console) arrivals seen")
        return report_latency(f"[{kind}] commit on one console -> committed on another", latencies, "s",
                              target=TARGET_LIVE_P95_S)
    finally:
        server.stop()
        backend.db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--pulls", type=int, default=3)
    parser.add_argument("--consoles", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    args = parser.parse_args()
    print(f"bench_sync: {_common.source_state()}, load {_common.loadavg()}")
    site = site_store(args.tickets)
    kinds = ["sqlite"] + ([] if args.skip_postgres else ["postgresql"])
    pg_folder = Path(tempfile.mkdtemp(prefix="opconsole-bench-pg-"))
    admin = postgres.start(pg_folder, fsync=True) if "postgresql" in kinds else None
    try:
        for kind in kinds:
            folder = Path(tempfile.mkdtemp(prefix=f"opconsole-bench-sync-{kind}-"))
            url = (f"sqlite:///{folder / 'server.db'}" if kind == "sqlite" else postgres.fresh_database(admin))
            push_and_pull(kind, url, site, folder, args.pulls)
            if not args.skip_live:
                url = (f"sqlite:///{folder / 'live.db'}" if kind == "sqlite" else postgres.fresh_database(admin))
                live(kind, url, folder, args.consoles, args.seconds)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if admin:
            postgres.stop(pg_folder)
        shutil.rmtree(pg_folder, ignore_errors=True)


if __name__ == "__main__":
    main()
