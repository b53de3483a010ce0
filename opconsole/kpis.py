"""Service KPIs (../shared/design/KPIS.md), computed by pure code from tickets and their events.

`facts()` reduces one ticket and its history to what the KPIs need (its status and group over time,
its resolutions, its time in work). `compute()` turns the facts of many tickets into the KPIs of a
period [start, end). A KPI whose denominator is empty is "n/a" (value None), never 0 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from opconsole.config import Targets
from opconsole.domain import OPEN_STATUSES, Status, Ticket, from_iso

BACKLOG_BUCKETS = (("< 1 h", timedelta(hours=1)), ("1-4 h", timedelta(hours=4)), ("4-24 h", timedelta(days=1)),
                   ("1-3 d", timedelta(days=3)), ("3-7 d", timedelta(days=7)), ("> 7 d", timedelta.max))
OPEN = {s.value for s in OPEN_STATUSES}
NEAR_SHARE = 0.05  # a share this close below its target is "near" it (5 points)
NEAR_TIME = 0.25  # a time up to this share over its target is "near" it


@dataclass(frozen=True)
class Facts:
    """One ticket as the KPIs see it."""
    id: str
    created_at: datetime
    channel: str
    category: str | None
    response_due: datetime
    resolution_due: datetime  # waiting on the caller already added
    first_response_at: datetime | None
    statuses: tuple[tuple[datetime, str], ...]  # (since, status), in time order
    groups: tuple[tuple[datetime, str], ...]  # (since, group), in time order
    resolutions: tuple[datetime, ...]  # every time it was resolved
    reopens: tuple[datetime, ...]
    escalations: tuple[tuple[datetime, str], ...]  # (when, to group)
    first_contact: bool  # resolved on first contact (the ticket's own flag, cleared by a reopen)

    def status_at(self, moment: datetime) -> str | None:
        return value_at(self.statuses, moment)

    def group_at(self, moment: datetime) -> str | None:
        return value_at(self.groups, moment)

    def group_moves(self) -> int:
        return max(len(self.groups) - 1, 0)

    def handling_seconds(self, until: datetime) -> float:
        """Time in work (in progress), waiting on the caller excluded, up to `until`."""
        total, started = 0.0, None
        for since, status in self.statuses:
            if since > until:
                break
            if started is not None:
                total += (since - started).total_seconds()
                started = None
            if status == Status.IN_PROGRESS.value:
                started = since
        if started is not None:
            total += (until - started).total_seconds()
        return total


def value_at(timeline: tuple[tuple[datetime, str], ...], moment: datetime) -> str | None:
    """The value a (since, value) timeline had at `moment`."""
    current = None
    for since, value in timeline:
        if since > moment:
            break
        current = value
    return current


@dataclass(frozen=True)
class Step:
    """What one event of a ticket did, as far as the KPIs care."""
    at: datetime
    op: str
    status: str | None = None  # the status it set, if it changed the status
    group: str | None = None  # the group it set, if it changed the group


def facts(ticket: Ticket, events: Iterable[Any]) -> Facts:
    """The facts of `ticket` from its events (store.Event or anything with at, op and changes)."""
    steps = [Step(from_iso(e.at), e.op, e.changes["status"][1] if "status" in e.changes else None,
                  e.changes["group_id"][1] if "group_id" in e.changes else None) for e in events]
    return facts_of(ticket.id, ticket.created_at, ticket.channel.value, ticket.category, ticket.response_due,
                    ticket.resolution_due, ticket.first_response_at, bool(ticket.first_contact_resolution), steps)


def facts_of(ticket_id: str, created_at: datetime, channel: str, category: str | None, response_due: datetime,
             resolution_due: datetime, first_response_at: datetime | None, first_contact: bool,
             steps: Iterable[Step]) -> Facts:
    statuses: list[tuple[datetime, str]] = []
    groups: list[tuple[datetime, str]] = []
    resolutions, reopens, escalations = [], [], []
    for step in steps:
        if step.status is not None:
            statuses.append((step.at, step.status))
            if step.status == Status.RESOLVED.value:
                resolutions.append(step.at)
        if step.group is not None and step.group != (groups[-1][1] if groups else None):
            groups.append((step.at, step.group))
        if step.op == "ticket.reopen":
            reopens.append(step.at)
        if step.op == "ticket.escalate" and step.group is not None:
            escalations.append((step.at, step.group))
    return Facts(ticket_id, created_at, channel, category, response_due, resolution_due, first_response_at,
                 tuple(statuses), tuple(groups), tuple(resolutions), tuple(reopens), tuple(escalations), first_contact)


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: float | None  # None: n/a (nothing to measure in the period)
    numerator: float
    denominator: float
    unit: str  # "%" (value is a share 0..1), "s" (seconds) or "" (a count)
    target: float | None = None
    higher_is_better: bool = True

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def standing(self) -> str:
        """Against the target: met, near, missed; "none" without a target, "na" without a value."""
        if self.value is None:
            return "na"
        if self.target is None:
            return "none"
        if self.met:
            return "met"
        gap = self.target - self.value if self.higher_is_better else self.value - self.target
        return "near" if gap <= (NEAR_SHARE if self.unit == "%" else self.target * NEAR_TIME) else "missed"


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    kpis: list[Kpi]
    backlog: dict[str, int]  # age bucket -> tickets open at the end of the period
    escalations_by_group: dict[str, int]
    football: list[str]  # ids of tickets moved between groups more than the allowed times

    def kpi(self, key: str) -> Kpi:
        return next(k for k in self.kpis if k.key == key)


def share(key: str, label: str, hits: int, total: int, target: float | None = None,
          higher_is_better: bool = True) -> Kpi:
    return Kpi(key, label, hits / total if total else None, hits, total, "%", target, higher_is_better)


def mean_seconds(key: str, label: str, values: list[float], target: float | None = None) -> Kpi:
    return Kpi(key, label, sum(values) / len(values) if values else None, sum(values), len(values), "s", target,
               higher_is_better=False)


def compute(tickets: Iterable[Facts], start: datetime, end: datetime, first_line: str,
            now: datetime | None = None, targets: Targets = Targets()) -> Report:
    """The KPIs of the period [start, end). `now` (default: `end`) decides what has already fallen due:
    a response due in the period but still ahead of `now` is not yet a miss."""
    now = min(now or end, end)
    within = timedelta(seconds=targets.taken_within_seconds)
    every = list(tickets)
    created = [t for t in every if start <= t.created_at < end]

    def in_period(moment: datetime | None) -> bool:
        return moment is not None and start <= moment < end

    response_due = [t for t in every if in_period(t.response_due) and (t.first_response_at is not None
                                                                     or t.response_due <= now)]
    resolution_due = [t for t in every if in_period(t.resolution_due) and (t.resolutions or t.resolution_due <= now)]
    resolved_by_due = [t for t in resolution_due if t.resolutions and t.resolutions[-1] <= t.resolution_due]
    # closed in the period: resolved in it, and still resolved (or closed) at its end
    closed = [t for t in every if any(in_period(r) for r in t.resolutions)
              and t.status_at(end - timedelta(microseconds=1)) in (Status.RESOLVED.value, Status.CLOSED.value)]
    resolved_in_period = [t for t in every if any(in_period(r) for r in t.resolutions)]
    responded = [t for t in created if t.first_response_at is not None]
    measurable = [t for t in created if t.first_response_at is not None or t.created_at + within <= now]

    kpis = [
        share("sla_response", "SLA compliance, response", sum(t.first_response_at is not None
              and t.first_response_at <= t.response_due for t in response_due), len(response_due),
              targets.sla_response),
        share("sla_resolution", "SLA compliance, resolution", len(resolved_by_due), len(resolution_due),
              targets.sla_resolution),
        mean_seconds("average_delay", "Average delay to first response",
                     [(t.first_response_at - t.created_at).total_seconds() for t in responded],
                     targets.average_delay_seconds),
        share("taken_within", f"Taken within {targets.taken_within_seconds} s",
              sum(t.first_response_at is not None and t.first_response_at - t.created_at <= within
                  for t in measurable), len(measurable), targets.taken_within),
        share("fcr", "First-contact resolution", sum(first_contact(t, first_line) for t in closed), len(closed),
              targets.fcr),
        share("flr", "First-level resolution", sum(first_level(t, first_line) for t in closed), len(closed),
              targets.flr),
        share("escalation_rate", "Escalation rate", sum(bool(t.escalations) for t in created), len(created),
              targets.escalation_rate, higher_is_better=False),
        share("reopen_rate", "Reopen rate", sum(bool(t.reopens) for t in resolved_in_period), len(resolved_in_period),
              targets.reopen_rate, higher_is_better=False),
        mean_seconds("aht", "Average handling time", [t.handling_seconds(min(t.resolutions[-1], end))
                                                       for t in closed], targets.aht_seconds),
    ]
    return Report(start, end, kpis, backlog(every, end), escalations_by_group(created),
                  [t.id for t in every if t.created_at < end and t.group_moves() > targets.football_moves])


def first_contact(ticket: Facts, first_line: str) -> bool:
    return (ticket.first_contact and not ticket.escalations and not ticket.reopens
            and ticket.group_at(ticket.resolutions[-1]) == first_line)


def first_level(ticket: Facts, first_line: str) -> bool:
    return not ticket.escalations and ticket.group_at(ticket.resolutions[-1]) == first_line


def backlog(tickets: list[Facts], end: datetime) -> dict[str, int]:
    """Tickets open at the end of the period, by how long they had been open."""
    buckets = dict.fromkeys((label for label, _ in BACKLOG_BUCKETS), 0)
    last = end - timedelta(microseconds=1)
    for ticket in tickets:
        if ticket.created_at < end and ticket.status_at(last) in OPEN:
            age = end - ticket.created_at
            label = next(label for label, limit in BACKLOG_BUCKETS if age < limit)
            buckets[label] += 1
    return buckets


def escalations_by_group(created: list[Facts]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ticket in created:
        for group in {group for _, group in ticket.escalations}:
            counts[group] = counts.get(group, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
