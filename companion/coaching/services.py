"""What a coach reads about members (API.md "Coach"): the caseload, a member's profile and summary, their
timeline, and the day-by-day series the dashboard charts.

* Who sees whom: an admin every member; a coach the members on their current caseload. Anyone else is
  the same 404 as a member who does not exist (`auth.policy.member_for_staff`).
* Every read writes the audit log: who, which member, what (the action, and the range read), when.
* Set-based: a page of the caseload costs the same few queries for 10 members or 300; the timeline
  and the charts one query per kind of record.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    DateTime,
    Numeric,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)

from companion.accounts.models import CoachAssignment, Member, Role, User
from companion.audit import services as audit
from companion.auth.policy import member_for_staff
from companion.db import session
from companion.domain import drinking, localtime, summary
from companion.domain import safety as rules
from companion.domain import triage as triage_rules
from companion.domain.errors import InvalidInput, NotFound
from companion.domain.plans import CheckIn, CheckInStatus, Plan
from companion.domain.types import DateRange
from companion.medications import services as medications
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport, plan_to_domain
from companion.nudges.models import Message
from companion.pacs.models import PacsReport
from companion.pagination import DEFAULT_RANGE_DAYS, decode_page_cursor, encode_page_cursor
from companion.safety import services as safety
from companion.safety.models import Flag, FlagStatus
from companion.symptoms import services as symptom_services
from companion.symptoms.models import SymptomReport
from companion.tracking import services as tracking
from companion.tracking import summary as summaries
from companion.tracking.models import BacReading, Craving, DrinkLog

#: Days of drinking a caseload row's sparkline shows, today included.
SPARKLINE_DAYS = 30
#: The chart windows the dashboard offers (days, today included).
CHART_WINDOWS = (30, 90)
_UNRESOLVED = (FlagStatus.OPEN.value, FlagStatus.ACKNOWLEDGED.value)
_INVALID_CURSOR = {"cursor": ["Not a cursor this server issued."]}


def member(actor: User, member_id: uuid.UUID) -> Member:
    """The member if `actor` may read their records, else NotFound (admins: any member)."""
    return member_for_staff(actor, member_id)


# --- the caseload -----------------------------------------------------------------------------------


def _flag_counts() -> Any:
    """Per member: unresolved flags, unresolved urgent ones, and the highest unresolved tier."""
    unresolved = Flag.status.in_(_UNRESOLVED)
    return (
        select(
            Flag.member_id,
            func.count().label("open_flags"),
            func.count().filter(Flag.tier == int(rules.Tier.URGENT)).label("urgent_flags"),
            func.count().filter(Flag.tier == int(rules.Tier.WARNING)).label("warning_flags"),
            func.max(Flag.tier).label("top_tier"),
        )
        .where(unresolved)
        .group_by(Flag.member_id)
        .subquery()
    )


def _members_query(actor: User) -> Any:
    counts = _flag_counts()
    open_flags = func.coalesce(counts.c.open_flags, 0)
    urgent_flags = func.coalesce(counts.c.urgent_flags, 0)
    query = (
        select(
            Member,
            User.email,
            User.display_name,
            open_flags.label("open_flags"),
            urgent_flags.label("urgent_flags"),
            counts.c.top_tier,
            safety._last_entry_at(Member.id).label("last_activity_at"),
            CoachAssignment.coach_id,
        )
        .join(User, User.id == Member.id)
        .outerjoin(counts, counts.c.member_id == Member.id)
        .outerjoin(
            CoachAssignment, and_(CoachAssignment.member_id == Member.id, CoachAssignment.ended_at.is_(None))
        )
        .where(User.deleted_at.is_(None))
    )
    if actor.role != Role.ADMIN:
        query = query.where(CoachAssignment.coach_id == actor.id)
    return query, urgent_flags, open_flags, counts


@dataclass(frozen=True)
class _Row:
    member: Member
    email: str
    display_name: str | None
    open_flags: int
    urgent_flags: int
    top_tier: int | None
    last_activity_at: datetime | None
    coach_id: uuid.UUID | None


def _item(row: _Row, result: summary.MemberSummary, logs: list[summary.DayLog]) -> dict[str, Any]:
    m = row.member
    today = result.as_of
    drinking_now = _drinking(m, result)
    by_day = {log.day: log for log in logs}
    sparkline = [
        drinking.standard_drinks_from_grams(by_day[d].grams, m.country) if d in by_day else None
        for d in DateRange.ending(today, SPARKLINE_DAYS).days()
    ]
    return {
        "id": m.id,
        "email": row.email,
        "display_name": row.display_name,
        "timezone": m.timezone,
        "country": m.country,
        "sex": m.sex,
        "goal": {"type": m.goal_type, "weekly_limit": m.weekly_limit},
        "enrolled_at": m.enrolled_at,
        "coach_id": row.coach_id,
        "risk": rules.Tier(row.top_tier).label if row.top_tier else "none",
        "drinking": drinking_now,
        # The dashboard's risk: the flags' tier or drinking against the goal's, whichever is higher.
        "triage_risk": triage_rules.risk(row.top_tier, drinking_now["tier"]),
        "open_flags": row.open_flags,
        "urgent_flags": row.urgent_flags,
        "last_activity_at": row.last_activity_at,
        "summary": summaries.summary_view(result),
        # The dashboard's sparkline: standard drinks per day, oldest first, None for a day not logged.
        "sparkline": sparkline,
    }


def _drinking(m: Member, result: summary.MemberSummary) -> dict[str, Any]:
    last_30 = result.last_30_days
    counts = {
        "drinking_days": last_30.days_logged - last_30.alcohol_free_days,
        "heavy_days": last_30.heavy_days,
    }
    tier = triage_rules.drinking_tier(m.goal_type, **counts)
    return {
        **counts,
        "against_goal": triage_rules.days_against_goal(m.goal_type, **counts),
        "tier": tier,
    }


def _items(rows: list[_Row], *, now: datetime) -> list[dict[str, Any]]:
    logs = summaries.day_logs_of([r.member.id for r in rows])
    results = summaries.summaries([r.member for r in rows], now=now, logs=logs)
    return [_item(r, results[r.member.id], logs[r.member.id]) for r in rows]


def caseload(actor: User, *, cursor: str | None, limit: int, now: datetime) -> dict[str, Any]:
    """`GET /coach/members`: the members `actor` may see, most urgent flags first, then most open
    flags, keyset-paged; each with flag counts, last activity and summary. Audited per member."""
    query, urgent, open_, _ = _members_query(actor)
    after = decode_page_cursor(cursor)
    if after:
        try:
            a_urgent, a_open, a_id = int(after[0]), int(after[1]), uuid.UUID(str(after[2]))
        except (ValueError, TypeError, IndexError) as exc:
            raise InvalidInput("The request is invalid.", fields=_INVALID_CURSOR) from exc
        query = query.where(tuple_(-urgent, -open_, Member.id) > tuple_(-a_urgent, -a_open, a_id))
    found = session.execute(query.order_by(urgent.desc(), open_.desc(), Member.id).limit(limit + 1)).all()
    rows = [_Row(*r) for r in found[:limit]]
    audit.record_many(
        "caseload.listed", actor_id=actor.id, now=now, subject_member_ids=[r.member.id for r in rows]
    )
    last = rows[-1] if len(found) > limit else None
    return {
        "items": _items(rows, now=now),
        "next_cursor": encode_page_cursor([last.urgent_flags, last.open_flags, str(last.member.id)])
        if last
        else None,
    }


# --- the dashboard's triage ---------------------------------------------------------------------------

#: What the workbench's caseload sorts on: "need" (the default), or one column.
TRIAGE_SORTS = ("need", "name", "risk", "flags", "last_entry", "against_goal")
#: Days of drinking the triage counts against the goal (the summary's "last 30 days").
TRIAGE_DAYS = 30


@dataclass(frozen=True)
class TriageFilters:
    """Who the caseload lists: a name or email containing `search`; only members with flags to handle;
    only those with no entry for `quiet_days` days or more; only those with an active plan of `medication`."""

    search: str = ""
    has_flags: bool = False
    quiet_days: int | None = None
    medication: str | None = None


def triage(
    actor: User,
    *,
    sort: str,
    descending: bool,
    filters: TriageFilters,
    offset: int,
    limit: int,
    now: datetime,
) -> dict[str, Any]:
    """The dashboard's caseload: `GET /coach/members`'s rows, sorted by need (open urgent flags, then
    warnings, then whole days since the last entry, then days of drinking against the goal in the last
    30) or by one column, searched and filtered; a page of `limit` from `offset`. Audited per member."""
    query, urgent, open_, counts = _members_query(actor)
    warnings = func.coalesce(counts.c.warning_flags, 0)
    last_entry = safety._last_entry_at(Member.id)
    local_today = cast(
        func.timezone(Member.timezone, bindparam("now", now, type_=DateTime(timezone=True))), Date
    )

    def days_of_30(*where: Any) -> Any:
        return (
            select(func.count())
            .where(
                DrinkLog.member_id == Member.id,
                DrinkLog.deleted_at.is_(None),
                DrinkLog.date > local_today - TRIAGE_DAYS,
                DrinkLog.date <= local_today,
                *where,
            )
            .scalar_subquery()
        )

    heavy = days_of_30(DrinkLog.heavy)
    # triage.days_against_goal, in SQL so the database sorts and pages.
    against = case(
        (Member.goal_type == triage_rules.ABSTAIN, days_of_30(DrinkLog.grams_ethanol > 0)), else_=heavy
    )
    quiet = func.floor(func.extract("epoch", now - last_entry) / 86400)
    name = func.lower(func.coalesce(User.display_name, User.email))
    if filters.search:
        pattern = "%" + filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(User.display_name.ilike(pattern) | User.email.ilike(pattern))
    if filters.has_flags:
        query = query.where(open_ > 0)
    if filters.quiet_days is not None:
        cutoff = now - timedelta(days=filters.quiet_days)
        query = query.where(func.coalesce(last_entry, Member.enrolled_at) <= cutoff)
    if filters.medication:
        query = query.where(
            select(MedicationPlan.id)
            .where(
                MedicationPlan.member_id == Member.id,
                MedicationPlan.medication == filters.medication,
                MedicationPlan.start_date <= local_today,
                (MedicationPlan.end_date.is_(None)) | (MedicationPlan.end_date >= local_today),
            )
            .exists()
        )
    need = [urgent.desc(), warnings.desc(), quiet.desc().nulls_first(), against.desc()]
    columns = {
        "need": need,
        "name": [name.desc() if descending else name],
        "risk": [
            func.coalesce(counts.c.top_tier, 0).desc() if descending else func.coalesce(counts.c.top_tier, 0),
            *need,
        ],
        "flags": [(urgent.desc(), open_.desc()) if descending else (urgent, open_)],
        "last_entry": [last_entry.desc().nulls_last() if descending else last_entry.asc().nulls_first()],
        "against_goal": [against.desc() if descending else against],
    }
    order = [c for group in columns[sort] for c in (group if isinstance(group, tuple) else (group,))]
    found = session.execute(
        query.add_columns(warnings.label("warning_flags"))
        .order_by(*order, Member.id)
        .offset(offset)
        .limit(limit + 1)
    ).all()
    rows = [(_Row(*r[:-1]), r[-1]) for r in found[:limit]]
    audit.record_many(
        "caseload.listed", actor_id=actor.id, now=now, subject_member_ids=[r.member.id for r, _ in rows]
    )
    items = _items([r for r, _ in rows], now=now)
    for item, (_, warning_flags) in zip(items, rows, strict=True):
        item["warning_flags"] = warning_flags
    return {"items": items, "more": len(found) > limit}


def _row(actor: User, member_id: uuid.UUID) -> _Row:
    """The member's caseload row, if `actor` may see them (the query is the caseload's): else the same
    404 as a member who does not exist."""
    query, _, _, _ = _members_query(actor)
    found = session.execute(query.where(Member.id == member_id)).one_or_none()
    if found is None:
        raise NotFound("No such member on your caseload.")
    return _Row(*found)


def profile(actor: User, member_id: uuid.UUID, *, now: datetime) -> dict[str, Any]:
    """`GET /coach/members/{id}`: the member's profile, flag counts and summary. Audited."""
    row = _row(actor, member_id)
    audit.record("member.viewed", actor_id=actor.id, now=now, subject_member_id=member_id, via="api")
    return _items([row], now=now)[0]


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


