"""The audit log: who did what to whose records, and when. Append-only.

Every staff read of a member's records, every staff write (a plan created or changed, a message
sent, a flag acknowledged or resolved) and every insurer export writes one row (DOMAIN.md "Privacy").
The migration installs a trigger that refuses UPDATE and DELETE on the table, so not even
a bug in the application can rewrite history. `subject_member_id` has no foreign key on purpose: an
erased member's rows go, their audit trail stays. `actor_id` is None for the command line.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject_at", "subject_member_id", "at"),
        Index("ix_audit_log_actor_at", "actor_id", "at"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    #: "<feature>.<verb>", e.g. "export.requested", "export.downloaded", "member.timeline_viewed".
    action: Mapped[str] = mapped_column(String(64))
    subject_member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: What exactly: ids, periods, formats. Never free text a member wrote, and no health data but one
    #: exception: a staff write of a medication plan keeps the plan before and after (issue 22: who
    #: changed this dose, from what), as staff wrote it.
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
