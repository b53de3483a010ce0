"""SLA calendars and the SLA pause while waiting on the caller.

Every expected instant is computed by hand and written literally. Moscow is UTC+3 all year
(no DST), so 09:00-18:00 MSK is 06:00-15:00 UTC. Dates used:
  2026-11-03 Tue, 2026-11-04 Wed (Unity Day, a holiday), 2026-11-05 Thu,
  2026-11-23 Mon ... 2026-11-27 Fri, 2026-11-28 Sat, 2026-11-29 Sun, 2026-11-30 Mon,
  2026-12-30 Wed, 2026-12-31 Thu (holiday), 2027-01-01..08 (holidays), 2027-01-11 Mon.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from opconsole.config import Config
from opconsole.errors import ConfigError
from opconsole.services import Desk
from opconsole.sla import AlwaysOpen, BusinessHours

UTC = timezone.utc
MSK = ZoneInfo("Europe/Moscow")
HOUR = 3600


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def business(config: Config) -> BusinessHours:
    """The bundled business calendar, as the P3 and P4 targets use it."""
    calendar = config.sla["P3"].calendar
    assert isinstance(calendar, BusinessHours)
    return calendar


@pytest.fixture
def direct() -> BusinessHours:
    """The same calendar built by hand, with only the one holiday these tests need."""
    return BusinessHours(
        name="msk", timezone=MSK, opens=time(9, 0), closes=time(18, 0),
        weekdays=frozenset({0, 1, 2, 3, 4}), holidays=frozenset({date(2026, 11, 4)}),
    )


# --- the bundled configuration -------------------------------------------------------------------


def test_bundled_calendars(config: Config, business: BusinessHours):
    assert isinstance(config.sla["P1"].calendar, AlwaysOpen)
    assert isinstance(config.sla["P2"].calendar, AlwaysOpen)
    assert config.sla["P4"].calendar is business
    assert business.timezone == MSK
    assert (business.opens, business.closes) == (time(9, 0), time(18, 0))
    assert business.weekdays == frozenset({0, 1, 2, 3, 4})
    assert {date(2026, 11, 4), date(2026, 12, 31), date(2027, 1, 8)} <= business.holidays
    assert (config.sla["P3"].response_minutes, config.sla["P3"].resolution_minutes) == (60, 1080)


# --- BusinessHours.add ---------------------------------------------------------------------------

ADD_CASES = [
    # (start UTC, seconds, expected UTC, what it shows)
    (utc(2026, 11, 27, 14, 0), 2 * HOUR, utc(2026, 11, 30, 7, 0),
     "Fri 17:00 MSK + 2h: 1h on Friday, weekend skipped, Mon 10:00 MSK"),
    (utc(2026, 11, 3, 14, 30), 1 * HOUR, utc(2026, 11, 5, 6, 30),
     "Tue 17:30 MSK + 1h: 0.5h Tuesday, Wed Nov 4 holiday, Thu 09:30 MSK"),
    (utc(2026, 11, 28, 9, 0), 3 * HOUR, utc(2026, 11, 30, 9, 0),
     "Sat 12:00 MSK + 3h: starts Mon 09:00, ends Mon 12:00 MSK"),
    (utc(2026, 11, 29, 20, 59), 1 * HOUR, utc(2026, 11, 30, 7, 0),
     "Sun 23:59 MSK + 1h: Mon 10:00 MSK"),
    (utc(2026, 11, 29, 21, 30), 1 * HOUR, utc(2026, 11, 30, 7, 0),
     "Sun 21:30 UTC is already Mon 00:30 MSK: Mon 10:00 MSK"),
    (utc(2026, 11, 23, 4, 0), 1 * HOUR, utc(2026, 11, 23, 7, 0),
     "Mon 07:00 MSK, before opening + 1h: Mon 10:00 MSK"),
    (utc(2026, 11, 27, 17, 0), 1 * HOUR, utc(2026, 11, 30, 7, 0),
     "Fri 20:00 MSK, after closing + 1h: Mon 10:00 MSK"),
    (utc(2026, 11, 23, 15, 0), 1 * HOUR, utc(2026, 11, 24, 7, 0),
     "Mon 18:00 MSK, exactly at closing + 1h: Tue 10:00 MSK"),
    (utc(2026, 11, 23, 14, 0), 1 * HOUR, utc(2026, 11, 23, 15, 0),
     "Mon 17:00 MSK + 1h ends exactly at closing, Mon 18:00 MSK, not the next morning"),
    (utc(2026, 11, 23, 6, 0), 9 * HOUR, utc(2026, 11, 23, 15, 0),
     "Mon 09:00 MSK + a full 9h day: Mon 18:00 MSK"),
    (utc(2026, 11, 23, 6, 30), 0, utc(2026, 11, 23, 6, 30),
     "zero seconds in working hours: the same instant"),
    (utc(2026, 11, 23, 6, 30), 18 * HOUR, utc(2026, 11, 25, 6, 30),
     "Mon 09:30 MSK + 18h (P3): 8.5h Mon, 9h Tue, 0.5h Wed: Wed 09:30 MSK"),
    (utc(2026, 11, 23, 6, 30), 45 * HOUR, utc(2026, 11, 30, 6, 30),
     "Mon 09:30 MSK + 45h (P4): 8.5 + 4 x 9 + 0.5: next Mon 09:30 MSK"),
    (utc(2026, 11, 3, 6, 0), 18 * HOUR, utc(2026, 11, 5, 15, 0),
     "Tue 09:00 MSK + 18h: Tue 9h, Wed holiday, Thu 9h: Thu 18:00 MSK"),
    (utc(2026, 11, 27, 14, 0), 9 * HOUR, utc(2026, 11, 30, 14, 0),
     "Fri 17:00 MSK + 9h: 1h Fri, 8h Mon: Mon 17:00 MSK"),
]


@pytest.mark.parametrize("start, seconds, expected, why", ADD_CASES, ids=[c[3] for c in ADD_CASES])
def test_business_add(business: BusinessHours, start: datetime, seconds: int, expected: datetime, why: str):
    due = business.add(start, seconds)
    assert due == expected, why
    assert due.tzinfo is UTC
    assert due.utcoffset() == timedelta(0)


@pytest.mark.parametrize("start, seconds, expected, why", ADD_CASES[:3], ids=[c[3] for c in ADD_CASES[:3]])
def test_directly_built_calendar_agrees(direct: BusinessHours, start, seconds, expected, why):
    assert direct.add(start, seconds) == expected, why


def test_add_across_the_new_year_holidays(business: BusinessHours):
    # Wed Dec 30 17:00 MSK + 2h: 1h Wed; Dec 31 and Jan 1-8 holidays, Jan 9-10 weekend; Mon Jan 11 10:00 MSK
    assert business.add(utc(2026, 12, 30, 14, 0), 2 * HOUR) == utc(2027, 1, 11, 7, 0)


def test_add_with_a_moscow_aware_start_gives_the_same_instant(business: BusinessHours):
    start = datetime(2026, 11, 27, 17, 0, tzinfo=MSK)  # Friday 17:00 MSK
    due = business.add(start, 2 * HOUR)
    assert due == utc(2026, 11, 30, 7, 0)
    assert due.utcoffset() is not None


def test_add_across_a_dst_change():
    berlin = BusinessHours(name="ber", timezone=ZoneInfo("Europe/Berlin"), opens=time(9), closes=time(18),
                           weekdays=frozenset(range(5)))
    # Fri 2026-10-23 17:00 CEST (15:00 UTC) + 2h; clocks go back Sun Oct 25; Mon 10:00 CET = 09:00 UTC
    assert berlin.add(utc(2026, 10, 23, 15, 0), 2 * HOUR) == utc(2026, 10, 26, 9, 0)
    assert berlin.between(utc(2026, 10, 23, 15, 0), utc(2026, 10, 26, 9, 0)) == 2 * HOUR


# --- BusinessHours.between ------------------------------------------------------------------------

BETWEEN_CASES = [
    (utc(2026, 11, 27, 14, 0), utc(2026, 11, 30, 7, 0), 2 * HOUR, "Fri 17:00 -> Mon 10:00 MSK over a weekend"),
    (utc(2026, 11, 3, 14, 30), utc(2026, 11, 5, 6, 30), 1 * HOUR, "Tue 17:30 -> Thu 09:30 MSK over the Nov 4 holiday"),
    (utc(2026, 11, 23, 6, 0), utc(2026, 11, 30, 6, 0), 5 * 9 * HOUR, "a whole working week"),
    (utc(2026, 11, 2, 6, 0), utc(2026, 11, 9, 6, 0), 4 * 9 * HOUR, "a week with the Nov 4 holiday"),
    (utc(2026, 11, 23, 7, 0), utc(2026, 11, 23, 9, 30), 9000, "Mon 10:00 -> 12:30 MSK"),
    (utc(2026, 11, 28, 6, 0), utc(2026, 11, 29, 15, 0), 0, "Saturday to Sunday"),
    (utc(2026, 11, 27, 17, 0), utc(2026, 11, 30, 5, 0), 0, "Fri 20:00 -> Mon 08:00 MSK"),
    (utc(2026, 11, 23, 15, 0), utc(2026, 11, 24, 6, 0), 0, "closing to next opening"),
    (utc(2026, 11, 4, 6, 0), utc(2026, 11, 4, 15, 0), 0, "the whole holiday"),
    (utc(2026, 11, 23, 9, 0), utc(2026, 11, 23, 9, 0), 0, "an empty interval"),
    (utc(2026, 11, 24, 9, 0), utc(2026, 11, 23, 9, 0), 0, "end before start"),
    (utc(2026, 12, 30, 14, 0), utc(2027, 1, 11, 7, 0), 2 * HOUR, "over the new year holidays"),
]


@pytest.mark.parametrize("start, end, expected, why", BETWEEN_CASES, ids=[c[3] for c in BETWEEN_CASES])
def test_business_between(business: BusinessHours, start: datetime, end: datetime, expected: int, why: str):
    assert business.between(start, end) == expected, why


def test_directly_built_between(direct: BusinessHours):
    assert direct.between(utc(2026, 11, 27, 14, 0), utc(2026, 11, 30, 7, 0)) == 2 * HOUR
    assert direct.between(utc(2026, 11, 3, 14, 30), utc(2026, 11, 5, 6, 30)) == 1 * HOUR


# --- calendar validation and AlwaysOpen -------------------------------------------------------------


def test_business_hours_must_open_before_closing():
    with pytest.raises(ConfigError, match="opens at 18:00:00 but closes at 09:00:00"):
        BusinessHours(name="bad", timezone=MSK, opens=time(18), closes=time(9), weekdays=frozenset({0}))


def test_business_hours_need_a_working_day():
    with pytest.raises(ConfigError, match="no working days"):
        BusinessHours(name="bad", timezone=MSK, opens=time(9), closes=time(18), weekdays=frozenset())


def test_always_open_arithmetic():
    always = AlwaysOpen()
    saturday_noon = utc(2026, 11, 28, 9, 0)
    assert always.add(saturday_noon, HOUR) == utc(2026, 11, 28, 10, 0)
    assert always.add(utc(2026, 11, 27, 20, 50), 15 * 60) == utc(2026, 11, 27, 21, 5)
    assert always.add(utc(2026, 11, 23, 6, 30), 480 * 60) == utc(2026, 11, 23, 14, 30)
    assert always.add(saturday_noon, 0) == saturday_noon
    assert always.between(utc(2026, 11, 27, 14, 0), utc(2026, 11, 30, 7, 0)) == 65 * HOUR
    assert always.between(utc(2026, 11, 30, 7, 0), utc(2026, 11, 27, 14, 0)) == 0
    assert always.between(saturday_noon, saturday_noon) == 0


# --- the SLA pause while waiting on the caller -------------------------------------------------------


def test_wait_moves_the_resolution_due_by_the_working_seconds_paused(desk: Desk, clock):
    ticket = desk.register(subject="Outlook asks for a password")  # Mon 09:30 MSK, P3
    assert ticket.response_due == utc(2026, 11, 23, 7, 30)
    assert ticket.resolution_due == utc(2026, 11, 25, 6, 30)
    clock.advance(minutes=10)
    desk.take(ticket.key)
    clock.advance(minutes=20)  # Mon 10:00 MSK
    waiting = desk.wait(ticket.key, "caller is in a meeting")
    assert waiting.resolution_due == utc(2026, 11, 25, 6, 30)  # not moved until the wait ends
    clock.advance(hours=3)  # Mon 13:00 MSK
    back = desk.take(ticket.key)
    assert back.paused_seconds == 3 * HOUR
    assert back.resolution_due == utc(2026, 11, 25, 9, 30)  # Wed 12:30 MSK
    assert back.sla_due == back.resolution_due
    assert back.response_due == utc(2026, 11, 23, 7, 30)
    assert desk.ticket(ticket.key) == back


def test_pauses_add_up(desk: Desk, clock):
    key = desk.register(subject="Outlook asks for a password").key
    clock.advance(minutes=10)
    desk.take(key)
    clock.advance(minutes=20)  # Mon 10:00 MSK
    desk.wait(key, "meeting")
    clock.advance(hours=3)  # 13:00
    desk.take(key)
    clock.advance(hours=1)  # 14:00
    desk.wait(key, "lunch")
    clock.advance(minutes=90)  # 15:30
    back = desk.take(key)
    assert back.paused_seconds == 4 * HOUR + 30 * 60
    # 18h + 4.5h = 22.5h from Mon 09:30 MSK: 8.5 + 9 + 5 -> Wed 14:00 MSK
    assert back.resolution_due == utc(2026, 11, 25, 11, 0)
    assert back.response_due == utc(2026, 11, 23, 7, 30)


def test_a_pause_over_a_weekend_counts_only_business_hours(desk: Desk, clock):
    clock.now = utc(2026, 11, 27, 13, 0)  # Friday 16:00 MSK
    ticket = desk.register(subject="Scanner does not send to folder")
    assert ticket.response_due == utc(2026, 11, 27, 14, 0)
    # 18h: Fri 2h, Mon 9h, Tue 7h -> Tue 16:00 MSK
    assert ticket.resolution_due == utc(2026, 12, 1, 13, 0)
    clock.advance(minutes=10)
    desk.take(ticket.key)
    clock.now = utc(2026, 11, 27, 14, 0)  # Friday 17:00 MSK
    desk.wait(ticket.key, "caller will try on Monday")
    clock.advance(hours=66)  # Monday 11:00 MSK
    assert clock.now == utc(2026, 11, 30, 8, 0)
    back = desk.take(ticket.key)
    assert back.paused_seconds == 3 * HOUR  # Fri 17-18 and Mon 09-11
    # 21h: Fri 2h, Mon 9h, Tue 9h, Wed 1h -> Wed 10:00 MSK
    assert back.resolution_due == utc(2026, 12, 2, 7, 0)
    assert back.response_due == utc(2026, 11, 27, 14, 0)


def test_a_pause_over_a_holiday_counts_only_business_hours(desk: Desk, clock):
    clock.now = utc(2026, 11, 3, 6, 0)  # Tuesday 09:00 MSK
    ticket = desk.register(subject="Shared folder denied")
    assert ticket.resolution_due == utc(2026, 11, 5, 15, 0)  # Tue 9h, Wed holiday, Thu 9h
    clock.advance(minutes=10)
    desk.take(ticket.key)
    clock.now = utc(2026, 11, 3, 14, 0)  # Tuesday 17:00 MSK
    desk.wait(ticket.key, "manager must approve")
    clock.now = utc(2026, 11, 5, 7, 0)  # Thursday 10:00 MSK
    back = desk.take(ticket.key)
    assert back.paused_seconds == 2 * HOUR  # Tue 17-18 and Thu 09-10
    # 20h: Tue 9h, Thu 9h, Fri 2h -> Fri 11:00 MSK
    assert back.resolution_due == utc(2026, 11, 6, 8, 0)
    assert back.response_due == utc(2026, 11, 3, 7, 0)


def test_a_pause_outside_business_hours_moves_nothing(desk: Desk, clock):
    key = desk.register(subject="Printer offline").key
    clock.advance(minutes=5)
    desk.take(key)
    clock.now = utc(2026, 11, 23, 15, 30)  # Monday 18:30 MSK
    desk.wait(key, "store closed")
    clock.now = utc(2026, 11, 24, 5, 30)  # Tuesday 08:30 MSK
    back = desk.take(key)
    assert back.paused_seconds == 0
    assert back.resolution_due == utc(2026, 11, 25, 6, 30)
    event = desk.history(key)[-1]
    assert event.changes == {"status": ["waiting_on_caller", "in_progress"],
                             "waiting_since": ["2026-11-23T15:30:00.000Z", None]}


def test_a_pause_on_a_24x7_ticket_counts_every_second(desk: Desk, clock):
    ticket = desk.register(subject="Store offline", impact="high", urgency="high")  # P1
    assert ticket.response_due == utc(2026, 11, 23, 6, 45)
    assert ticket.resolution_due == utc(2026, 11, 23, 10, 30)
    clock.advance(minutes=5)
    desk.take(ticket.key)
    clock.now = utc(2026, 11, 23, 7, 0)
    desk.wait(ticket.key, "waiting for the ISP technician")
    clock.now = utc(2026, 11, 23, 21, 0)  # 14h later, mostly outside business hours
    back = desk.take(ticket.key)
    assert back.paused_seconds == 14 * HOUR
    assert back.resolution_due == utc(2026, 11, 24, 0, 30)
    assert back.response_due == utc(2026, 11, 23, 6, 45)
