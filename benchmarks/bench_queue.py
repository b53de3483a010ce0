"""The operator's queue: Store.queue(limit=200), by group and by operator, on a 1M-ticket store.

Target (issue): p95 <= 10 ms for each query, 200 runs each.

    .venv/bin/python benchmarks/bench_queue.py [--tickets N] [--runs R]

The store (about 5% of tickets open, spread over groups and operators, SLA dues from the real
calendars) is built once with direct executemany inserts in one BEGIN IMMEDIATE (_gen.build_bulk_store)
and kept in benchmarks/.data/ (about 2 GB for 1M tickets; the first build takes a few minutes).

Each query is timed twice: through Store.queue (SQL + turning rows into Ticket objects, what the
console pays) and as the bare SQL (execute + fetchall of the same statement and parameters), and its
EXPLAIN QUERY PLAN is printed. The store never runs ANALYZE; the plans and timings are also shown with
statistics gathered inside a transaction that is rolled back, leaving the file untouched.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _common
import _gen
from _common import ROOT, data_dir, remove_store

TARGET_P95_MS = 10.0
BUILDER_VERSION = 2


def bulk_store(config, n_tickets: int) -> tuple[Path, dict]:
    path = data_dir() / f"queue-{n_tickets}.db"
    meta_path = data_dir() / f"queue-{n_tickets}.meta.json"
    wanted = {"builder": BUILDER_VERSION, "generator": _gen.GENERATOR_VERSION, "tickets": n_tickets,
              "schema": _common.schema_fingerprint()}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text("utf-8"))
        if {k: meta.get(k) for k in wanted} == wanted and meta.get("size") == path.stat().st_size:
            print(f"  reusing {path.relative_to(ROOT)} ({path.stat().st_size / 1e9:.2f} GB)")
            return path, meta
    print(f"  building {path.relative_to(ROOT)}: {n_tickets:,} tickets (once; reused by later runs) ...", flush=True)
    remove_store(path)
    meta_path.unlink(missing_ok=True)
    stats = _gen.build_bulk_store(path, n_tickets, config)
    stats.pop("phones", None)
    Path(f"{path}-checkpoint.lock").unlink(missing_ok=True)
    meta = {**wanted, **stats, "size": path.stat().st_size}
    meta_path.write_text(json.dumps(meta, indent=2), "utf-8")
    return path, meta


class Recorder:
    """Stands in for store.conn for one call to capture the exact SQL and parameters Store.queue runs."""

    def __init__(self, conn):
        self.conn = conn
        self.calls: list[tuple[str, list]] = []

    def execute(self, sql, params=()):
        self.calls.append((sql, list(params)))
        return self.conn.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def captured_sql(store, kwargs: dict) -> tuple[str, list]:
    recorder = Recorder(store.conn)
    store.conn = recorder
    try:
        store.queue(**kwargs)
    finally:
        store.conn = recorder.conn
    assert len(recorder.calls) == 1, recorder.calls
    return recorder.calls[0]


def plan_lines(conn, sql: str, params: list) -> list[str]:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return [detail for _id, _parent, _unused, detail in rows]


def judge_plan(lines: list[str]) -> str:
    text = " | ".join(lines)
    notes = []
    if any(line.startswith("SCAN tickets") and "INDEX" not in line for line in lines):
        notes.append("FULL TABLE SCAN")
    if "USE TEMP B-TREE FOR ORDER BY" in text:
        notes.append("TEMP B-TREE FOR ORDER BY (sorts every match)")
    elif "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" in text:
        notes.append("temp b-tree for the RIGHT PART of ORDER BY (the key tie-break; rows arrive in sla_due "
                     "order, only ties are sorted)")
    used = [name for name in ("tickets_queue_operator", "tickets_queue_group", "tickets_queue", "tickets_status",
                              "tickets_created") if f"INDEX {name} " in text or text.endswith(f"INDEX {name}")]
    partial = [u for u in used if u.startswith("tickets_queue")]
    notes.insert(0, f"index used: {', '.join(used) or 'none'}" + (" (partial)" if partial else ""))
    return "; ".join(notes)


def time_calls(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--build-only", action="store_true", help="build (or check) the store and stop")
    parser.add_argument("--no-analyze", action="store_true", help="skip the rolled-back ANALYZE comparison")
    args = parser.parse_args()

    from opconsole.store import Store

    _common.header(f"bench_queue: Store.queue(limit=200) on a {args.tickets:,}-ticket store, {args.runs} runs each")
    config = _common.bench_config()
    path, meta = bulk_store(config, args.tickets)
    if args.build_only:
        return
    by_group = meta["by_group"]
    by_operator = meta["by_operator"]
    busiest_op = max(by_operator, key=by_operator.get)
    second = {g: n for g, n in by_group.items() if g != config.first_line}
    small_group = min(second, key=second.get)
    quiet_op = min(by_operator, key=by_operator.get)
    print(f"  open tickets: {meta['open']:,} of {args.tickets:,} ({100 * meta['open'] / args.tickets:.1f}%); "
          f"by status {meta['by_status']}")
    print(f"  open by group: {by_group}")
    print(f"  operators with open tickets: {len(by_operator)}, {min(by_operator.values())}.."
          f"{max(by_operator.values())} each")

    queries = [
        ("queue(limit=200)", {"limit": 200}, meta["open"]),
        (f"queue(group={config.first_line!r}, limit=200)", {"group": config.first_line, "limit": 200},
         by_group[config.first_line]),
        (f"queue(group={small_group!r}, limit=200)", {"group": small_group, "limit": 200}, by_group[small_group]),
        (f"queue(operator={busiest_op!r}, limit=200)", {"operator": busiest_op, "limit": 200},
         by_operator[busiest_op]),
        (f"queue(operator={quiet_op!r}, limit=200)", {"operator": quiet_op, "limit": 200}, by_operator[quiet_op]),
    ]
    results = []
    with Store.open(path, create=False) as store:
        conn = store.conn
        stat_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_stat%'").fetchone()[0]
        print(f"  planner statistics in the store (sqlite_stat1 from ANALYZE): "
              f"{'present' if stat_tables else 'none: the store never runs ANALYZE or PRAGMA optimize'}")
        for name, definition in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets' "
                "AND name LIKE 'tickets_queue%' ORDER BY name"):
            print(f"  {definition}")
        print()
        captured = {}
        for label, kwargs, matching in queries:
            sql, params = captured_sql(store, kwargs)
            captured[label] = (sql, params)
            lines = plan_lines(conn, sql, params)
            print(f"  {label}: {matching:,} open tickets match")
            print(f"    SQL: {sql}   params {params}")
            for line in lines:
                print(f"    EXPLAIN QUERY PLAN: {line}")
            print(f"    -> {judge_plan(lines)}")
            start = time.perf_counter()
            rows = len(store.queue(**kwargs))
            print(f"    first call on this connection: {(time.perf_counter() - start) * 1000:.2f} ms (not counted)")
            for _ in range(5):  # warm the page cache for this query
                store.queue(**kwargs)
            full = time_calls(lambda: store.queue(**kwargs), args.runs)
            bare = time_calls(lambda: conn.execute(sql, params).fetchall(), args.runs)
            results.append(_common.report_latency(f"Store.queue -> {rows} Ticket objects", full, "ms",
                                                  target=TARGET_P95_MS))
            results[-1]["label"] = label
            _common.report_latency("bare SQL (execute + fetchall, same statement)", bare, "ms")
            print(f"    row -> Ticket conversion: ~{median(full) - median(bare):.2f} ms of the median "
                  f"({1000 * (median(full) - median(bare)) / max(rows, 1):.1f} us per row)")
            unhinted = strip_hint(sql)
            if unhinted != sql:
                lines = plan_lines(conn, unhinted, params)
                own = time_calls(lambda: conn.execute(unhinted, params).fetchall(), 20)
                print(f"    without the INDEXED BY hint the planner picks: {' | '.join(lines)}")
                print(f"      -> {judge_plan(lines)}; bare SQL median {median(own):.2f} ms, "
                      f"max {max(own):.2f} ms (N=20)")
            print()

        if not args.no_analyze:
            print("  with planner statistics: PRAGMA analysis_limit = 1000; ANALYZE inside BEGIN IMMEDIATE ... "
                  "ROLLBACK (the file is left as it was)")
            conn.execute("PRAGMA analysis_limit = 1000")
            conn.execute("BEGIN IMMEDIATE")
            try:
                start = time.perf_counter()
                conn.execute("ANALYZE")
                print(f"    ANALYZE took {time.perf_counter() - start:.2f} s")
                for label, kwargs, _matching in queries:
                    sql, params = captured[label]
                    lines = plan_lines(conn, sql, params)
                    store.queue(**kwargs)
                    full = time_calls(lambda: store.queue(**kwargs), max(50, args.runs // 2))
                    s = _common.summary(full)
                    print(f"    {label}: {' | '.join(lines)}")
                    print(f"      -> {judge_plan(lines)}; Store.queue median {s['median']:.2f} ms, "
                          f"p95 {s['p95']:.2f} ms (N={s['n']})")
                    unhinted = strip_hint(sql)
                    if unhinted != sql:
                        lines = plan_lines(conn, unhinted, params)
                        print(f"      without the hint: {' | '.join(lines)} -> {judge_plan(lines)}")
            finally:
                conn.execute("ROLLBACK")
    _common.footer(results, "queue")


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def strip_hint(sql: str) -> str:
    """The statement without its INDEXED BY clause: what the planner would choose on its own."""
    import re

    return re.sub(r" INDEXED BY \w+", "", sql)


if __name__ == "__main__":
    main()
