"""Field types and validators shared by every schema. Marshmallow 4: validators raise, never return False."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from iso3166 import countries_by_alpha2
from marshmallow import Schema, ValidationError, fields, pre_load

#: Quiet hours, reminder times: "HH:MM", 24-hour clock.
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


@cache
def iana_zones() -> frozenset[str]:
    return frozenset(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")


def validate_timezone(value: str) -> None:
    if value not in iana_zones():
        raise ValidationError("Not an IANA time zone (for example 'America/New_York').")


def validate_country(value: str) -> None:
    if value not in countries_by_alpha2:
        raise ValidationError("Not an ISO 3166-1 alpha-2 country code (for example 'US').")


def at_most_places(places: int, message: str | None = None):  # type: ignore[no-untyped-def]
    """A Decimal validator: no more than `places` decimals ("step 0.1" is places=1)."""
    quantum = Decimal(1).scaleb(-places)
    text = message or (f"Must be a multiple of {quantum}." if places else "Must be a whole number.")

    def check(value: Decimal) -> None:
        try:
            exact = value == value.quantize(quantum)
        except InvalidOperation:  # too many digits to round at all: the range check names the problem
            return
        if not exact:
            raise ValidationError(text)

    return check


class HourMinute(fields.Field):
    """A local wall-clock time as "HH:MM"."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("type", "string")
        kwargs["metadata"].setdefault("pattern", HHMM_PATTERN)
        kwargs["metadata"].setdefault("example", "20:00")
        super().__init__(**kwargs)

    def _serialize(self, value: time | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.strftime("%H:%M")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
            raise ValidationError('Must be a time of day as "HH:MM".')
        try:
            hours, minutes = int(value[:2]), int(value[3:])
            return time(hours, minutes)
        except ValueError as exc:
            raise ValidationError('Must be a time of day as "HH:MM".') from exc


#: Instants outside these years are typing mistakes, and near year 1 or 9999 local-time arithmetic overflows.
EARLIEST_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2100, 1, 1, tzinfo=UTC)


class Instant(fields.AwareDateTime):
    """An instant that must carry its offset; answered in UTC with `Z` (API.md conventions)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        instant = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_INSTANT <= instant < LATEST_INSTANT:
            raise ValidationError("Must be between the years 2000 and 2099.")
        return instant

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _nul_errors(value: Any) -> Any:
    """Fields (nested as marshmallow nests errors) whose strings hold a NUL: PostgreSQL cannot store one."""
    if isinstance(value, str):
        return ["Must not contain NUL characters."] if "\x00" in value else None
    if isinstance(value, dict):
        found = {str(k): e for k, v in value.items() if (e := _nul_errors(v)) is not None}
        found.update(
            {
                str(k): ["Must not contain NUL characters."]
                for k in value
                if isinstance(k, str) and "\x00" in k
            }
        )
        return found or None
    if isinstance(value, list):
        found = {i: e for i, v in enumerate(value) if (e := _nul_errors(v)) is not None}
        return found or None
    return None


class StrictSchema(Schema):
    """Inbound bodies: an unknown field is a 422 that names it (API.md), never silently dropped."""

    class Meta:
        unknown = "raise"

    #: A schema whose parts are validated one by one later (a sync batch) leaves NULs to them.
    refuse_nul = True

    @pre_load
    def _refuse_nul(self, data: Any, **_: Any) -> Any:
        errors = _nul_errors(data) if self.refuse_nul and isinstance(data, dict) else None
        if errors:
            raise ValidationError(errors)
        return data


def one_error(field_name: str, message: str) -> ValidationError:
    return ValidationError({field_name: [message]})


#: Messages by field name; a nested field (an object, a list) has its own errors by name or index.
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Messages by field name; a nested field has its own errors, by name or list index.",
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"$ref": "#/components/schemas/FieldErrors"},
        ]
    },
}


def field_errors(description: str, **kwargs: Any) -> fields.Dict:
    """Messages by field name, as an error's `fields` and a sync result's `errors` carry them
    (the `FieldErrors` component: FIELD_ERRORS_SCHEMA)."""
    return fields.Dict(
        metadata={
            "description": description,
            "optional": True,
            "additionalProperties": FIELD_ERRORS_SCHEMA["additionalProperties"],
        },
        **kwargs,
    )


def stored_record(description: str, **kwargs: Any) -> fields.Raw:
    """On a conflict: the stored record, as its own GET answers it (one of these schemas)."""
    return fields.Raw(
        metadata={
            "optional": True,
            "description": description,
            "anyOf": [
                {"$ref": f"#/components/schemas/{name}"}
                for name in ("Checkin", "Flag", "BacReading", "Craving", "DrinkLog")
            ],
        },
        **kwargs,
    )
