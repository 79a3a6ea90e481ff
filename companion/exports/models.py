"""Insurer export jobs: a row first, then a message (DESIGN.md), and the built file kept with the row.

The file lives in PostgreSQL (`content`, bytea), not on a disk: a report is aggregates only (a few
hundred rows, kilobytes), so the database holds it cheaply, and then every web and worker process on
every machine serves the same file with no shared volume, it is backed up and restored with the
record, and `status = 'done'` and the file commit together: a download can never find a done job
without its file, or a file of a failed one.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, utcnow


class ExportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"
    FHIR = "fhir"


class ExportJob(Base):
    __tablename__ = "export_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        CheckConstraint("format IN ('csv', 'json', 'fhir')", name="format"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        CheckConstraint(
            "extract(day FROM start_month) = 1 AND extract(day FROM end_month) = 1"
            " AND end_month >= start_month",
            name="whole_months",
        ),
        CheckConstraint("(status = 'done') = (content IS NOT NULL)", name="content_when_done"),
        Index("ix_export_jobs_insurer_created", "insurer_id", "created_at"),
        # The safety sweep looks only at unfinished jobs.
        Index(
            "ix_export_jobs_unfinished",
            "status",
            "created_at",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    insurer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("insurers.id", ondelete="RESTRICT"))
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    #: The period's first and last months, each as the month's first day.
    start_month: Mapped[date] = mapped_column(Date)
    end_month: Mapped[date] = mapped_column(Date)
    format: Mapped[str] = mapped_column(String(8))
    breakdown: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list)
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.QUEUED.value)
    progress: Mapped[int] = mapped_column(SmallInteger, default=0)
    row_count: Mapped[int | None] = mapped_column(Integer)
    #: Builds started (a worker that died mid-build leaves a running job the sweep re-queues).
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: When `exports.build` was last sent for it: the sweep re-sends a queued job after a while.
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Bumped with progress while running: a running job whose heartbeat stops has lost its worker.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    content_type: Mapped[str | None] = mapped_column(String(64))


class ExportRelease(Base):
    """The release ledger (issue 21): every member count an insurer's report published, by cell, so
    that a later report over an overlapping period publishes no count that differs from one of these
    by 1..10 (`domain.outcomes.release_forced`). Written when a report is built, before it is stored."""

    __tablename__ = "export_releases"
    __table_args__ = (Index("ix_export_releases_insurer_period", "insurer_id", "start_month", "end_month"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    insurer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("insurers.id", ondelete="CASCADE"))
    start_month: Mapped[date] = mapped_column(Date)
    end_month: Mapped[date] = mapped_column(Date)
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: {"<breakdown>/<category>": {"<column>": count}}: published counts only, never a hidden one.
    cells: Mapped[dict[str, Any]] = mapped_column(JSONB)
