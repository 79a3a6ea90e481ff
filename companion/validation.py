"""Field types and validators shared by every schema. Marshmallow 4: validators raise, never return False."""

from __future__ import annotations

import json
import re
import zoneinfo
from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from flask import g, has_app_context
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


def at_most_places(places: int, message: str | None = None):
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


#: A NUL (PostgreSQL cannot store one) or a lone UTF-16 surrogate (half an emoji: no UTF-8 exists for it).
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
NUL_MESSAGE = "Must not contain NUL characters."
SURROGATE_MESSAGE = "Must be valid Unicode text (a lone UTF-16 surrogate, such as half an emoji, is not)."

#: Limits of any JSON body, checked in one pass right after it is parsed (companion.api.require_json_object).
MAX_BODY_DEPTH = 32
MAX_BODY_KEYS = 256
MAX_BODY_STRING = 10_000


class TooDeep(ValueError):
    """A JSON body nested deeper than MAX_BODY_DEPTH arrays and objects."""


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None: NUL characters and lone surrogates."""
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    return NUL_MESSAGE if found.group() == "\x00" else SURROGATE_MESSAGE


#: How a NUL or a lone surrogate can reach a string parsed from UTF-8 JSON: as a \u escape, or as a
#: surrogate encoded in UTF-8 (the json module decodes with surrogatepass). Raw control characters are
#: refused by the parser. A pair of escapes (an emoji written as \ud83d\ude00) matches too: that body is
#: walked as before.
_BAD_TEXT_SOURCE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")


def text_is_clean(raw: bytes) -> bool:
    """True when no string parsed from the JSON text `raw` can hold a NUL or a lone surrogate: the parts
    of such a body (a sync batch's items) need no walk for bad text of their own."""
    return json.detect_encoding(raw) == "utf-8" and _BAD_TEXT_SOURCE.search(raw) is None


def printable_key(key: str) -> str:
    """A field name safe to echo in an error: its lone surrogates and NULs written as escapes."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def body_errors(value: Any, *, skip: str | None = None) -> Any:
    """One walk over a parsed JSON body: raises TooDeep past MAX_BODY_DEPTH levels; returns the errors of
    its strings (invalid text, too long) and objects (too many keys), nested as marshmallow nests them,
    or None. `skip` names a top-level list whose items are checked later, one by one (a sync batch)."""
    if isinstance(value, dict) and skip is not None and isinstance(value.get(skip), list):
        _check_depth_only(value[skip], 2)
        value = {k: v for k, v in value.items() if k != skip}
    return _walk(value, 1)


def _walk(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_BODY_STRING:
            return [f"At most {MAX_BODY_STRING} characters."]
        problem = text_problem(value)
        return None if problem is None else [problem]
    if isinstance(value, dict):
        if depth > MAX_BODY_DEPTH:
            raise TooDeep
        if len(value) > MAX_BODY_KEYS:
            return [f"At most {MAX_BODY_KEYS} keys."]
        found: dict[Any, Any] = {}
        for key, item in value.items():
            problem = text_problem(key)
            if problem is not None:
                found[printable_key(key)] = [f"This field name: {problem[0].lower()}{problem[1:]}"]
            elif (error := _walk(item, depth + 1)) is not None:
                found[key] = error
        return found or None
    if isinstance(value, list):
        if depth > MAX_BODY_DEPTH:
            raise TooDeep
        found = {}
        for index, item in enumerate(value):
            if (error := _walk(item, depth + 1)) is not None:
                found[index] = error
        return found or None
    return None


def _check_depth_only(value: Any, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth > MAX_BODY_DEPTH:
            raise TooDeep
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, dict | list):  # scalars end here (a batch holds thousands of them)
                _check_depth_only(item, depth + 1)


def _text_errors(value: Any) -> Any:
    """Fields (nested as marshmallow nests errors) whose strings cannot be stored as text."""
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else [problem]
    if isinstance(value, dict):
        found = {str(k): e for k, v in value.items() if (e := _text_errors(v)) is not None}
        found.update(
            {
                printable_key(k): [f"This field name: {problem[0].lower()}{problem[1:]}"]
                for k in value
                if isinstance(k, str) and (problem := text_problem(k)) is not None
            }
        )
        return found or None
    if isinstance(value, list):
        found = {i: e for i, v in enumerate(value) if (e := _text_errors(v)) is not None}
        return found or None
    return None


def checked_body() -> Any:
    """The request's JSON body once require_json_object has parsed and checked it, else None."""
    return g.get("json_body") if has_app_context() else None


def body_text_is_clean() -> bool:
    """The request's JSON body was found free of bad text in its source (`text_is_clean`)."""
    return has_app_context() and bool(g.get("json_body_text_clean"))


class StrictSchema(Schema):
    """Inbound bodies: an unknown field is a 422 that names it (API.md), never silently dropped."""

    class Meta:
        unknown = "raise"

    #: A schema whose parts are validated one by one later (a sync batch) leaves bad text to them.
    refuse_nul = True

    @pre_load
    def _refuse_bad_text(self, data: Any, **_: Any) -> Any:
        if not self.refuse_nul or not isinstance(data, dict) or data is checked_body():
            return data  # the JSON body was checked as it was parsed (body_errors)
        if body_text_is_clean():
            return data  # a part of a body whose source holds no bad text (a sync item)
        errors = _text_errors(data)
        if errors:
            raise ValidationError(errors)
        return data


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
                for name in ("Checkin", "Flag", "BacReading", "Craving", "DrinkLog", "SymptomReport", "Pacs")
            ],
        },
        **kwargs,
    )
