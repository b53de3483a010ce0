"""The lead view's live refresh on the 1M-ticket store. Target (issue 7): p95 <= 100 ms.

A refresh is what the lead screen's workers read after the store watcher reports a commit: the board
(`opconsole.lead.Board.read`: queues by group, operators, arrivals, backlog and the shift's KPIs) and
both ticket lists (count, the selected ticket's position, the first and the last page, as
QueueTable's reload reads them). Between refreshes an operator works the desk (registers, takes and
resolves tickets, 2 s of desk time apart), so each refresh has a change to take in.

    .venv/bin/python benchmarks/bench_lead.py [--changes N]

Runs on a copy of bench_queue's 1M store (benchmarks/.data/lead-1000000.db, deleted afterwards).
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from datetime import timedelta

import _common
from _common import bench_config, data_dir, remove_store, report_latency
from _gen import EPOCH_END
from bench_queue import bulk_store

TARGET_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--idle", type=int, default=50, help="refreshes with nothing changed, reported too")
    args = parser.parse_args()
    from opconsole import queue
    from opconsole.lead import Board
    from opconsole.services import Desk
    from opconsole.store import Store

    print(f"bench_lead: {_common.source_state()}, load {_common.loadavg()}")
    config = bench_config()
    source, _ = bulk_store(config, 1_000_000)
    copy = data_dir() / "lead-1000000.db"
    remove_store(copy)
    shutil.copyfile(source, copy)
    clock = Clock(EPOCH_END)
    lists = [queue.QueueFilter(scope) for scope in queue.LEAD_SCOPES]
    try:
        with Store.open(copy, create=False) as store:
            desk = Desk(store, config, "op01", clock)
            board = Board(config)

            def refresh() -> tuple[float, float]:
                started = time.perf_counter()
                board.read(store, clock())
                read = time.perf_counter()
                for flt in lists:
                    total = queue.count(store, flt, desk.actor, clock())
                    first = queue.page(store, flt, desk.actor, clock(), 0, 100)
                    if first:
                        queue.position_of(store, flt, desk.actor, clock(), first[len(first) // 2].key)
                    queue.page(store, flt, desk.actor, clock(), max(total - 1, 0) // 100 * 100, 100)
                return read - started, time.perf_counter() - read

            started = time.perf_counter()
            refresh()
            print(f"  first read of the shift (no facts kept yet): {(time.perf_counter() - started) * 1000:.0f} ms")
            snapshot = board.read(store, clock())
            print(f"  the desk at {clock():%Y-%m-%d %H:%M} UTC: {sum(g.open for g in snapshot.groups):,} open, "
                  f"{snapshot.breached:,} breached, {snapshot.unassigned:,} unassigned, "
                  f"{len(board.shift.facts):,} tickets in the shift's KPIs, {len(snapshot.operators)} operators")
            idle = [sum(refresh()) * 1000 for _ in range(args.idle)]
            rng = random.Random(7)
            boards, lists_ms, totals = [], [], []
            for _ in range(args.changes):
                clock.advance(2)
                work_the_desk(desk, rng)
                board_s, lists_s = refresh()
                boards.append(board_s * 1000)
                lists_ms.append(lists_s * 1000)
                totals.append((board_s + lists_s) * 1000)
            print(f"  the shift's KPIs now count {len(board.shift.facts):,} tickets")
    finally:
        remove_store(copy)
    report_latency("refresh after a change (board + both lists)", totals, "ms", target=TARGET_MS)
    report_latency("  of which the board", boards, "ms")
    report_latency("  of which the two lists", lists_ms, "ms")
    report_latency("refresh with nothing changed", idle, "ms")


def work_the_desk(desk, rng: random.Random) -> None:
    """One operator action: register a call, take the longest waiting new ticket, or resolve one in work."""
    from opconsole import queue
    from opconsole.errors import OpconsoleError

    choice = rng.random()
    try:
        if choice < 0.4:
            desk.register(subject="Не печатает принтер", category="printing", channel="phone")
        elif choice < 0.7:
            waiting = queue.page(desk.store, queue.QueueFilter("unassigned_longest"), desk.actor, desk.clock(), 0, 100)
            desk.take(next(row.key for row in waiting if row.status == "new"))
        else:
            row = desk.store.conn.execute("SELECT key FROM tickets INDEXED BY tickets_queue_operator WHERE "
                                          "status IN ('new', 'in_progress', 'waiting_on_caller', 'escalated') AND "
                                          "operator = ? AND status = 'in_progress' LIMIT 1", (desk.actor,)).fetchone()
            if row:
                desk.resolve(row[0], "instructions")
    except OpconsoleError as exc:
        raise SystemExit(f"bench_lead: the desk refused a change: {exc}") from None


class Clock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


if __name__ == "__main__":
    main()