def _timeline_cursor(cursor: str | None, kinds: tuple[str, ...] = KINDS) -> tuple[datetime, str, str] | None:
    after = decode_page_cursor(cursor)
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
        raise InvalidInput("The request is invalid.", fields=_INVALID_CURSOR) from exc


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


def _cursor_of(last: tuple[Any, ...] | None) -> str | None:
    return encode_page_cursor([last[0].isoformat(), last[1], last[2]]) if last else None


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
    merged, last = _read_timeline(
        target, _sources(target.timezone), start=start, end=end, after=_timeline_cursor(cursor), limit=limit
    )
    audit.record(
        "member.timeline_viewed",
        actor_id=actor.id,
        now=now,
        subject_member_id=target.id,
        start=start.isoformat(),
        end=end.isoformat(),
    )
    return {"items": _timeline_items(target, merged), "next_cursor": _cursor_of(last)}


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
    after = _timeline_cursor(cursor, STORY_KINDS)
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
    views = dict.fromkeys(("flag_acknowledged", "flag_closed", "flag_cleared"), safety.flag_view)
    items = _timeline_items(target, merged, views, medication_of)
    return {"items": items, "next_cursor": _cursor_of(last)}


def _timeline_items(
    target: Member,
    merged: list[tuple[Any, ...]],
    more_views: dict[str, Any] | None = None,
    medication_of: dict[uuid.UUID, str] | None = None,
) -> list[dict[str, Any]]:
    checkins = [record for _, kind, _, _, record in merged if kind == "checkin"]
    checkin_views = {v["id"]: v for v in medications.checkin_views(checkins, medication_of)}
    views = {
        "bac_reading": tracking.bac_view,
        "checkin": lambda c: checkin_views[c.id],
        "craving": tracking.craving_view,
        "drink_log": lambda log: tracking.drink_log_view(log, target),
        "flag": safety.flag_view,
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


# --- the dashboard's chart series -------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One member's day-by-day record over a window, as the dashboard charts it. Lists run oldest
    first, one entry per local day; None is a day with nothing recorded (never a zero)."""

    days: list[date]
    #: Standard drinks (the member's country's size), and whether the day was heavy.
    drinks: list[Decimal | None]
    heavy: list[bool]
    #: The heavy-day threshold in the member's standard drinks (it is set in grams, by sex).
    heavy_threshold: Decimal
    #: Mean and highest craving rating of the day.
    craving_mean: list[Decimal | None]
    craving_max: list[int | None]
    #: Doses taken and scheduled on the day (the summary's adherence counting).
    doses_taken: list[int]
    doses_scheduled: list[int]
    #: Highest breath reading of the day, g/dL.
    breath_max: list[Decimal | None]
    #: Side effects reported on the day, by severity.
    side_effects: dict[str, list[int]]


SEVERITIES = ("mild", "moderate", "severe")


def chart_series(
    target: Member, *, days: int, now: datetime, logs: list[summary.DayLog], plans: list[Plan]
) -> Series:
    """The member's last `days` local days (today included), from their day logs and plans (which the
    caller has loaded for the summary), one query for the other day aggregates, one for the doses."""
    today = localtime.local_date(now, target.timezone)
    window = DateRange.ending(today, days)
    span = list(window.days())
    index = {d: i for i, d in enumerate(span)}
    first = span[0]

    drinks: list[Decimal | None] = [None] * days
    heavy = [False] * days
    for log in logs:
        if log.day in index:
            drinks[index[log.day]] = drinking.standard_drinks_from_grams(log.grams, target.country)
            heavy[index[log.day]] = log.heavy

    craving_mean: list[Decimal | None] = [None] * days
    craving_max: list[int | None] = [None] * days
    breath_max: list[Decimal | None] = [None] * days
    side_effects = {s: [0] * days for s in SEVERITIES}
    for kind, day, value, top, severity in session.execute(
        _day_aggregates(), {"member_id": target.id, "first": first, "last": today}
    ):
        i = index[day]
        if kind == "craving":
            craving_mean[i] = Decimal(value).quantize(summary.CRAVING_QUANTUM)
            craving_max[i] = int(top)
        elif kind == "breath":
            breath_max[i] = value
        else:
            side_effects[severity][i] += int(value)  # on check-ins and reported on their own

    taken, scheduled = _doses(target, plans, window, now=now)
    return Series(
        days=span,
        drinks=drinks,
        heavy=heavy,
        heavy_threshold=drinking.standard_drinks_from_grams(
            drinking.heavy_day_grams(target.sex), target.country
        ),
        craving_mean=craving_mean,
        craving_max=craving_max,
        doses_taken=taken,
        doses_scheduled=scheduled,
        breath_max=breath_max,
        side_effects=side_effects,
    )


@cache
def _day_aggregates() -> Any:
    """Cravings (mean, highest), breath (highest) and side effects (count per severity, those reported on
    a check-in and in a symptom report alike) per local day,
    in one statement: one round trip instead of three (round trips dominate the member page)."""
    member, first, last = bindparam("member_id", type_=Uuid), bindparam("first"), bindparam("last")

    def per_day(model: Any, kind: str, value: Any, top: Any, severity: Any) -> Any:
        return (
            select(
                literal(kind).label("kind"),
                model.date,
                cast(value, Numeric).label("value"),
                cast(top, Numeric).label("top"),
                cast(null() if severity is None else severity, String).label("severity"),
            )
            .where(model.member_id == member, model.date.between(first, last))
            .group_by(model.date, *([] if severity is None else [severity]))
        )

    symptom = func.jsonb_array_elements(SymptomReport.symptoms).table_valued("value").alias("symptom")
    symptom_severity = symptom.c.value.op("->>")("severity")
    reported = (
        select(
            literal("side_effect").label("kind"),
            SymptomReport.date,
            cast(func.count(), Numeric).label("value"),
            cast(null(), Numeric).label("top"),
            cast(symptom_severity, String).label("severity"),
        )
        .select_from(SymptomReport)
        .join(symptom, true())
        .where(SymptomReport.member_id == member, SymptomReport.date.between(first, last))
        .group_by(SymptomReport.date, symptom_severity)
    )
    return union_all(
        per_day(Craving, "craving", func.avg(Craving.intensity), func.max(Craving.intensity), None),
        per_day(BacReading, "breath", func.max(BacReading.bac_g_dl), null(), None),
        per_day(SideEffectReport, "side_effect", func.count(), null(), SideEffectReport.severity),
        reported,
    )


def _doses(
    target: Member, plans: list[Plan], window: DateRange, *, now: datetime
) -> tuple[list[int], list[int]]:
    """Doses taken and scheduled per local day, counted as the summary's adherence counts them."""
    checkins = [
        CheckIn(plan_id, at, CheckInStatus(status))
        for plan_id, at, status in session.execute(
            select(
                MedicationCheckin.plan_id, MedicationCheckin.scheduled_for, MedicationCheckin.status
            ).where(
                MedicationCheckin.member_id == target.id,
                MedicationCheckin.date.between(window.start, window.end),
            )
        )
    ]
    by_day = summary.dose_counts_by_day(plans, checkins, zone=target.timezone, window=window, now=now)
    return [by_day[d][0] for d in window.days()], [by_day[d][1] for d in window.days()]


