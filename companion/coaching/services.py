"""What a coach reads about members (API.md "Coach"): the caseload, the dashboard's triage, a member's
profile and summary. Their timeline is `coaching.timeline`; the dashboard's member page and its charts,
`coaching.member_page`.

* Who sees whom: an admin every member; a coach the members on their current caseload. Anyone else is
  the same 404 as a member who does not exist (`auth.policy.member_for_staff`).
* Every read writes the audit log: who, which member, what (the action, and the range read), when.
* Set-based: a page of the caseload costs the same few queries for 10 members or 300; the timeline
  and the charts one query per kind of record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    and_,
    bindparam,
    case,
    cast,
    func,
    select,
    tuple_,
)

from companion.accounts.models import CoachAssignment, Member, Role, User
from companion.audit import services as audit
from companion.auth.policy import member_for_staff
from companion.db import session
from companion.domain import drinking, summary
from companion.domain import safety as rules
from companion.domain import triage as triage_rules
from companion.domain.errors import NotFound
from companion.domain.types import DateRange
from companion.medications.models import MedicationPlan
from companion.pagination import cursor_error, decode_page_cursor, encode_page_cursor
from companion.safety import loading as safety_loading
from companion.safety.models import Flag, FlagStatus
from companion.tracking import summary as summaries
from companion.tracking.models import DrinkLog

#: Days of drinking a caseload row's sparkline shows, today included.
SPARKLINE_DAYS = 30
UNRESOLVED = (FlagStatus.OPEN.value, FlagStatus.ACKNOWLEDGED.value)


def member(actor: User, member_id: uuid.UUID) -> Member:
    """The member if `actor` may read their records, else NotFound (admins: any member)."""
    return member_for_staff(actor, member_id)


# --- the caseload -----------------------------------------------------------------------------------


def _flag_counts() -> Any:
    """Per member: unresolved flags, unresolved urgent ones, and the highest unresolved tier."""
    unresolved = Flag.status.in_(UNRESOLVED)
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
            safety_loading.last_entry_at(Member.id).label("last_activity_at"),
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


def caseload_item(row: _Row, result: summary.MemberSummary, logs: list[summary.DayLog]) -> dict[str, Any]:
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
    return [caseload_item(r, results[r.member.id], logs[r.member.id]) for r in rows]


def caseload(actor: User, *, cursor: str | None, limit: int, now: datetime) -> dict[str, Any]:
    """`GET /coach/members`: the members `actor` may see, most urgent flags first, then most open
    flags, keyset-paged; each with flag counts, last activity and summary. Audited per member."""
    query, urgent, open_, _ = _members_query(actor)
    filters = ("caseload", actor.id)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        try:
            a_urgent, a_open, a_id = int(after[0]), int(after[1]), uuid.UUID(str(after[2]))
        except (ValueError, TypeError, IndexError) as exc:
            raise cursor_error() from exc
        query = query.where(tuple_(-urgent, -open_, Member.id) > tuple_(-a_urgent, -a_open, a_id))
    found = session.execute(query.order_by(urgent.desc(), open_.desc(), Member.id).limit(limit + 1)).all()
    rows = [_Row(*r) for r in found[:limit]]
    audit.record_many(
        "caseload.listed", actor_id=actor.id, now=now, subject_member_ids=[r.member.id for r in rows]
    )
    last = rows[-1] if len(found) > limit else None
    return {
        "items": _items(rows, now=now),
        "next_cursor": encode_page_cursor(
            [last.urgent_flags, last.open_flags, str(last.member.id)], filters=filters
        )
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
    last_entry = safety_loading.last_entry_at(Member.id)
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


def member_row(actor: User, member_id: uuid.UUID) -> _Row:
    """The member's caseload row, if `actor` may see them (the query is the caseload's): else the same
    404 as a member who does not exist."""
    query, _, _, _ = _members_query(actor)
    found = session.execute(query.where(Member.id == member_id)).one_or_none()
    if found is None:
        raise NotFound("No such member on your caseload.")
    return _Row(*found)


def profile(actor: User, member_id: uuid.UUID, *, now: datetime) -> dict[str, Any]:
    """`GET /coach/members/{id}`: the member's profile, flag counts and summary. Audited."""
    row = member_row(actor, member_id)
    audit.record("member.viewed", actor_id=actor.id, now=now, subject_member_id=member_id, via="api")
    return _items([row], now=now)[0]


def member_names(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names (else emails) of users (members or staff), for lists that show who a row is about."""
    if not member_ids:
        return {}
    rows = session.execute(
        select(User.id, func.coalesce(User.display_name, User.email)).where(User.id.in_(member_ids))
    )
    return dict(rows.all())
