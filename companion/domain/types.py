"""Small value types shared across the domain modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive range of local calendar dates: every window in DOMAIN.md counts whole local days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"empty date range {self.start}..{self.end}")

    @classmethod
    def ending(cls, end: date, days: int) -> DateRange:
        """The `days` days up to and including `end` (`ending(today, 7)` is "the last 7 days")."""
        if days < 1:
            raise ValueError("a date range has at least one day")
        return cls(end - timedelta(days=days - 1), end)

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    def days(self) -> Iterator[date]:
        """Each date, oldest first."""
        return (self.start + timedelta(days=n) for n in range(self.length))

    def __contains__(self, day: object) -> bool:
        # A datetime is a date too, but comparing one with a date raises: it is never in a range.
        return isinstance(day, date) and not isinstance(day, datetime) and self.start <= day <= self.end
