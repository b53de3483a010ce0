"""The operator's queue as the console pages it: filters, rows, counts and SLA states.

Pure reads on the store through the queue's partial indexes; no UI. The console calls these from
worker threads, each thread with its own store connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from opconsole.domain import from_iso, to_iso
from opconsole.migrations import OPEN_STATUS_SQL, RUNNING_STATUS_SQL, queue_index
from opconsole.sla import Calendar

if TYPE_CHECKING:
    from opconsole.store import Store

SCOPES = ("all", "mine", "unassigned", "breaching")  # the operator's filter offers these
# The lead view's lists: tickets whose SLA clock runs and that are due within BREACHING_SOON, most
# overdue first; unassigned tickets, the longest waiting first.
LEAD_SCOPES = ("overdue", "unassigned_longest")
BREACHING_SOON = timedelta(minutes=30)
AT_RISK_SHARE = 0.75  # share of the SLA time used after which a ticket is at risk


class SlaState(StrEnum):
    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"


@dataclass(frozen=True)
class QueueFilter:
    scope: str = "all"  # all | mine | unassigned | breaching (soon)
    channel: str | None = None
    status: str | None = None
    group: str | None = None

    def describe(self) -> str:
        parts = [self.scope] + [v for v in (self.channel, self.status, self.group) if v]
        return " · ".join(parts)


@dataclass(frozen=True)
class QueueRow:
    id: str
    key: str
    priority: str
    status: str
    channel: str
    group_id: str
    operator: str | None
    subject: str
    created_at: datetime
    sla_due: datetime
    responded: bool
    waiting: bool
    version: int

    def sla_state(self, now: datetime, calendar: Calendar) -> SlaState:
        """Where the ticket stands against its next due, counting only the working time of its SLA
        calendar: a ticket does not drift into "at risk" overnight while the desk is closed."""
        if self.waiting:
            return SlaState.PAUSED
        if now >= self.sla_due:
            return SlaState.BREACHED
        total = calendar.between(self.created_at, self.sla_due)
        used = calendar.between(self.created_at, now)
        return SlaState.AT_RISK if total > 0 and used / total >= AT_RISK_SHARE else SlaState.OK

    def time_left(self, now: datetime) -> str:
        """SLA time left as an operator reads it: 42m, 3h05m, 2d04h; negative when breached."""
        return duration_text((self.sla_due - now).total_seconds())


def duration_text(seconds: float) -> str:
    """A duration as people on a desk read it: 45s, 42m05s, 3h05m, 2d04h (negative: "-3h05m")."""
    seconds = int(seconds)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m{secs:02d}s"
    return f"{sign}{secs}s"


ROW_COLUMNS = ("id, key, priority, status, channel, group_id, operator, subject, created_at, sla_due, "
               "first_response_at, waiting_since, version")


def where_clause(flt: QueueFilter, actor: str, now: datetime) -> tuple[str, str, list, str]:
    """The index to walk, the WHERE clause, its parameters and the column the view is sorted by (then
    by key) for a filter."""
    if flt.scope == "overdue":
        return "tickets_running", f"{RUNNING_STATUS_SQL} AND sla_due <= ?", [to_iso(now + BREACHING_SOON)], "sla_due"
    if flt.scope == "unassigned_longest":
        return "tickets_unassigned", f"{OPEN_STATUS_SQL} AND operator IS NULL", [], "created_at"
    where, params = [OPEN_STATUS_SQL], []
    if flt.scope == "mine":
        where.append("operator = ?")
        params.append(actor)
    elif flt.scope == "unassigned":
        where.append("operator IS NULL")
    elif flt.scope == "breaching":
        where.append("sla_due <= ?")
        params.append(to_iso(now + BREACHING_SOON))
    if flt.group:
        where.append("group_id = ?")
        params.append(flt.group)
    for column, value in (("channel", flt.channel), ("status", flt.status)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    index = queue_index(by_operator=flt.scope in ("mine", "unassigned"), by_group=bool(flt.group))
    return index, " AND ".join(where), params, "sla_due"


def count(store: Store, flt: QueueFilter, actor: str, now: datetime) -> int:
    index, where, params, _ = where_clause(flt, actor, now)
    return store.conn.execute(f"SELECT count(*) FROM tickets INDEXED BY {index} WHERE {where}", params).fetchone()[0]


def page(store: Store, flt: QueueFilter, actor: str, now: datetime, offset: int, limit: int) -> list[QueueRow]:
    index, where, params, order = where_clause(flt, actor, now)
    cursor = store.conn.execute(
        f"SELECT {ROW_COLUMNS} FROM tickets INDEXED BY {index} WHERE {where} ORDER BY {order}, key LIMIT ? OFFSET ?",
        params + [limit, offset])
    return [row_from(*r) for r in cursor]


def position_of(store: Store, flt: QueueFilter, actor: str, now: datetime, key: str) -> int | None:
    """The row index of ticket `key` under this filter, or None if it is not in the queue."""
    index, where, params, order = where_clause(flt, actor, now)
    found = store.conn.execute(
        f"SELECT {order}, key FROM tickets INDEXED BY {index} WHERE {where} AND key = ?", params + [key]).fetchone()
    if found is None:
        return None
    return store.conn.execute(
        f"SELECT count(*) FROM tickets INDEXED BY {index} WHERE {where} AND ({order} < ? OR ({order} = ? AND key < ?))",
        params + [found[0], found[0], found[1]]).fetchone()[0]


@dataclass(frozen=True)
class Counts:
    new: int
    mine: int
    breaching: int


def counts(store: Store, actor: str, now: datetime) -> Counts:
    """The status bar's live counts: new tickets, my open tickets, open tickets breaching soon."""
    one = lambda sql, *p: store.conn.execute(sql, p).fetchone()[0]  # noqa: E731
    return Counts(
        new=one("SELECT count(*) FROM tickets INDEXED BY tickets_status WHERE status = 'new'"),
        mine=one(f"SELECT count(*) FROM tickets INDEXED BY tickets_queue_operator "
                 f"WHERE {OPEN_STATUS_SQL} AND operator = ?", actor),
        breaching=one(f"SELECT count(*) FROM tickets INDEXED BY tickets_queue "
                      f"WHERE {OPEN_STATUS_SQL} AND sla_due <= ?", to_iso(now + BREACHING_SOON)),
    )


def row_from(row_id: str, key: str, priority: str, status: str, channel: str, group_id: str, operator: str | None,
             subject: str, created_at: str, sla_due: str, first_response_at: str | None, waiting_since: str | None,
             version: int) -> QueueRow:
    """A queue row from the columns of ROW_COLUMNS, in that order."""
    return QueueRow(row_id, key, priority, status, channel, group_id, operator, subject, from_iso(created_at),
                    from_iso(sla_due), responded=first_response_at is not None, waiting=waiting_since is not None,
                    version=version)
