"""The dashboard's member page: the day-by-day series its charts draw, and everything the page shows,
read once. Every read writes the audit log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    Numeric,
    String,
    Uuid,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)

from companion.accounts.models import Member, User
from companion.audit import services as audit
from companion.coaching.services import UNRESOLVED, caseload_item, member_names, member_row
from companion.coaching.timeline import story
from companion.db import session
from companion.domain import drinking, localtime, summary
from companion.domain.plans import CheckIn, CheckInStatus, Plan
from companion.domain.types import DateRange
from companion.medications import services as medications
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport, plan_to_domain
from companion.nudges.models import Message
from companion.pacs.models import PacsReport
from companion.safety import queue as safety_queue
from companion.safety.models import Flag
from companion.symptoms.models import SymptomReport
from companion.tracking import summary as summaries
from companion.tracking.models import BacReading, Craving

# --- the dashboard's chart series -------------------------------------------------------------------


#: The chart windows the dashboard offers (days, today included).
CHART_WINDOWS = (30, 90)


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
    row = member_row(actor, member_id)
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
        .order_by(case((Flag.status.in_(UNRESOLVED), 0), else_=1), Flag.tier.desc(), Flag.created_at.desc())
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
        "member": caseload_item(row, result, logs[target.id]),
        "series": chart_series(target, days=days, now=now, logs=logs[target.id], plans=plans),
        "plans": [medications.plan_view(p, today=today) for p in plan_rows],
        "flags": [safety_queue.flag_view(f) for f in flags],
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
