"""A member's timeline (API.md "Coach") and the dashboard's story: their records and flags in time order,
one query per kind of record, a page at a time. Every read writes the audit log.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    DateTime,
    Numeric,
    String,
    Uuid,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)

from companion.accounts.models import Member, User
from companion.audit import services as audit
from companion.coaching.services import member
from companion.db import session
from companion.domain import localtime
from companion.domain.errors import InvalidInput
from companion.medications import checkins as medication_checkins
from companion.medications.models import MedicationCheckin
from companion.nudges.models import Message
from companion.pagination import DEFAULT_RANGE_DAYS, cursor_error, decode_page_cursor, encode_page_cursor
from companion.safety import queue as safety_queue
from companion.safety.models import Flag
from companion.symptoms import services as symptom_services
from companion.symptoms.models import SymptomReport
from companion.tracking import services as tracking
from companion.tracking.models import BacReading, Craving, DrinkLog

# --- the timeline -----------------------------------------------------------------------------------

#: Kinds in the order they sort at the same instant.
KINDS = ("bac_reading", "checkin", "craving", "drink_log", "flag", "message", "symptom_report")
MAX_TIMELINE_DAYS = 366


@dataclass(frozen=True)
class _Source:
    kind: str
    model: Any
    at: Any  # the instant the item sorts on
    day: Any  # its member-local date
    key: Any  # its id, as text (a drink log's is its date)
    where: Any = True  # what else a row of this kind must meet


def _sources(zone: str) -> list[_Source]:
    """Where each kind's instant and local date come from. A drink log covers a whole local day: it
    sorts at that day's start (the day's log heads the day); flags and messages fall on the member's
    local date of their instant."""

    def local_day(instant: Any) -> Any:
        return cast(func.timezone(zone, instant), Date)

    return [
        _Source(
            "bac_reading", BacReading, BacReading.measured_at, BacReading.date, cast(BacReading.id, String)
        ),
        _Source(
            "checkin",
            MedicationCheckin,
            MedicationCheckin.scheduled_for,
            MedicationCheckin.date,
            cast(MedicationCheckin.id, String),
        ),
        _Source("craving", Craving, Craving.recorded_at, Craving.date, cast(Craving.id, String)),
        _Source(
            "drink_log",
            DrinkLog,
            func.timezone(zone, cast(DrinkLog.date, DateTime)),
            DrinkLog.date,
            cast(DrinkLog.date, String),
            DrinkLog.deleted_at.is_(None),
        ),
        _Source("flag", Flag, Flag.created_at, local_day(Flag.created_at), cast(Flag.id, String)),
        _Source(
            "message", Message, Message.created_at, local_day(Message.created_at), cast(Message.id, String)
        ),
        _Source(
            "symptom_report",
            SymptomReport,
            SymptomReport.reported_at,
            SymptomReport.date,
            cast(SymptomReport.id, String),
        ),
    ]


#: A flag's events in the member story: opened, acknowledged, resolved by a coach, and cleared (its
#: finding stopped being true: the `cleared` status and its `cleared_at`, where the model has them).
FLAG_EVENTS = {
    "flag": "created_at",
    "flag_acknowledged": "acknowledged_at",
    "flag_closed": "resolved_at",
    "flag_cleared": "cleared_at",
}


def _flag_events(
    target: Member,
    kinds: set[str],
    *,
    start: date,
    end: date,
    after: tuple[datetime, str, str] | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """A flag's events as story items, newest first, from one query of the member's flags (a member has
    few: one per rule still to handle, and those closed): the story's other kinds are a query each."""
    if not kinds:
        return []
    zone = ZoneInfo(target.timezone)
    since = localtime.day_bounds_utc(start, target.timezone)[0]
    instants = [getattr(Flag, name) for name in FLAG_EVENTS.values() if hasattr(Flag, name)]
    flags = session.execute(
        select(Flag).where(Flag.member_id == target.id, or_(*(instant >= since for instant in instants)))
    ).scalars()
    events = []
    for flag in flags:
        for kind in kinds:
            at = getattr(flag, FLAG_EVENTS[kind], None)
            if at is None:
                continue
            day = at.astimezone(zone).date()
            item = (at, kind, str(flag.id), day, flag)
            if start <= day <= end and (after is None or item[:3] < after):
                events.append(item)
    events.sort(key=lambda item: item[:3], reverse=True)
    return events[: limit + 1]


