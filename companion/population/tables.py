"""What synthetic rows fill, table by table (`TABLES`), and how a value is written in COPY text."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from companion.domain import drinking, plans

NULL = "\\N"

#: The columns synthetic rows fill, table by table, in COPY order; every other column takes its default.
#: `change_seq` is last wherever a table has it (tests strip it to compare members' rows).
TABLES: dict[str, tuple[str, ...]] = {
    "users": ("id", "email", "password_hash", "display_name", "role", "created_at"),
    "members": (
        "id",
        "timezone",
        "country",
        "sex",
        "goal_type",
        "weekly_limit",
        "insurer_id",
        "outcome_sharing",
        "consents_updated_at",
        "log_time",
        "muted_kinds",
        "enrolled_at",
        "updated_at",
    ),
    "coach_assignments": ("id", "member_id", "coach_id", "started_at"),
    "medication_plans": (
        "id",
        "member_id",
        "medication",
        "dose_mg",
        "times",
        "start_date",
        "end_date",
        "steps",
        "created_by",
        "created_at",
        "updated_at",
        "change_seq",
    ),
    "drink_logs": (
        "member_id",
        "date",
        "grams_ethanol",
        "entered_standard_drinks",
        "drinks",
        "heavy",
        "source",
        "created_at",
        "updated_at",
        "server_updated_at",
        "deleted_at",
        "change_seq",
    ),
    "cravings": (
        "member_id",
        "id",
        "recorded_at",
        "date",
        "intensity",
        "triggers",
        "created_at",
        "change_seq",
    ),
    "medication_checkins": (
        "member_id",
        "id",
        "plan_id",
        "scheduled_for",
        "date",
        "status",
        "taken_at",
        "created_at",
        "change_seq",
    ),
    "side_effect_reports": ("member_id", "checkin_id", "medication", "date", "code", "severity"),
    "bac_readings": (
        "member_id",
        "id",
        "measured_at",
        "date",
        "bac_g_dl",
        "device_model",
        "created_at",
        "change_seq",
    ),
    "pacs_reports": ("member_id", "id", "week_of", "items", "total", "created_at", "change_seq"),
    "flags": (
        "id",
        "member_id",
        "rule",
        "rule_version",
        "tier",
        "status",
        "evidence",
        "summary",
        "symptoms",
        "medications",
        "first_seen",
        "last_seen",
        "created_at",
        "updated_at",
        "acknowledged_at",
        "resolved_at",
        "resolution_note",
        "assigned_coach_id",
    ),
    "messages": ("id", "member_id", "sender_id", "body", "created_at", "change_seq"),
    "devices": ("id", "member_id", "platform", "push_token", "active", "created_at", "last_seen_at"),
}
#: People first (day rows point at them), then what happens day by day.
PEOPLE_TABLES = ("users", "members", "coach_assignments", "medication_plans")
DAY_TABLES = (
    "drink_logs",
    "cravings",
    "medication_checkins",
    "side_effect_reports",
    "bac_readings",
    "pacs_reports",
)

#: An id, a day or an instant: the value, or its COPY text already written.
Id = uuid.UUID | str
Day = date | str
Instant = datetime | str
Amount = Decimal | int | str
Write = Callable[[str, str], None]


def columns(table: str) -> str:
    """The column list a COPY of `table` names."""
    return ", ".join(TABLES[table])


def _array(values: Iterable[object]) -> str:
    return "{" + ",".join([text(v) for v in values]) + "}"


def _bool(value: bool) -> str:
    return "t" if value else "f"


#: How each type of value is written, looked up by exact type (the load's hot path).
_FORMATS: dict[type, Callable[[Any], str]] = {
    str: str,
    uuid.UUID: str,
    int: str,
    Decimal: str,
    float: str,
    bool: _bool,
    date: date.isoformat,
    datetime: datetime.isoformat,
    time: time.isoformat,
    list: _array,
    tuple: _array,
}


def text(value: object) -> str:
    """`value` as COPY text."""
    if value is None:
        return NULL
    write = _FORMATS.get(type(value))
    if write is not None:
        return write(value)
    if isinstance(value, bool):
        return _bool(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, list | tuple | frozenset | set):
        return _array(value)
    return str(value)


def line(*values: object) -> str:
    return "\t".join([text(v) for v in values]) + "\n"


def hhmm(times: Iterable[time]) -> list[str]:
    return [t.strftime("%H:%M") for t in times]


def steps_json(steps: Iterable[plans.PlanStep]) -> str:
    """A plan's steps as the `steps` column holds them (as `medications.services` stores them: `taper`
    only on a step the coach marked)."""
    stored: list[dict[str, object]] = []
    for step in steps:
        one: dict[str, object] = {
            "from_date": step.from_date.isoformat(),
            "dose_mg": str(step.dose_mg),
            "times": hhmm(step.times),
        }
        if step.taper:
            one["taper"] = True
        stored.append(one)
    return json.dumps(stored)


def drinks_json(items: Sequence[drinking.DrinkItem]) -> str:
    """Drinks as entered, as the `drinks` column holds them."""
    return json.dumps(
        [
            {
                "kind": i.kind.value,
                "volume_ml": i.volume_ml,
                "abv_percent": str(i.abv_percent),
                "count": i.count,
            }
            for i in items
        ]
    )


def random_id(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from a seeded `random.Random` (the same seed, the same ids)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)
