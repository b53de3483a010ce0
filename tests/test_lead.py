"""The shift lead's board (opconsole.lead): what it counts, that it agrees with the period report,
and that the figures it keeps between refreshes stay what a fresh read finds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from opconsole import kpis, reports
from opconsole.lead import Board, shift_start
from opconsole.services import Desk
from opconsole.store import Store
from conftest import FakeClock

MSK = timezone(timedelta(hours=3))
NETWORK_FIELDS = {"site": "Store 7", "affected_devices": "router", "callback_phone": "+74951234567",
                  "speed_test": "2 Mbit/s"}


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, 23, hh, mm, tzinfo=MSK)  # a Monday


@pytest.fixture
def shift(desk: Desk, clock) -> Desk:
    """Monday's day shift so far (from 08:00): six tickets, and one left over from the night."""
    def step(hh, mm, action):
        clock.now = at(hh, mm)
        return action()

    night = step(7, 30, lambda: desk.register(subject="Night: monitor flickers", category="workstation")).key
    t1 = step(9, 0, lambda: desk.register(subject="Printer jams", category="printing.paper_jam")).key
    step(9, 1, lambda: desk.take(t1))
    step(9, 10, lambda: desk.resolve(t1, "instructions"))
    t2 = step(9, 30, lambda: desk.register(subject="Slow link", category="network.slow")).key
    step(9, 31, lambda: desk.take(t2))
    step(9, 40, lambda: desk.escalate(t2, "network", "slow link", NETWORK_FIELDS))
    step(9, 50, lambda: desk.assign(t2, group="field_service"))
    step(10, 0, lambda: desk.assign(t2, group="applications"))  # moved 3 times: football
    step(10, 5, lambda: desk.register(subject="VPN down", category="vpn.no_connect", impact="high", urgency="high"))
    t4 = step(10, 10, lambda: desk.register(subject="Outlook asks for the password", category="mail")).key
    step(10, 12, lambda: desk.take(t4))
    step(10, 20, lambda: desk.wait(t4, "the caller reboots"))
    clock.now = at(10, 30)
    return {"night": night, "t2": t2, "t4": t4}


def test_the_board_counts_the_desk_as_it_stands(desk: Desk, shift, clock):
    snapshot = Board(desk.config).read(desk.store, clock())
    assert snapshot.shift_start == at(8)
    first = next(g for g in snapshot.groups if g.group == "first_line")
    # open on first line: the night's ticket (new), VPN down (new, P1), Outlook (waiting)
    assert (first.open, first.by_status["new"], first.by_status["waiting_on_caller"]) == (3, 2, 1)
    assert first.by_priority["P1"] == 1 and first.unassigned == 2
    # VPN down: P1, registered 10:05, response due 10:20 and not taken: breached; the night ticket's P3
    # response is due 09:30 of working time (registered before opening): breached too
    assert (snapshot.breached, first.breached) == (2, 2)
    applications = next(g for g in snapshot.groups if g.group == "applications")
    assert (applications.open, applications.unassigned) == (1, 1)
    assert [(f.key, f.moves, f.group) for f in snapshot.football] == [(shift["t2"], 3, "applications")]
    assert sum(snapshot.arrivals.today) == 5 and snapshot.arrivals.today[9] == 2  # 09:00, 09:30 (MSK)
    assert snapshot.arrivals.by_channel == {"phone": 5}
    (op1,) = snapshot.operators
    assert (op1.login, op1.in_progress, op1.assigned, op1.last_op) == ("op1", 0, 1, "ticket.wait")
    assert snapshot.figures.backlog == {"< 1 h": 2, "1-4 h": 2, "4-24 h": 0, "1-3 d": 0, "3-7 d": 0, "> 7 d": 0}


def test_the_shift_kpis_are_the_reports_for_the_same_period(desk: Desk, shift, clock):
    board = Board(desk.config).read(desk.store, clock())
    report = reports.build(desk.store, desk.config, at(8), clock(), now=clock())
    live = {k.key: (k.value, k.numerator, k.denominator) for k in board.figures.kpis}
    assert live == {k.key: (k.value, k.numerator, k.denominator) for k in report.figures.kpis}
    assert live["fcr"] == (1.0, 1, 1) and live["escalation_rate"][1:] == (1, 4)  # 4 registered since 08:00


def test_a_new_shift_counts_from_its_own_start(desk: Desk, shift, clock):
    board = Board(desk.config)
    board.read(desk.store, clock())
    clock.now = at(20, 5)
    snapshot = board.read(desk.store, clock())
    assert snapshot.shift_start == at(20)
    assert snapshot.figures.kpi("escalation_rate").denominator == 0  # nothing registered since 20:00
    assert snapshot.figures.kpi("fcr").value is None


