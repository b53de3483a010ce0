"""Registering one ticket: Desk.register on a store that already holds ~10k tickets.

Each registration is what `opconsole ticket new` does after start-up: normalise the phone number,
look up the caller (or create the contact), number the ticket, compute the SLA dues, write the event
and the ticket in one BEGIN IMMEDIATE transaction, committed with synchronous=FULL (WAL).

Target (issue): p95 <= 5 ms over 1,000 registrations.

    .venv/bin/python benchmarks/bench_register.py [--count N]

The 10k-ticket seed store is made once by importing a generated export file (_gen) and kept in
benchmarks/.data/; every run works on a fresh copy of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path

import _common
import _gen
from _common import ROOT, data_dir, remove_store

TARGET_P95_MS = 5.0
SEED_TICKETS = 10_000


def seed_store(config) -> tuple[Path, list[str]]:
    """The ~10k-ticket store (an import of a generated export file) and the phones of its callers."""
    path, counts = _gen.generated_file(SEED_TICKETS, config, seed=5)
    seed = data_dir() / "register-seed.db"
    meta_path = data_dir() / "register-seed.meta.json"
    wanted = {"generator": _gen.GENERATOR_VERSION, "tickets": SEED_TICKETS, "bytes": counts["bytes"],
              "schema": _common.schema_fingerprint()}
    phones = [phone for line in path.open(encoding="utf-8") if line.startswith('{"type":"contact"')
              for phone in json.loads(line)["phones"]]
    if seed.exists() and meta_path.exists() and json.loads(meta_path.read_text("utf-8")) == wanted:
        print(f"  reusing {seed.relative_to(ROOT)}")
        return seed, phones
    from opconsole.exchange import import_file
    from opconsole.store import Store

    print(f"  building {seed.relative_to(ROOT)} by importing {path.name} ...", flush=True)
    remove_store(seed)
    with Store.open(seed, site_prefix=_gen.PREFIX) as store:
        report = import_file(store, path)
        assert not report.problems, report.problems[:3]
    Path(f"{seed}-checkpoint.lock").unlink(missing_ok=True)
    meta_path.write_text(json.dumps(wanted), "utf-8")
    return seed, phones


def working_copy(seed: Path, name: str) -> Path:
    work = data_dir() / name
    remove_store(work)
    shutil.copyfile(seed, work)
    return work


def human_format(e164: str, rng: random.Random) -> str:
    """How an operator types a known number: +7..., 8 (9xx) ..., or with spaces and dashes."""
    digits = e164[2:]
    style = rng.random()
    if style < 0.4:
        return f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    if style < 0.7:
        return f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    return e164


def plan(rng: random.Random, phones: list[str], count: int, new_share: float) -> list[dict]:
    used = set(phones)
    subjects = [s for group in _gen.SUBJECTS.values() for s in group]
    categories = [None, None, "vpn.no_connect", "accounts.password_reset", "printing.not_printing",
                  "pos.card_terminal", "mail.mailbox_full", "network.site_down"]
    calls = []
    for _ in range(count):
        new = rng.random() < new_share
        phone = _gen.phone_number(rng, used) if new else rng.choice(phones)
        calls.append({
            "phone": human_format(phone, rng), "subject": rng.choice(subjects),
            "description": rng.choice(_gen.DESCRIPTIONS), "channel": "phone",
            "category": rng.choice(categories),
            "impact": rng.choice([None, None, "low", "medium", "high"]),
            "urgency": rng.choice([None, None, "low", "medium", "high"]),
            "contact_name": f"{rng.choice(_gen.FIRST)} {rng.choice(_gen.LAST)}" if new else None,
            "site": str(rng.randrange(1, 400)) if new else None,
            "_new": new,
        })
    return calls


def register_all(desk, calls: list[dict]) -> list[float]:
    times = []
    for call in calls:
        kwargs = {k: v for k, v in call.items() if not k.startswith("_")}
        start = time.perf_counter()
        desk.register(**kwargs)
        times.append((time.perf_counter() - start) * 1000)
    return times


def fsync_floor(n: int = 200) -> list[float]:
    """What one durable commit costs at least here: append 4 KB to a file and fsync it."""
    path = data_dir() / "fsync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    block = os.urandom(4096)
    times = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--new-share", type=float, default=0.2,
                        help="share of calls from numbers not yet in the store (a new contact is created)")
    parser.add_argument("--no-diagnose", action="store_true")
    args = parser.parse_args()

    from opconsole.services import Desk
    from opconsole.store import Store

    _common.header(f"bench_register: {args.count:,} x Desk.register on a ~{SEED_TICKETS // 1000}k-ticket store "
                   "(synchronous=FULL, WAL)")
    config = _common.bench_config()
    seed, phones = seed_store(config)
    work = working_copy(seed, "register-work.db")
    rng = random.Random(2024)
    warmup = plan(rng, phones, 20, args.new_share)
    calls = plan(rng, phones, args.count, args.new_share)
    results = []
    edges = [0.5, 1, 2, 3, 3.8, 4.5, 7.5, 8.5, 12]
    before = fsync_floor()
    s = _common.summary(before)
    print(f"  fsync probe just before (4 KB append + fsync, N={s['n']}): median {s['median']:.3f} ms, "
          f"p95 {s['p95']:.3f} ms, calls >= 3.8 ms: {sum(1 for t in before if t >= 3.8)}")
    with Store.open(work, create=False) as store:
        print(f"  store: {store.count_tickets():,} tickets, {len(phones):,} caller phones; "
              f"journal_mode={store.conn.execute('PRAGMA journal_mode').fetchone()[0]}, "
              f"synchronous={store.conn.execute('PRAGMA synchronous').fetchone()[0]} (2 = FULL), "
              f"this process checkpoints: {store._checkpoint_lock is not None}")
        desk = Desk(store, config, "op01")
        desk.operator()
        first = register_all(desk, warmup)
        print(f"  warm-up: {len(first)} registrations, first {first[0]:.2f} ms, then median "
              f"{sorted(first[1:])[len(first) // 2]:.2f} ms (not counted)")
        times = register_all(desk, calls)
        print()
        results.append(_common.report_latency(
            f"Desk.register, all calls ({100 * args.new_share:.0f}% from new numbers)", times, "ms",
            target=TARGET_P95_MS))
        _common.histogram(times, edges)
        known = [t for t, c in zip(times, calls) if not c["_new"]]
        new = [t for t, c in zip(times, calls) if c["_new"]]
        _common.report_latency("  of which: known caller (contact lookup)", known, "ms")
        _common.report_latency("  of which: new caller (contact created too)", new, "ms")
        slow = sorted(range(len(times)), key=lambda i: -times[i])[:5]
        print(f"  slowest calls (index: ms): {', '.join(f'{i}: {times[i]:.1f}' for i in slow)}")
    remove_store(work)
    after = fsync_floor()
    s = _common.summary(after)
    print(f"  fsync probe just after (N={s['n']}): median {s['median']:.3f} ms, p95 {s['p95']:.3f} ms, "
          f"calls >= 3.8 ms: {sum(1 for t in after if t >= 3.8)}")

    if not args.no_diagnose:
        print()
        print("diagnostics (not part of the figure):")
        _common.report_latency("fsync floor: 4 KB append + fsync on this disk, before and after the run "
                               "(the least one durable commit costs)", before + after, "ms")
        _common.histogram(before + after, edges)
        diagnose(config, seed, phones)
    _common.footer(results, "register")


def diagnose(config, seed: Path, phones: list[str]) -> None:
    import cProfile
    import pstats

    from opconsole.services import Desk
    from opconsole.store import Store

    n = 300
    rng = random.Random(7)
    calls = plan(rng, phones, n, 0.2)
    work = working_copy(seed, "register-diag.db")
    with Store.open(work, create=False) as store:
        desk = Desk(store, config, "op01")
        register_all(desk, calls[:10])
        timed = _common.install_timer(store, _common.classify_sql)
        start = time.perf_counter()
        register_all(desk, calls[10:])
        total = time.perf_counter() - start
        _common.uninstall_timer(store, timed)
    print(f"  statement breakdown of {n - 10} registrations ({1000 * total / (n - 10):.2f} ms each on average):")
    timed.table(total)

    # the same calls with synchronous=NORMAL set on the connection (diagnostic only): in WAL mode
    # NORMAL skips the fsync at each commit, so the difference is what durability costs per call
    work = working_copy(seed, "register-diag.db")
    with Store.open(work, create=False) as store:
        store.conn.execute("PRAGMA synchronous = NORMAL")
        desk = Desk(store, config, "op01")
        register_all(desk, calls[:10])
        normal = register_all(desk, calls[10:])
    _common.report_latency("same calls with synchronous=NORMAL (no fsync per commit; diagnostic only)", normal, "ms")
    _common.histogram(normal, [0.5, 1, 2, 3, 3.8, 4.5, 7.5, 8.5, 12])
    s = _common.summary(normal)
    print(f"    -> the code path without the fsync costs median {s['median']:.2f} ms; the rest of each FULL "
          "commit is waiting for the disk")

    work = working_copy(seed, "register-diag.db")
    with Store.open(work, create=False) as store:
        desk = Desk(store, config, "op01")
        register_all(desk, calls[:10])
        profiler = cProfile.Profile()
        profiler.enable()
        register_all(desk, calls[10:])
        profiler.disable()
    remove_store(work)
    stats = pstats.Stats(profiler)
    total_tt = sum(v[2] for v in stats.stats.values())
    print(f"  cProfile of the {n - 10} registrations, top 12 by own time (total {total_tt:.2f} s):")
    for (filename, line, func), (cc, nc, tt, ct, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]:
        where = f"{Path(filename).name}:{line}" if line else filename
        print(f"    {1000 * tt / (n - 10):6.3f} ms/call own {100 * tt / total_tt:5.1f}%  {nc:>7,} calls  {func}  ({where})")


if __name__ == "__main__":
    main()