# --- the dashboard's member page --------------------------------------------------------------------


#: Items a page of the member page's story shows.
STORY_PAGE = 50


def member_page(
    actor: User,
    member_id: uuid.UUID,
    *,
    days: int,
    now: datetime,
    kinds: tuple[str, ...] = (),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Everything the dashboard's member page shows (the story: `kinds`, from `cursor`), read once and
    audited once."""
    row = _row(actor, member_id)
    target = row.member
    today = localtime.local_date(now, target.timezone)
    plan_rows = list(
        session.execute(
            select(MedicationPlan)
            .where(MedicationPlan.member_id == target.id)
            .order_by(MedicationPlan.start_date.desc(), MedicationPlan.created_at.desc())
        ).scalars()
    )
    plans = [plan_to_domain(p) for p in plan_rows]
    logs = summaries.day_logs_of([target.id])
    result = summaries.summaries([target], now=now, logs=logs, plans={target.id: plans})[target.id]
    flags = session.execute(
        select(Flag)
        .where(Flag.member_id == target.id)
        .order_by(case((Flag.status.in_(_UNRESOLVED), 0), else_=1), Flag.tier.desc(), Flag.created_at.desc())
        .limit(50)
    ).scalars()
    messages = session.execute(
        select(Message, User.email)
        .outerjoin(User, User.id == Message.sender_id)
        .where(Message.member_id == target.id)
        .order_by(Message.created_at.desc())
        .limit(20)
    ).all()
    medication_of = {p.id: p.medication for p in plan_rows}
    told = story(target, kinds=kinds, cursor=cursor, limit=STORY_PAGE, now=now, medication_of=medication_of)
    # The weekly PACS over the chart's window: one point a week (its Monday), None for a week unanswered.
    first_monday = today - timedelta(days=days - 1)
    first_monday -= timedelta(days=first_monday.weekday())
    answered = dict(
        session.execute(
            select(PacsReport.week_of, PacsReport.total).where(
                PacsReport.member_id == target.id, PacsReport.week_of.between(first_monday, today)
            )
        ).all()
    )
    weeks = [first_monday + timedelta(weeks=n) for n in range((today - first_monday).days // 7 + 1)]
    audit.record(
        "member.viewed",
        actor_id=actor.id,
        now=now,
        subject_member_id=target.id,
        via="dashboard",
        days=days,
        story=told["items"][-1]["date"].isoformat() if told["items"] else None,
    )
    return {
        "story": told,
        "staff_names": member_names(_staff_in(told["items"])),
        "pacs": {"weeks": weeks, "totals": [answered.get(w) for w in weeks]},
        "member": _item(row, result, logs[target.id]),
        "series": chart_series(target, days=days, now=now, logs=logs[target.id], plans=plans),
        "plans": [medications.plan_view(p, today=today) for p in plan_rows],
        "flags": [safety.flag_view(f) for f in flags],
        "messages": [{"body": m.body, "created_at": m.created_at, "sender": email} for m, email in messages],
        "today": today,
    }


def _staff_in(items: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Who sent the story's messages and acted on its flags."""
    ids: set[uuid.UUID | None] = set()
    for item in items:
        if item["kind"] == "message":
            ids.add(item["message"]["sender_id"])
        elif item["kind"].startswith("flag_"):
            ids |= {item[item["kind"]].get("acknowledged_by"), item[item["kind"]].get("resolved_by")}
    return sorted(i for i in ids if i is not None)


def member_names(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names (else emails) of users (members or staff), for lists that show who a row is about."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(User.id, func.coalesce(User.display_name, User.email)).where(User.id.in_(member_ids))
    )
    return dict(rows.all())  # type: ignore[arg-type]
