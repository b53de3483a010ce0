"""The shift lead's board: the live state of the desk, read again within a second of any change.

Every query walks an index (schema 5), never the ticket table. The shift's KPIs need each counted
ticket's history, so `ShiftFacts` keeps those facts between refreshes and reads again only the
tickets that new events touched or whose SLA dues have come into the shift since the last refresh.
No UI here: the lead screen calls `Board.read` from a worker thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from opconsole import kpis, reports
from opconsole.config import PRIORITIES, Config
from opconsole.domain import OPEN_STATUSES, Status, from_iso, to_iso
from opconsole.migrations import OPEN_STATUS_SQL, RUNNING_STATUS_SQL
from opconsole.queue import BREACHING_SOON

if TYPE_CHECKING:
    from opconsole.store import Store

OPEN = tuple(s.value for s in OPEN_STATUSES)


@dataclass(frozen=True)
class GroupLoad:
    """One group's open tickets."""
    group: str
    by_status: dict[str, int]
    by_priority: dict[str, int]
    unassigned: int
    breached: int  # SLA clock running and past due
    due_soon: int  # SLA clock running, due within BREACHING_SOON

    @property
    def open(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class OperatorLoad:
    login: str
    name: str
    in_progress: int
    assigned: int  # open tickets assigned to them, in any status
    last_at: datetime | None  # their last action this shift (None: none yet)
    last_op: str | None
    last_key: str | None


@dataclass(frozen=True)
class Arrivals:
    """Tickets registered per hour of the site's day: today so far, and the same weekday last week."""
    today: list[int]
    last_week: list[int]
    by_channel: dict[str, int]  # today


@dataclass(frozen=True)
class Football:
    key: str
    moves: int
    group: str


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    shift_start: datetime
    groups: list[GroupLoad]
    operators: list[OperatorLoad]
    arrivals: Arrivals
    figures: kpis.Report  # the shift's KPIs; backlog: every open ticket, by age
    football: list[Football]

    @property
    def breached(self) -> int:
        return sum(g.breached for g in self.groups)

    @property
    def due_soon(self) -> int:
        return sum(g.due_soon for g in self.groups)

    @property
    def unassigned(self) -> int:
        return sum(g.unassigned for g in self.groups)


def shift_start(config: Config, zone: tzinfo, now: datetime) -> datetime:
    """The start of the shift `now` falls in: the latest configured start at or before it."""
    local = now.astimezone(zone)
    starts = [datetime.combine(local.date() - timedelta(days=back), start, zone)
              for back in (0, 1) for start in config.shift_starts]
    return max(start for start in starts if start <= local)


class Board:
    """The lead's board over one store. Thread-safe: a refresh may overlap the one it replaces."""

    def __init__(self, config: Config):
        self.config = config
        self.zone = reports.site_zone(config)
        self.shift = ShiftFacts()
        self.lock = threading.Lock()

    def read(self, store: Store, now: datetime) -> Snapshot:
        start = shift_start(self.config, self.zone, now)
        with self.lock, store.reading():
            groups, loads = self.queues(store, now)
            facts, last_actions = self.shift.update(store, start, now)
            figures = kpis.compute(facts.values(), start, now, self.config.first_line, now, self.config.targets)
            figures = replace(figures, backlog=backlog(store, now))
            return Snapshot(now, start, groups, operators(store, loads, last_actions), self.arrivals(store, now),
                            figures, football(store, facts, self.config.targets.football_moves))

    def queues(self, store: Store, now: datetime) -> tuple[list[GroupLoad], dict[str, Counter]]:
        """Open tickets per group by status and priority, and per operator, from one covering index."""
        rows = store.conn.execute(
            "SELECT group_id, status, priority, operator, count(*), "
            f"sum({RUNNING_STATUS_SQL} AND sla_due <= ?), sum({RUNNING_STATUS_SQL} AND sla_due <= ?) "
            f"FROM tickets INDEXED BY tickets_board WHERE {OPEN_STATUS_SQL} GROUP BY 1, 2, 3, 4",
            (to_iso(now), to_iso(now + BREACHING_SOON))).fetchall()
        tallies: dict[str, Counter] = {g: Counter() for g in self.config.groups}
        loads: dict[str, Counter] = {}
        for group, status, priority, operator, n, breached, soon in rows:
            tally = tallies.setdefault(group, Counter())
            tally[status] += n
            tally[priority] += n
            tally["breached"] += breached
            tally["soon"] += soon - breached
            if operator is None:
                tally["unassigned"] += n
            else:
                load = loads.setdefault(operator, Counter())
                load["assigned"] += n
                load["in_progress"] += n if status == Status.IN_PROGRESS.value else 0
        groups = [GroupLoad(group, {s: t[s] for s in OPEN}, {p: t[p] for p in PRIORITIES}, t["unassigned"],
                            t["breached"], t["soon"]) for group, t in tallies.items()]
        return groups, loads

    def arrivals(self, store: Store, now: datetime) -> Arrivals:
        midnight = datetime.combine(now.astimezone(self.zone).date(), datetime.min.time(), self.zone)
        week_ago = midnight - timedelta(days=7)

        def hours(start: datetime, end: datetime) -> tuple[list[int], Counter]:
            counts, channels = [0] * 24, Counter()
            for created_at, channel in store.conn.execute(
                    "SELECT created_at, channel FROM tickets INDEXED BY tickets_created "
                    "WHERE created_at >= ? AND created_at < ?", (to_iso(start), to_iso(end))):
                counts[from_iso(created_at).astimezone(self.zone).hour] += 1
                channels[channel] += 1
            return counts, channels

        today, channels = hours(midnight, now)
        last_week, _ = hours(week_ago, week_ago + timedelta(days=1))
        return Arrivals(today, last_week, dict(channels.most_common()))


class ShiftFacts:
    """The facts of the tickets the shift's KPIs count, kept from one refresh to the next: those with
    an event in the shift, and those whose response or resolution fell due in it. A refresh reads the
    events added since the last one and the dues that have come in since; a new shift, or a change
    the server refused (it rewrites an old event's outcome), reads them all again."""

    def __init__(self) -> None:
        self.start: datetime | None = None
        self.facts: dict[str, kpis.Facts] = {}
        self.seq = 0  # the last event read
        self.dues_until = ""  # dues up to this instant are read
        self.lost = -1
        self.last_actions: dict[str, tuple[str, str, str]] = {}  # actor -> (at, op, entity id)

    def update(self, store: Store, start: datetime, now: datetime) -> tuple[dict[str, kpis.Facts], dict]:
        lost = store.conn.execute("SELECT count(*) FROM events INDEXED BY events_lost "
                                  "WHERE outcome IN ('conflict', 'rejected')").fetchone()[0]
        if start != self.start or lost != self.lost:
            self.start, self.lost, self.facts, self.last_actions = start, lost, {}, {}
            self.seq = store.conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            self.dues_until = to_iso(start - timedelta(milliseconds=1))  # dues at the start count
            touched = self.note_events(store.conn.execute(
                "SELECT at, actor, op, entity, entity_id FROM events INDEXED BY events_at WHERE at >= ?",
                (to_iso(start),)))
        else:
            new = store.conn.execute("SELECT seq, at, actor, op, entity, entity_id FROM events WHERE seq > ? "
                                     "ORDER BY seq", (self.seq,)).fetchall()
            self.seq = new[-1][0] if new else self.seq
            touched = self.note_events(row[1:] for row in new)
        until = to_iso(now)
        for column in ("response_due", "resolution_due"):
            touched.update(row[0] for row in store.conn.execute(
                f"SELECT id FROM tickets INDEXED BY tickets_{column} WHERE {column} > ? AND {column} <= ?",
                (self.dues_until, until)))
        self.dues_until = until
        for item, _ in reports.load_ids(store, sorted(touched)):
            self.facts[item.id] = item
        return self.facts, self.last_actions

    def note_events(self, rows) -> set[str]:
        """The tickets these events touched in the shift; each actor's latest action is remembered."""
        start = to_iso(self.start)
        touched = set()
        for at, actor, op, entity, entity_id in rows:
            if at >= start:
                if entity == "ticket":
                    touched.add(entity_id)
                if actor not in self.last_actions or at >= self.last_actions[actor][0]:
                    self.last_actions[actor] = (at, op, entity_id)
            elif entity_id in self.facts:
                touched.add(entity_id)  # a late-synced old event of a ticket already counted
        return touched


def operators(store: Store, loads: dict[str, Counter], last_actions: dict[str, tuple[str, str, str]]
              ) -> list[OperatorLoad]:
    """Everyone who acted this shift or holds open tickets: the busiest first, then the latest active."""
    people = {op.login: op for op in store.operators()}
    keys = keys_of(store, [entity_id for _, _, entity_id in last_actions.values()])
    result = []
    for login in set(loads) | set(last_actions):
        load = loads.get(login, Counter())
        at, op, entity_id = last_actions.get(login, (None, None, None))
        name = people[login].name if login in people else login
        result.append(OperatorLoad(login, name, load["in_progress"], load["assigned"], from_iso(at),
                                   op, keys.get(entity_id)))
    return sorted(result, key=lambda o: (o.last_at is None, -o.in_progress, -o.assigned, o.login))


def keys_of(store: Store, ids: list[str]) -> dict[str, str]:
    found = {}
    for chunk, marks in reports.chunks(ids):
        found.update(store.conn.execute(f"SELECT id, key FROM tickets WHERE id IN ({marks})", chunk).fetchall())
    return found


def backlog(store: Store, now: datetime) -> dict[str, int]:
    """Every open ticket by age, counted on the (status, created_at) index."""
    cutoffs = [to_iso(now - limit) for _, limit in kpis.BACKLOG_BUCKETS if limit != timedelta.max]
    older = ", ".join("coalesce(sum(created_at <= ?), 0)" for _ in cutoffs)
    row = store.conn.execute(f"SELECT count(*), {older} FROM tickets INDEXED BY tickets_status "
                             f"WHERE {OPEN_STATUS_SQL}", cutoffs).fetchone()
    # row[i + 1]: tickets at least as old as bucket i's upper limit, i.e. in the buckets after it
    at_least = list(row[1:]) + [0]
    counts = [row[0] - at_least[0]] + [at_least[i] - at_least[i + 1] for i in range(len(cutoffs))]
    return dict(zip((label for label, _ in kpis.BACKLOG_BUCKETS), counts))


def football(store: Store, facts: dict[str, kpis.Facts], moves: int) -> list[Football]:
    """Tickets of this shift moved between groups more than `moves` times, the most moved first."""
    kicked = {f.id: f for f in facts.values() if f.group_moves() > moves}
    keys = keys_of(store, list(kicked))
    return sorted((Football(keys[i], f.group_moves(), f.groups[-1][1]) for i, f in kicked.items() if i in keys),
                  key=lambda k: (-k.moves, k.key))