def test_a_response_that_fell_due_in_the_shift_counts_though_nothing_happened_in_it(desk: Desk, clock):
    clock.now = at(19, 50)
    desk.register(subject="All registers down", category="pos", impact="high", urgency="high")  # P1: 15 min
    kept = Board(desk.config)
    kept.read(desk.store, clock())
    clock.now = at(20, 10)  # a new shift; the response fell due at 20:05, untaken
    for board in (kept, Board(desk.config)):
        assert board.read(desk.store, clock()).figures.kpi("sla_response").denominator == 1


def test_the_shift_starts_at_the_latest_configured_start_even_across_midnight(config):
    zone = reports.site_zone(config)
    assert shift_start(config, zone, at(7, 59)) == datetime(2026, 11, 22, 20, 0, tzinfo=MSK)
    assert shift_start(config, zone, at(8, 0)) == at(8)
    assert shift_start(config, zone, at(23, 0)) == at(20)


def test_a_change_the_server_refused_does_not_count(desk: Desk, shift, clock):
    board = Board(desk.config)
    before = board.read(desk.store, clock()).figures.kpi("escalation_rate").numerator
    desk.store.conn.execute("UPDATE events SET outcome = 'rejected', outcome_detail = '\"not allowed\"' "
                            "WHERE op = 'ticket.escalate'")
    after = board.read(desk.store, clock()).figures.kpi("escalation_rate").numerator
    assert (before, after) == (1, 0)
    assert reports.build(desk.store, desk.config, at(8), clock(), now=clock()).figures.kpi(
        "escalation_rate").numerator == 0


# --- the kept figures against a fresh read, under any sequence of work ---------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from(["register", "take", "resolve", "escalate", "assign", "reopen",
                                              "wait", "raise", "read"]),
                             st.integers(0, 8), st.integers(1, 90)), min_size=1, max_size=25)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_kept_figures_equal_a_fresh_read(tmp_path_factory, config, actions):
    """A board read after every step keeps facts between reads; a new board reads everything afresh, and
    the period report reads its own way. Whatever happens in between (across the 20:00 shift change
    too), all three see the same desk."""
    path = tmp_path_factory.mktemp("board") / "store.db"
    clock = FakeClock(at(19, 0))
    with Store.open(path, site_prefix="MSK") as store:
        desk = Desk(store, config, "op1", clock)
        desk.ensure_first_operator()
        kept = Board(config)
        for name, pick, minutes in actions:
            clock.advance(minutes=minutes)
            act(desk, name, pick)
            if name == "read" or pick % 2:
                same_desk(kept, Board(config), store, clock(), config)
        same_desk(kept, Board(config), store, clock(), config)


def same_desk(kept: Board, fresh: Board, store: Store, now: datetime, config) -> None:
    seen = kept.read(store, now)
    assert comparable(seen) == comparable(fresh.read(store, now))
    report = reports.build(store, config, seen.shift_start, now, now=now).figures
    assert [(k.key, k.numerator, k.denominator) for k in seen.figures.kpis] == [
        (k.key, k.numerator, k.denominator) for k in report.kpis]


def act(desk: Desk, name: str, pick: int) -> None:
    from opconsole.errors import OpconsoleError

    keys = [t.key for t in desk.store.tickets(limit=50)]
    if name == "register" or not keys:
        levels = ("low", "medium", "high")  # P1 and P2 run on the 24/7 calendar: due in minutes, any time
        desk.register(subject=f"Call {len(keys)}", category="network.slow" if pick % 3 == 0 else "printing",
                      impact=levels[pick % 3], urgency=levels[pick // 3 % 3])
        return
    key = keys[pick % len(keys)]
    try:
        {"take": lambda: desk.take(key), "resolve": lambda: desk.resolve(key, "instructions"),
         "escalate": lambda: desk.escalate(key, "network", "slow", NETWORK_FIELDS),
         "assign": lambda: desk.assign(key, group=("field_service", "applications", "network")[pick % 3]),
         "reopen": lambda: desk.reopen(key, "still broken"), "wait": lambda: desk.wait(key, "reboot"),
         "raise": lambda: desk.raise_priority(key, "P1", "VIP"), "read": lambda: None}[name]()
    except OpconsoleError:
        pass  # not allowed in the ticket's status: the desk refused it and nothing changed


def comparable(snapshot) -> tuple:
    figures = snapshot.figures
    return (snapshot.shift_start, snapshot.groups, snapshot.operators, snapshot.arrivals, snapshot.football,
            [(k.key, k.value, k.numerator, k.denominator) for k in figures.kpis], figures.backlog)


def test_a_tile_stands_near_its_target_when_close_and_missed_when_far():
    def tile(value, target, unit="%", higher=True):
        return kpis.Kpi("k", "K", value, 0, 1, unit, target, higher)
    assert tile(0.81, 0.80).standing == "met"
    assert tile(0.76, 0.80).standing == "near"  # 4 points short
    assert tile(0.70, 0.80).standing == "missed"
    assert tile(70.0, 60.0, "s", higher=False).standing == "near"  # 17 % over
    assert tile(90.0, 60.0, "s", higher=False).standing == "missed"
    assert tile(None, 0.80).standing == "na" and tile(0.5, None).standing == "none"