#: The member story's kinds (the dashboard's timeline filters), in the order they sort at one instant.
STORY_KINDS = (*KINDS, "flag_acknowledged", "flag_closed", "flag_cleared")


def _timeline_cursor(
    cursor: str | None, filters: tuple[Any, ...], kinds: tuple[str, ...] = KINDS
) -> tuple[datetime, str, str] | None:
    after = decode_page_cursor(cursor, filters=filters)
    if not after:
        return None
    try:
        at, kind, key = after
        instant = datetime.fromisoformat(str(at))
        localtime.to_utc(instant)
        if kind not in kinds:
            raise ValueError(kind)
        return instant, str(kind), str(key)
    except (ValueError, TypeError, OverflowError) as exc:
        raise cursor_error() from exc


def _after(source: _Source, after: tuple[datetime, str, str] | None, *, newest_first: bool = False) -> Any:
    """Items of `source` that sort after the cursor's (instant, kind, id): later ones, or with
    `newest_first` earlier ones."""
    if after is None:
        return True
    at, kind, key = after
    if newest_first:
        if source.kind < kind:
            return source.at <= at
        if source.kind > kind:
            return source.at < at
        return tuple_(source.at, source.key.collate("C")) < tuple_(at, literal(key).collate("C"))
    if source.kind > kind:
        return source.at >= at
    if source.kind < kind:
        return source.at > at
    return tuple_(source.at, source.key.collate("C")) > tuple_(at, literal(key).collate("C"))


