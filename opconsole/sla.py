"""SLA calendars: how much working time lies between two instants, and when a target falls due.

All instants are timezone-aware datetimes; a calendar converts to its own time zone to find its
working windows. A business-hours calendar skips weekends and holidays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterator, Protocol
from zoneinfo import ZoneInfo

from opconsole.errors import ConfigError

MAX_SEARCH_DAYS = 3 * 366  # a calendar without a working day in three years is misconfigured


class Calendar(Protocol):
    name: str

    def add(self, start: datetime, seconds: int) -> datetime:
        """The instant at which `seconds` of working time have elapsed since `start`."""

    def between(self, start: datetime, end: datetime) -> int:
        """Working seconds between two instants (0 if end precedes start)."""


@dataclass(frozen=True)
class AlwaysOpen:
    name: str = "24x7"

    def add(self, start: datetime, seconds: int) -> datetime:
        return start + timedelta(seconds=seconds)

    def between(self, start: datetime, end: datetime) -> int:
        return max(0, int((end - start).total_seconds()))


@dataclass(frozen=True)
class BusinessHours:
    name: str
    timezone: ZoneInfo
    opens: time
    closes: time
    weekdays: frozenset[int]  # Monday is 0
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.opens >= self.closes:
            raise ConfigError(f"calendar {self.name}: opens at {self.opens} but closes at {self.closes}")
        if not self.weekdays:
            raise ConfigError(f"calendar {self.name}: no working days")

    def windows(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows (open, close) in order, starting with the day that contains `since`."""
        day = since.astimezone(self.timezone).date()
        for _ in range(MAX_SEARCH_DAYS):
            if day.weekday() in self.weekdays and day not in self.holidays:
                yield (
                    datetime.combine(day, self.opens, tzinfo=self.timezone),
                    datetime.combine(day, self.closes, tzinfo=self.timezone),
                )
            day += timedelta(days=1)
        raise ConfigError(f"calendar {self.name}: no working day within {MAX_SEARCH_DAYS} days")

    def add(self, start: datetime, seconds: int) -> datetime:
        remaining = timedelta(seconds=seconds)
        for opens, closes in self.windows(start):
            begin = max(opens, start)
            if begin >= closes:
                continue
            if begin + remaining <= closes:
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= closes - begin
        raise AssertionError("unreachable: windows() raises first")

    def between(self, start: datetime, end: datetime) -> int:
        total = timedelta()
        if end <= start:
            return 0
        for opens, closes in self.windows(start):
            if opens >= end:
                break
            overlap = min(closes, end) - max(opens, start)
            if overlap > timedelta():
                total += overlap
        return int(total.total_seconds())
