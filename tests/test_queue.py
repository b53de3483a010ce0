"""The queue's reads and SLA states, without the UI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from opconsole import queue
from opconsole.queue import QueueFilter, SlaState
from opconsole.services import Desk


def row_of(desk: Desk, key: str, clock) -> queue.QueueRow:
    rows = queue.page(desk.store, QueueFilter(), desk.actor, clock.now, 0, 100)
    return next(r for r in rows if r.key == key)


def test_at_risk_counts_working_time_only(desk: Desk, clock, config):
    # Friday 17:00 in Moscow; P3 answers within 60 business minutes: due Monday 09:00... plus the
    # remaining hour: 60 minutes of work are 17:00-18:00 Friday.
    clock.now = datetime(2026, 11, 27, 14, 0, tzinfo=timezone.utc)
    key = desk.register(phone="+79123456789", subject="Не печатает принтер").key  # P3, business hours
    row = row_of(desk, key, clock)
    calendar = config.sla[row.priority].calendar
    assert row.sla_due == datetime(2026, 11, 27, 15, 0, tzinfo=timezone.utc)
    assert row.sla_state(clock.now + timedelta(minutes=30), calendar) is SlaState.OK
    assert row.sla_state(clock.now + timedelta(minutes=46), calendar) is SlaState.AT_RISK
    assert row.sla_state(clock.now + timedelta(minutes=61), calendar) is SlaState.BREACHED


def test_a_weekend_does_not_push_a_ticket_into_risk(desk: Desk, clock, config):
    # Friday 17:30 in Moscow: half an hour of work left today, the other half on Monday morning.
    clock.now = datetime(2026, 11, 27, 14, 30, tzinfo=timezone.utc)
    key = desk.register(phone="+79123456789", subject="Нет доступа к папке").key
    row = row_of(desk, key, clock)
    calendar = config.sla[row.priority].calendar
    assert row.sla_due == datetime(2026, 11, 30, 6, 30, tzinfo=timezone.utc)  # Monday 09:30 MSK
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    assert row.sla_state(saturday, calendar) is SlaState.OK  # 50 % of the working time used
    monday = datetime(2026, 11, 30, 6, 10, tzinfo=timezone.utc)  # 09:10 MSK: 40 of 60 minutes used
    assert row.sla_state(monday, calendar) is SlaState.OK
    assert row.sla_state(monday + timedelta(minutes=6), calendar) is SlaState.AT_RISK


def test_waiting_tickets_are_paused(desk: Desk, clock, config):
    key = desk.register(phone="+79123456789", subject="VPN").key
    desk.take(key)
    desk.wait(key, "скриншот ошибки")
    row = row_of(desk, key, clock)
    assert row.sla_state(clock.now + timedelta(days=30), config.sla[row.priority].calendar) is SlaState.PAUSED


def test_filters_and_positions(desk: Desk, clock):
    keys = [desk.register(phone="+79123456789", subject=f"call {n}").key for n in range(3)]
    desk.take(keys[1])
    assert queue.count(desk.store, QueueFilter("mine"), "op1", clock.now) == 1
    assert queue.count(desk.store, QueueFilter("unassigned"), "op1", clock.now) == 2
    assert queue.count(desk.store, QueueFilter(status="new"), "op1", clock.now) == 2
    # taken, the second call is now due by its resolution, later than the others' response
    assert [queue.position_of(desk.store, QueueFilter(), "op1", clock.now, k) for k in keys] == [0, 2, 1]
    assert queue.position_of(desk.store, QueueFilter("mine"), "op1", clock.now, keys[0]) is None
    assert queue.counts(desk.store, "op1", clock.now) == queue.Counts(new=2, mine=1, breaching=0)
