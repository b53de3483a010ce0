"""The demo day: a believable, deterministic working day written through the Desk API."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from opconsole.demo import fill_demo_day
from opconsole.domain import Status
from opconsole.services import Desk
from opconsole.store import Store

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 24, 12, 30, tzinfo=timezone.utc)  # Tuesday 15:30 in Moscow


def all_tickets(desk: Desk):
    return desk.store.tickets(limit=1000)


def day_on_new_store(path: Path, config, clock, seed: int = 7, now: datetime = NOW):
    store = Store.open(path, site_prefix="MSK")
    desk = Desk(store, config, "op1", clock=clock)
    desk.ensure_first_operator()
    count = fill_demo_day(desk, now=now, seed=seed)
    tickets = sorted(all_tickets(desk), key=lambda t: t.key)
    store.close()
    return count, tickets


def test_demo_day_fills_a_live_queue(desk: Desk):
    started = time.perf_counter()
    count = fill_demo_day(desk, now=NOW)
    elapsed = time.perf_counter() - started

    tickets = all_tickets(desk)
    assert 200 <= count <= 300
    assert count == len(tickets) == desk.store.count_tickets()
    assert elapsed < 2.0
    statuses = Counter(t.status for t in tickets)
    assert {Status.NEW, Status.IN_PROGRESS, Status.RESOLVED, Status.ESCALATED, Status.WAITING,
            Status.CLOSED} <= set(statuses)
    assert statuses[Status.RESOLVED] + statuses[Status.CLOSED] > count / 3  # most are solved
    assert sum(t.reopen_count > 0 for t in tickets) >= 1
    assert sum(bool(t.first_contact_resolution) for t in tickets) > count / 4
    assert any(t.priority == "P1" for t in tickets)
    channels = Counter(t.channel.value for t in tickets)
    assert channels.most_common(1)[0][0] == "phone"
    assert len(channels) >= 4


def test_every_ticket_has_its_history(desk: Desk):
    fill_demo_day(desk, now=NOW)
    start = datetime(2026, 11, 24, 8, 0, tzinfo=MSK)
    logins = {op.login for op in desk.store.operators()}
    for ticket in all_tickets(desk):
        events = desk.history(ticket.key)
        assert events[0].op == "ticket.create"
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert start <= ticket.created_at <= NOW
        assert all(e.actor in logins for e in events)
        assert events[-1].at <= NOW.strftime("%Y-%m-%dT%H:%M:%S.999Z")


def test_the_newest_tickets_are_still_being_worked(desk: Desk):
    fill_demo_day(desk, now=NOW)
    newest = sorted(all_tickets(desk), key=lambda t: t.created_at)[-10:]
    assert all(t.status in (Status.NEW, Status.IN_PROGRESS) for t in newest)
    assert {Status.NEW, Status.IN_PROGRESS} <= {t.status for t in newest}


@pytest.mark.parametrize("seed", [7, 1, 2, 3, 4])
def test_escalations_carry_what_their_group_requires(desk: Desk, seed: int):
    fill_demo_day(desk, now=NOW, seed=seed)
    escalated = [t for t in all_tickets(desk) if t.status is Status.ESCALATED]
    assert escalated
    for ticket in escalated:
        required = desk.config.required_fields(ticket.group_id, ticket.category)
        assert required, ticket.key
        missing = [name for name in required if not ticket.fields.get(name, "").strip()]
        assert not missing, f"{ticket.key} escalated to {ticket.group_id} without {missing}"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_any_seed_gives_a_varied_day(desk: Desk, seed: int):
    count = fill_demo_day(desk, now=NOW, seed=seed)
    assert 200 <= count <= 300
    statuses = {t.status for t in all_tickets(desk)}
    assert {Status.NEW, Status.IN_PROGRESS, Status.RESOLVED, Status.ESCALATED, Status.WAITING} <= statuses


def test_same_seed_same_day(tmp_path: Path, config, clock):
    first = day_on_new_store(tmp_path / "a.db", config, clock)
    second = day_on_new_store(tmp_path / "b.db", config, clock)
    other = day_on_new_store(tmp_path / "c.db", config, clock, seed=8)

    def summary(day):
        count, tickets = day
        return count, [(t.key, t.subject, t.status, t.operator, t.created_at, t.fields) for t in tickets]

    assert summary(first) == summary(second)
    assert summary(first) != summary(other)


def test_clock_and_actor_are_restored(desk: Desk, clock):
    fill_demo_day(desk, now=NOW)
    assert desk.clock is clock
    assert desk.actor == "op1"
    created = desk.register(phone="+79161234567", subject="Звонок после демо")
    assert created.created_at == clock.now
    assert desk.history(created.key)[0].actor == "op1"


def test_operators_and_callers_look_real(desk: Desk):
    fill_demo_day(desk, now=NOW)
    staff = [op for op in desk.store.operators() if op.login != "op1"]
    assert 5 <= len(staff) <= 6
    assert sum(op.role.value == "lead" for op in staff) == 1
    assert sum(desk.config.first_line in op.groups for op in staff) >= len(staff) - 1
    for op in staff:
        assert re.fullmatch(r"[a-z]\.[a-z]+\d*", op.login), op.login
        assert re.fullmatch(r"[А-ЯЁ][а-яё]+ [А-ЯЁ][а-яё]+", op.name), op.name

    contacts = desk.store.conn.execute("SELECT id FROM contacts").fetchall()
    assert 80 <= len(contacts) <= 120
    calls = Counter(t.contact_id for t in all_tickets(desk) if t.contact_id)
    assert len(calls) == len(contacts)  # every caller called
    assert max(calls.values()) > 1      # and some called again
    for (contact_id,) in contacts:
        contact = desk.store.contact(contact_id)
        assert contact.name and contact.site
        phone = contact.phones[0]
        assert re.fullmatch(r"\+79\d{9}", phone)
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone))


def test_arrivals_peak_mid_morning_and_mid_afternoon(desk: Desk):
    late = datetime(2026, 11, 24, 17, 30, tzinfo=timezone.utc)  # 20:30 in Moscow: the whole day
    fill_demo_day(desk, now=late)
    hours = Counter(t.created_at.astimezone(MSK).hour for t in all_tickets(desk))
    peaks = hours[9] + hours[10] + hours[14] + hours[15]
    assert peaks > sum(hours.values()) / 3
    assert hours[10] > hours[8] and hours[15] > hours[19]
    assert min(hours) >= 8


def test_early_morning_shows_the_previous_working_day(desk: Desk):
    # The desk's clock says Monday 09:30 in Moscow: the day shown starts on Friday at 08:00.
    count = fill_demo_day(desk)
    created = sorted(t.created_at.astimezone(MSK) for t in all_tickets(desk))
    assert 200 <= count <= 300
    assert created[0].date().isoformat() == "2026-11-20"
    assert created[0].hour >= 8
    assert created[-1] <= desk.clock()


def test_incoming_calls_trickle_in_from_known_and_new_callers(desk, clock):
    import random

    from opconsole.demo import incoming_call

    fill_demo_day(desk, now=clock.now)
    before = desk.store.count_tickets()
    rng = random.Random(3)
    keys = [incoming_call(desk, rng) for _ in range(20)]
    assert desk.store.count_tickets() == before + 20 and len(set(keys)) == 20
    created = [desk.ticket(key) for key in keys]
    assert all(t.status.value == "new" and t.category and t.contact_id for t in created)
    callers = {t.contact_id for t in created}
    assert 1 < len(callers) <= 20
