"""One PACS a member and week (a local Monday), named by the phone's id."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, utcnow
from companion.sync_seq import Syncable


class PacsReport(Syncable, Base):
    __tablename__ = "pacs_reports"
    __table_args__ = (
        CheckConstraint("total BETWEEN 0 AND 30", name="total_range"),
        UniqueConstraint("member_id", "week_of"),  # one PACS a member and week
        Index("ix_pacs_reports_member_change", "member_id", "change_seq"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: The local Monday of the week the answers recall.
    week_of: Mapped[date] = mapped_column(Date)
    #: The five item scores, 0-6 each, in the scale's order.
    items: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))
    total: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
