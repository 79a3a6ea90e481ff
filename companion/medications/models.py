"""Medication plans (written by staff, read by the member) and the member's dose check-ins."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, utcnow
from companion.domain import plans
from companion.sync_seq import Syncable


class MedicationPlan(Syncable, Base):
    """`dose_mg` at each local time of `times` from `start_date`; `steps` titrate or taper it."""

    __tablename__ = "medication_plans"
    __table_args__ = (
        CheckConstraint("dose_mg > 0", name="dose_positive"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="end_after_start"),
        Index("ix_medication_plans_member", "member_id"),
        Index("ix_medication_plans_member_change", "member_id", "change_seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    medication: Mapped[str] = mapped_column(String(32))
    dose_mg: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    times: Mapped[list[time]] = mapped_column(ARRAY(Time))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    #: [{from_date, dose_mg, times}] in date order.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    #: The coach confirmed a daily dose above the medication's usual maximum (domain.plans.DoseLimits).
    high_dose_confirmed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MedicationCheckin(Syncable, Base):
    """A dose taken or skipped: one per plan and dose slot, whatever id the phone sends."""

    __tablename__ = "medication_checkins"
    __table_args__ = (
        UniqueConstraint("plan_id", "scheduled_for", name="uq_medication_checkins_slot"),
        CheckConstraint("status IN ('taken', 'skipped')", name="status"),
        CheckConstraint("(status = 'taken') = (taken_at IS NOT NULL)", name="taken_at_when_taken"),
        # The insurer export reads check-ins from this index alone.
        Index(
            "ix_medication_checkins_member_date",
            "member_id",
            "date",
            postgresql_include=["status", "plan_id", "scheduled_for"],
        ),
        Index("ix_medication_checkins_member_change", "member_id", "change_seq"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medication_plans.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The slot's local date in the member's zone when it was scheduled.
    date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SideEffectReport(Base):
    """One side effect of one check-in: a row each, so the safety rules can query them in SQL."""

    __tablename__ = "side_effect_reports"
    __table_args__ = (
        ForeignKeyConstraint(
            ["member_id", "checkin_id"],
            ["medication_checkins.member_id", "medication_checkins.id"],
            ondelete="CASCADE",
            name="fk_side_effect_reports_checkin",
        ),
        CheckConstraint("severity IN ('mild', 'moderate', 'severe')", name="severity"),
        Index("ix_side_effect_reports_member_date", "member_id", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    checkin_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    medication: Mapped[str] = mapped_column(String(32))
    date: Mapped[date] = mapped_column(Date)
    code: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


def _step_from_json(raw: dict[str, Any]) -> plans.PlanStep:
    return plans.PlanStep(
        from_date=date.fromisoformat(raw["from_date"]),
        dose_mg=Decimal(str(raw["dose_mg"])),
        times=tuple(time.fromisoformat(t) for t in raw["times"]),
        taper=bool(raw.get("taper", False)),
    )


def plan_to_domain(row: MedicationPlan) -> plans.Plan:
    """The stored plan as the pure domain's `Plan` (regimens, dose slots, tapering)."""
    return plans.Plan(
        id=row.id,
        medication=row.medication,
        dose_mg=Decimal(row.dose_mg),
        times=tuple(row.times),
        start_date=row.start_date,
        end_date=row.end_date,
        steps=tuple(_step_from_json(s) for s in row.steps or []),
    )
