"""Local calendar days and wall-clock times in a member's IANA zone, with explicit DST rules.

A `date` in the API is always the member's local date; instants are stored in UTC. Scheduling a
wall-clock time (a dose at 02:30, a reminder at 20:00) on a local day must fire exactly once, even on
the days the clocks change:

* **Gap** (spring forward: 02:30 does not exist on the US spring-forward day): the time is read with
  the offset in force *before* the gap, which moves it forward by the gap's length (02:30 EST =
  03:30 EDT). This is RFC 5545's rule for non-existent local times (section 3.3.5) and what `zoneinfo`
  does with `fold=0`.
* **Ambiguous** (fall back: 01:30 happens twice on the US fall-back day): the *first* occurrence
  (`fold=0`, still daylight time) is used, so it fires once, not twice.

Unknown zone names raise `zoneinfo.ZoneInfoNotFoundError` (a KeyError); the API validates zones.
"""

from __future__ import annotations

import enum
import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class WallTimeKind(enum.StrEnum):
    """How a wall-clock time exists on a local day."""

    NORMAL = "normal"
    #: Skipped by a spring-forward transition.
    GAP = "gap"
    #: Repeated by a fall-back transition.
    AMBIGUOUS = "ambiguous"


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")


def _require_naive(wall: time) -> None:
    if wall.tzinfo is not None:
        raise ValueError("wall-clock time must be naive (it is read in the member's zone)")


def to_utc(instant: datetime) -> datetime:
    """The same instant with tzinfo=UTC, so instants from any offset compare and hash alike."""
    if instant.tzinfo is UTC:  # the common case, and already aware
        return instant
    _require_aware(instant)
    return instant.astimezone(UTC)


def local_date(instant: datetime, zone: str) -> date:
    """The member's local calendar date at `instant`.

    :raises ValueError: `instant` is naive (its meaning would depend on the server's zone).
    """
    _require_aware(instant)
    return instant.astimezone(ZoneInfo(zone)).date()


def wall_time_kind(day: date, wall: time, zone: str) -> WallTimeKind:
    """Whether `wall` on `day` is a normal, skipped (gap) or repeated (ambiguous) local time."""
    _require_naive(wall)
    tz = ZoneInfo(zone)
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return WallTimeKind.NORMAL
    # In a gap, neither reading survives a round trip through UTC unchanged.
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return WallTimeKind.GAP
    return WallTimeKind.AMBIGUOUS


@functools.lru_cache(maxsize=65536)  # pure; members planned together share days, times and zones
def local_to_utc(day: date, wall: time, zone: str) -> datetime:
    """The UTC instant at which wall-clock `wall` on local `day` happens, firing exactly once.

    A time in a spring-forward gap moves forward by the gap's length; a repeated time maps to its
    first occurrence (see the module docstring). The result is aware, tzinfo=UTC, and its local date
    is `day` in every zone whose transitions do not skip a whole day.
    """
    _require_naive(wall)
    # zoneinfo with fold=0 is exactly the rule above: in a gap it uses the offset before the
    # transition; in a repeated hour it picks the first occurrence.
    return datetime.combine(day, wall).replace(tzinfo=ZoneInfo(zone), fold=0).astimezone(UTC)


def day_bounds_utc(day: date, zone: str) -> tuple[datetime, datetime]:
    """Half-open [start, end) UTC instants of local `day`: 24 hours, or 23/25 on DST days."""
    midnight = time(0, 0)
    return local_to_utc(day, midnight, zone), local_to_utc(day + timedelta(days=1), midnight, zone)
