"""The KPIs of KPIS.md against hand-computed fixtures: a day of six tickets worked through the desk's
own services, with the figures worked out by hand in the comments."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from opconsole.config import Targets, load_config
from opconsole.errors import ConfigError
from opconsole.kpis import compute, facts

MSK = ZoneInfo("Europe/Moscow")
NETWORK_FIELDS = {"site": "Store 7", "affected_devices": "router", "callback_phone": "+74951234567",
                  "speed_test": "2 Mbit/s"}


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, ss, tzinfo=MSK)


def all_facts(desk):
    return [facts(t, desk.store.events_for(t.id)) for t in desk.store.tickets(limit=1000)]


@pytest.fixture
def day(desk, clock):
    """Monday 23 November 2026, P3 tickets (business hours: response within 60 working minutes)."""
    def step(hh, mm, ss, action):
        clock.now = at(23, hh, mm, ss)
        return action()

    t1 = step(9, 30, 0, lambda: desk.register(subject="T1 printer", category="printing.paper_jam")).key
    step(9, 30, 30, lambda: desk.take(t1))                      # response 30 s
    step(9, 40, 0, lambda: desk.resolve(t1, "instructions"))    # first contact
    t2 = step(10, 0, 0, lambda: desk.register(subject="T2 vpn", category="vpn.no_connect")).key
    step(10, 2, 0, lambda: desk.take(t2))                       # response 120 s
    step(10, 10, 0, lambda: desk.wait(t2, "reboot and call back"))
    step(11, 10, 0, lambda: desk.take(t2))                      # caller back
    step(11, 20, 0, lambda: desk.resolve(t2, "instructions"))   # in work 8 + 10 min = 1080 s
    t3 = step(11, 0, 0, lambda: desk.register(subject="T3 slow network", category="network.slow")).key
    step(11, 0, 45, lambda: desk.take(t3))                      # response 45 s
    step(11, 10, 0, lambda: desk.escalate(t3, "network", "slow link", NETWORK_FIELDS))
    step(11, 20, 0, lambda: desk.assign(t3, group="field_service"))
    step(11, 30, 0, lambda: desk.assign(t3, group="applications"))  # 3 moves: football
    t4 = step(12, 0, 0, lambda: desk.register(subject="T4 slow network", category="network.slow")).key
    step(12, 0, 20, lambda: desk.take(t4))                      # response 20 s
    step(12, 10, 0, lambda: desk.escalate(t4, "network", "slow link", NETWORK_FIELDS))
    step(13, 0, 0, lambda: desk.take(t4))                       # returned to first line
    step(13, 30, 0, lambda: desk.resolve(t4, "instructions"))   # in work 580 + 1800 = 2380 s
    t5 = step(14, 0, 0, lambda: desk.register(subject="T5 nobody took it", category="printing.cartridge")).key
    t6 = step(15, 0, 0, lambda: desk.register(subject="T6 outlook", category="mail.outlook_profile")).key
    step(15, 0, 10, lambda: desk.take(t6))                      # response 10 s
    step(15, 10, 0, lambda: desk.resolve(t6, "instructions"))   # 590 s
    step(15, 30, 0, lambda: desk.reopen(t6, "still broken"))
    step(15, 40, 0, lambda: desk.resolve(t6, "instructions"))   # + 600 s = 1190 s
    return {"t3": desk.ticket(t3).id, "t5": t5}


def test_a_day_of_six_tickets(desk, day):
    report = compute(all_facts(desk), at(23, 0, 0), at(24, 0, 0), desk.config.first_line)
    got = {k.key: (k.numerator, k.denominator) for k in report.kpis}
    assert got["sla_response"] == (5, 6)          # T5 never answered, its response fell due at 15:00
    assert got["average_delay"] == (225, 5)       # (30 + 120 + 45 + 20 + 10) / 5 = 45 s
    assert report.kpi("average_delay").value == 45
    assert got["taken_within"] == (4, 6)          # T1, T3, T4, T6; T2 took 120 s, T5 none
    assert got["fcr"] == (1, 4)                   # closed: T1 T2 T4 T6; T2 waited, T4 escalated, T6 reopened
    assert got["flr"] == (3, 4)                   # T1 T2 T6: first line, no escalation (T4 came back: not FLR)
    assert got["escalation_rate"] == (2, 6)       # T3, T4
    assert got["reopen_rate"] == (1, 4)           # T6, counted once
    assert report.kpi("aht").value == (570 + 1080 + 2380 + 1190) / 4  # waiting and escalated time excluded
    assert report.backlog["4-24 h"] == 2 and sum(report.backlog.values()) == 2  # T3 (13 h), T5 (10 h)
    assert report.escalations_by_group == {"network": 2}
    assert report.football == [day["t3"]]
    assert report.kpi("sla_resolution").value is None  # nothing fell due on Monday: 2 working days
    assert report.kpi("sla_response").met is True and report.kpi("fcr").met is False


def test_resolution_sla_over_the_week(desk, day):
    report = compute(all_facts(desk), at(23, 0, 0), at(30, 0, 0), desk.config.first_line)
    # due Wednesday: T1 T2 T4 T6 resolved in time; T3 (escalated) and T5 still open and past due
    assert (report.kpi("sla_resolution").numerator, report.kpi("sla_resolution").denominator) == (4, 6)


def test_open_at_the_end_of_the_period_is_backlog_not_closed(desk, day):
    """Seen from 14:30 on Monday: T6 does not exist yet, T5 is 30 min old and not yet due."""
    report = compute(all_facts(desk), at(23, 0, 0), at(23, 14, 30), desk.config.first_line)
    assert report.kpi("sla_response").denominator == 4  # T5's response is due at 15:00, after the end
    assert report.kpi("taken_within").denominator == 5  # T5 is past its 60 s: it counts, untaken
    assert report.backlog == {"< 1 h": 1, "1-4 h": 1, "4-24 h": 0, "1-3 d": 0, "3-7 d": 0, "> 7 d": 0}
    assert report.kpi("fcr").denominator == 3  # T1 T2 T4 closed by then


def test_a_period_with_no_tickets_is_not_applicable(desk, day):
    report = compute(all_facts(desk), at(1, 0, 0), at(2, 0, 0), desk.config.first_line)
    assert all(k.value is None and k.met is None for k in report.kpis)  # n/a, never 0 %
    assert sum(report.backlog.values()) == 0 and report.football == []


def test_business_hours_sla_across_a_weekend(desk, clock):
    """Registered Friday 17:30: 30 working minutes left that day, so the response is due Monday 09:30.
    Taken Monday 09:10: in time, though 2 days 15 h 40 min after it came in."""
    clock.now = at(27, 17, 30)
    key = desk.register(subject="Store printer", category="printing.paper_jam").key
    assert desk.ticket(key).response_due == at(30, 9, 30)
    clock.now = at(30, 9, 10)
    desk.take(key)
    report = compute(all_facts(desk), at(30, 0, 0), at(30, 0, 0) + timedelta(days=1), desk.config.first_line)
    assert report.kpi("sla_response").value == 1.0
    week = compute(all_facts(desk), at(23, 0, 0), at(30, 0, 0) + timedelta(days=1), desk.config.first_line)
    assert week.kpi("average_delay").value == timedelta(days=2, hours=15, minutes=40).total_seconds()


# --- targets from the configuration ---------------------------------------------------------------


def test_targets_come_from_the_kpi_table_in_the_units_people_write(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[kpi]\nsla_response_percent = 95\ntaken_within_seconds = 20\naht_minutes = 12\n"
                    "[lead]\nshift_starts = [\"20:00\", \"07:30\"]\n", "utf-8")
    config = load_config(path)
    assert config.targets.sla_response == pytest.approx(0.95)
    assert config.targets.sla_resolution == pytest.approx(0.80)  # the KPIS.md default stays
    assert (config.targets.taken_within_seconds, config.targets.aht_seconds) == (20, 720)
    assert config.shift_starts == (time(7, 30), time(20))


@pytest.mark.parametrize("text, words", [
    ("[kpi]\nfcr_percent = 120\n", "kpi.fcr_percent: 120 is not a number from 0 to 100"),
    ("[kpi]\nfcr = 90\n", "kpi.fcr: unknown KPI target"),
    ("[kpi]\nfootball_moves = 1.5\n", "kpi.football_moves"),
    ("[lead]\nshift_starts = [\"8 am\"]\n", "lead.shift_starts"),
    ("[lead]\nshift_starts = []\n", "lead.shift_starts"),
])
def test_a_bad_target_names_its_key(tmp_path, text, words) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match=words) as refused:
        load_config(path)
    assert str(path) in str(refused.value)


def test_a_kpi_is_coloured_only_against_a_target_it_has(desk, day) -> None:
    report = compute(all_facts(desk), at(23, 0, 0), at(24, 0, 0), desk.config.first_line,
                     targets=Targets(aht_seconds=1200.0))
    assert report.kpi("flr").met is None  # no FLR target by default
    assert report.kpi("aht").met is False  # 1305 s against at most 1200 s
