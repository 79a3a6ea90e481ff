"""What a member logs: a drink log per local day, cravings and breath alcohol readings.

Rows are keyed by member, so one member's ids never collide with, or reveal, another's. Deletions
are tombstones (`deleted_at`) so other devices learn of them through `GET /sync`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, utcnow
from companion.sync_seq import Syncable


class DrinkLog(Syncable, Base):
    """One local day's drinking. Grams of ethanol are the record; standard drinks are derived."""

    __tablename__ = "drink_logs"
    __table_args__ = (
        CheckConstraint("grams_ethanol >= 0", name="grams_nonnegative"),
        CheckConstraint("source IN ('realtime', 'recall')", name="source"),
        Index("ix_drink_logs_member_change", "member_id", "change_seq"),
        # The insurer export reads live logs member by member from this index alone.
        Index(
            "ix_drink_logs_member_date_live",
            "member_id",
            "date",
            postgresql_include=["grams_ethanol", "heavy"],
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    grams_ethanol: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    #: What the member entered: either a standard drink count (in their country's size then) ...
    entered_standard_drinks: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    #: ... or the drinks themselves [{kind, volume_ml, abv_percent, count}].
    drinks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    heavy: Mapped[bool]
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The phone's edit instant when it sent one (stale-write detection), else the server's.
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    server_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Craving(Syncable, Base):
    __tablename__ = "cravings"
    __table_args__ = (
        CheckConstraint("intensity BETWEEN 0 AND 10", name="intensity_range"),
        # intensity: the insurer export reads cravings from this index alone.
        Index("ix_cravings_member_date", "member_id", "date", postgresql_include=["intensity"]),
        Index("ix_cravings_member_change", "member_id", "change_seq"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The member's local date when it was recorded; a later time zone change does not move it.
    date: Mapped[date] = mapped_column(Date)
    intensity: Mapped[int] = mapped_column(SmallInteger)
    triggers: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BacReading(Syncable, Base):
    """A breathalyzer reading (g/dL): the objective record next to what the member reports."""

    __tablename__ = "bac_readings"
    __table_args__ = (
        CheckConstraint("bac_g_dl >= 0 AND bac_g_dl <= 0.5", name="bac_range"),
        Index("ix_bac_readings_member_date", "member_id", "date"),
        Index("ix_bac_readings_member_change", "member_id", "change_seq"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    date: Mapped[date] = mapped_column(Date)
    bac_g_dl: Mapped[Decimal] = mapped_column(Numeric(4, 3))
    device_model: Mapped[str | None] = mapped_column(String(80))
    device_serial: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
