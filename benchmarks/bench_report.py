"""The period report on the 1M-ticket store: `opconsole.reports.build` for the store's last 30 days,
then each format rendered. Target (issue 7): a month's report <= 3 s.

    .venv/bin/python benchmarks/bench_report.py [--runs N]

Uses bench_queue's 1M store (built once, ~1.5-3 min, kept in benchmarks/.data/).
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import _common
from _common import bench_config, report_latency
from bench_queue import bulk_store

TARGET_S = 3.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from opconsole.domain import from_iso
    from opconsole.reports import RENDER, build
    from opconsole.store import Store

    print(f"bench_report: {_common.source_state()}, load {_common.loadavg()}")
    config = bench_config()
    path, _ = bulk_store(config, 1_000_000)
    with Store.open(path, create=False) as store:
        end = from_iso(store.conn.execute("SELECT max(created_at) FROM tickets").fetchone()[0]) + timedelta(seconds=1)
        start = end - timedelta(days=30)
        times, renders = [], {fmt: [] for fmt in RENDER}
        for _ in range(args.runs):
            started = time.perf_counter()
            report = build(store, config, start, end)
            times.append(time.perf_counter() - started)
            for fmt, render in RENDER.items():
                started = time.perf_counter()
                render(report)
                renders[fmt].append(time.perf_counter() - started)
    print(f"  30 days to {end:%Y-%m-%d}: {report.figures.kpi('escalation_rate').denominator:,.0f} tickets created")
    report_latency("build (read and compute)", times, "s", target=TARGET_S, target_stat="median")
    for fmt, values in renders.items():
        report_latency(f"render {fmt}", [v * 1000 for v in values], "ms")


if __name__ == "__main__":
    main()