def _read_timeline(
    target: Member,
    sources: list[_Source],
    *,
    start: date,
    end: date,
    after: tuple[datetime, str, str] | None,
    limit: int,
    newest_first: bool = False,
    streams: list[list[tuple[Any, ...]]] | None = None,
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
    """A page of (at, kind, key, day, record), and the last one when there are more. Each kind is read
    in its own query, already in order and cut at `limit + 1`; merging them and keeping the first
    `limit + 1` gives the page. `streams`: more items, read elsewhere, in the same order."""
    streams = list(streams or [])
    parts = []
    for source in sources:
        model = source.model
        key = source.key.collate("C")  # ordered as Python orders str, so the streams merge as sorted
        conditions = [
            model.member_id == target.id,
            source.where,
            source.day >= start,
            source.day <= end,
            _after(source, after, newest_first=newest_first),
        ]
        order = (source.at.desc(), key.desc()) if newest_first else (source.at, key)
        parts.append(
            select(
                literal(source.kind).label("kind"),
                source.at.label("at"),
                source.day.label("day"),
                source.key.label("key"),
                func.to_jsonb(literal_column(model.__tablename__)).label("record"),
            )
            .where(*conditions)
            .order_by(*order)
            .limit(limit + 1)
        )
    # Every kind in one statement (one round trip), each record as JSON, made a model instance again.
    by_kind: dict[str, list[tuple[Any, ...]]] = {s.kind: [] for s in sources}
    models = {s.kind: s.model for s in sources}
    if parts:
        for kind, at, day, key, record in session.execute(union_all(*parts) if len(parts) > 1 else parts[0]):
            by_kind[kind].append((at, kind, key, day, _from_json(models[kind], record)))
    for items in by_kind.values():
        items.sort(key=lambda item: (item[0], item[2]), reverse=newest_first)
        streams.append(items)
    merged = list(heapq.merge(*streams, key=lambda item: (item[0], item[1], item[2]), reverse=newest_first))[
        : limit + 1
    ]
    more = len(merged) > limit
    merged = merged[:limit]
    return merged, (merged[-1] if more else None)


def _from_json(model: Any, data: dict[str, Any]) -> Any:
    """A row read as `to_jsonb(table)` as a (transient) instance of its model, each column's type back."""
    values = {}
    for column in model.__table__.columns:
        value = data.get(column.name)
        if value is not None:
            kind = type(column.type)
            if kind is DateTime:
                value = datetime.fromisoformat(value)
            elif kind is Date:
                value = date.fromisoformat(value)
            elif kind is Numeric:
                value = Decimal(str(value))
            elif kind is Uuid:
                value = uuid.UUID(value)
        values[column.key] = value
    return model(**values)


def _cursor_of(last: tuple[Any, ...] | None, filters: tuple[Any, ...]) -> str | None:
    return encode_page_cursor([last[0].isoformat(), last[1], last[2]], filters=filters) if last else None


def timeline(
    actor: User,
    member_id: uuid.UUID,
    *,
    start: date | None,
    end: date | None,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> dict[str, Any]:
    """`GET /coach/members/{id}/timeline`: drink logs, breath readings, cravings, dose check-ins,
    flags and messages whose member-local date is in [start, end] (default: the last 30 days), in
    time order (oldest first; ties by kind, then id), keyset-paged. Audited with the range read."""
    target = member(actor, member_id)
    today = localtime.local_date(now, target.timezone)
    end = end or today
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidInput("The request is invalid.", fields={"from": ["Must not be after 'to'."]})
    filters = ("timeline", target.id, start, end)
    after = _timeline_cursor(cursor, filters)
    merged, last = _read_timeline(
        target, _sources(target.timezone), start=start, end=end, after=after, limit=limit
    )
    audit.record(
        "member.timeline_viewed",
        actor_id=actor.id,
        now=now,
        subject_member_id=target.id,
        start=start.isoformat(),
        end=end.isoformat(),
    )
    return {"items": _timeline_items(target, merged), "next_cursor": _cursor_of(last, filters)}


#: How far back the member page's story reaches, days before the member's today.
STORY_DAYS = MAX_TIMELINE_DAYS


def story(
    target: Member,
    *,
    kinds: tuple[str, ...],
    cursor: str | None,
    limit: int,
    now: datetime,
    medication_of: dict[uuid.UUID, str] | None = None,
) -> dict[str, Any]:
    """The dashboard's member story: the timeline's kinds and a flag's later events, newest first,
    keyset-paged, over the last STORY_DAYS days; only `kinds` (all when empty). Read by `member_page`,
    which audits it."""
    today = localtime.local_date(now, target.timezone)
    wanted = set(kinds or STORY_KINDS)
    start = today - timedelta(days=STORY_DAYS - 1)
    filters = ("story", target.id, sorted(wanted))
    after = _timeline_cursor(cursor, filters, STORY_KINDS)
    sources = [s for s in _sources(target.timezone) if s.kind in wanted and s.kind not in FLAG_EVENTS]
    flag_events = _flag_events(
        target, wanted & set(FLAG_EVENTS), start=start, end=today, after=after, limit=limit
    )
    merged, last = _read_timeline(
        target,
        sources,
        start=start,
        end=today,
        after=after,
        limit=limit,
        newest_first=True,
        streams=[flag_events],
    )
    views = dict.fromkeys(("flag_acknowledged", "flag_closed", "flag_cleared"), safety_queue.flag_view)
    items = _timeline_items(target, merged, views, medication_of)
    return {"items": items, "next_cursor": _cursor_of(last, filters)}


def _timeline_items(
    target: Member,
    merged: list[tuple[Any, ...]],
    more_views: dict[str, Any] | None = None,
    medication_of: dict[uuid.UUID, str] | None = None,
) -> list[dict[str, Any]]:
    checkins = [record for _, kind, _, _, record in merged if kind == "checkin"]
    checkin_views = {v["id"]: v for v in medication_checkins.checkin_views(checkins, medication_of)}
    views = {
        "bac_reading": tracking.bac_view,
        "checkin": lambda c: checkin_views[c.id],
        "craving": tracking.craving_view,
        "drink_log": lambda log: tracking.drink_log_view(log, target),
        "flag": safety_queue.flag_view,
        "message": lambda m: {
            "id": m.id,
            "member_id": m.member_id,
            "sender_id": m.sender_id,
            "body": m.body,
            "created_at": m.created_at,
        },
        "symptom_report": symptom_services.report_view,
        **(more_views or {}),
    }
    return [
        {"kind": kind, "id": key, "at": at, "date": day, kind: views[kind](record)}
        for at, kind, key, day, record in merged
    ]
