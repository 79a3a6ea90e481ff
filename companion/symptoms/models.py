"""A symptom report: one or more symptoms, each with a severity, at an instant the phone names."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, utcnow
from companion.sync_seq import Syncable


class SymptomReport(Syncable, Base):
    __tablename__ = "symptom_reports"
    __table_args__ = (
        Index("ix_symptom_reports_member_date", "member_id", "date"),
        Index("ix_symptom_reports_member_change", "member_id", "change_seq"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The member's local date when it was reported; a later time zone change does not move it.
    date: Mapped[date] = mapped_column(Date)
    #: [{code, severity}] as sent (codes from domain.medications.SYMPTOM_CODES, each once).
    symptoms: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    #: The symptoms' codes, for the safety loader's queries.
    codes: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
