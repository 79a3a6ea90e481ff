"""Safety flags (issue 5): what the rules found, the alerts they raised and the staff notifications sent.

* `flags`: one row per finding a coach must handle. At most one flag per member and rule is still
  to handle (open or acknowledged; a `cleared` flag stopped being true): the partial unique index
  `uq_flags_member_rule_unresolved`. New evidence updates that flag; after it is resolved, a new
  flag opens only on evidence it does not already hold (companion/safety/findings.py).
* `flag_alerts`: the ledger that keeps alerts to one per member, rule and (member-local) day: its
  unique key is that triple, so a replay, a retry or a concurrent scan cannot alert twice.
* `staff_notifications`: one row per recipient and channel (an inbox entry, a log line; push or email
  later). A row with `sent_at` NULL is waiting for its channel (an outbox).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, utcnow


class FlagStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    #: The finding stopped being true on a rescan (doses entered late as taken, a member active again):
    #: out of the queue of flags to handle, kept for the "cleared" filter and the member's timeline.
    CLEARED = "cleared"


#: The statuses of a flag still to handle: at most one per member and rule.
UNRESOLVED = (FlagStatus.OPEN.value, FlagStatus.ACKNOWLEDGED.value)


class NotificationKind(enum.StrEnum):
    #: An urgent flag opened or gained evidence: its member's coach (or every admin) is told at once.
    URGENT_FLAG = "urgent_flag"
    #: An urgent flag was not acknowledged within the SLA: every admin is told, once.
    ESCALATION = "escalation"


class Flag(Base):
    __tablename__ = "flags"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'acknowledged', 'resolved', 'cleared')", name="status"),
        CheckConstraint("tier BETWEEN 1 AND 3", name="tier_range"),
        CheckConstraint("first_seen <= last_seen", name="seen_order"),
        CheckConstraint(
            "(status = 'resolved') = (resolved_at IS NOT NULL)", name="resolved_at_when_resolved"
        ),
        CheckConstraint("(status = 'cleared') = (cleared_at IS NOT NULL)", name="cleared_at_when_cleared"),
        # One flag per member and rule still to handle (open or acknowledged): new evidence updates it.
        Index(
            "uq_flags_member_rule_unresolved",
            "member_id",
            "rule",
            unique=True,
            postgresql_where=text("status IN ('open', 'acknowledged')"),
        ),
        # Resolved flags a finding is compared with (only those whose evidence can still be cited).
        Index("ix_flags_member_rule_last_seen", "member_id", "rule", "last_seen"),
        # Urgent flags waiting for acknowledgement: what the escalation beat looks at every minute.
        Index(
            "ix_flags_escalation_due",
            "created_at",
            postgresql_where=text("tier = 3 AND status = 'open' AND escalated_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(SmallInteger)
    #: domain.safety.Tier: 1 info, 2 warning, 3 urgent (a number, so the queue sorts on an index).
    tier: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16), default=FlagStatus.OPEN.value)
    #: The evidence ids of every finding that opened or updated this flag (domain.safety), sorted.
    evidence: Mapped[list[str]] = mapped_column(ARRAY(Text))
    #: Built by the rule from codes, counts and dates: never a member's free text.
    summary: Mapped[str] = mapped_column(Text)
    symptoms: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    medications: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    #: The member's local dates of the earliest and latest evidence.
    first_seen: Mapped[date] = mapped_column(Date)
    last_seen: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    #: When a rescan found the flag no longer true, why (built from codes and dates, never free text),
    #: and the entries that showed it (evidence ids, as `evidence`).
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_reason: Mapped[str | None] = mapped_column(Text)
    cleared_evidence: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    #: Set once, when an urgent flag was not acknowledged within the SLA and the admins were told.
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The queue the flag was routed to: the member's coach then, or NULL for the admins' queue.
    assigned_coach_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class FlagAlert(Base):
    """An alert raised about a flag: at most one per member, rule and member-local day."""

    __tablename__ = "flag_alerts"
    __table_args__ = (
        UniqueConstraint("member_id", "rule", "day", name="uq_flag_alerts_member_rule_day"),
        CheckConstraint("reason IN ('opened', 'new_evidence')", name="reason"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    flag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flags.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(64))
    #: The member's local date when the alert was raised.
    day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(16))
    #: The coach told, or NULL when the member had none and every admin was told (the admins' queue).
    recipient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StaffNotification(Base):
    """One message to one staff member on one channel. `sent_at` NULL: not yet handed to the channel."""

    __tablename__ = "staff_notifications"
    __table_args__ = (
        CheckConstraint("kind IN ('urgent_flag', 'escalation')", name="kind"),
        CheckConstraint("(kind = 'urgent_flag') = (alert_id IS NOT NULL)", name="alert_when_urgent_flag"),
        # Once per alert, recipient and channel ...
        Index(
            "uq_staff_notifications_alert",
            "alert_id",
            "recipient_id",
            "channel",
            unique=True,
            postgresql_where=text("alert_id IS NOT NULL"),
        ),
        # ... and one escalation per flag, recipient and channel.
        Index(
            "uq_staff_notifications_escalation",
            "flag_id",
            "recipient_id",
            "channel",
            unique=True,
            postgresql_where=text("kind = 'escalation'"),
        ),
        Index("ix_staff_notifications_recipient", "recipient_id", "created_at"),
        Index("ix_staff_notifications_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    recipient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    flag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flags.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("flag_alerts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    #: companion/safety/channels.py: "inbox", "log" (push/email when a provider exists).
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SafetyWatch(Base):
    """When each member's safety rules must run next, absent any message: the row behind the sweep.

    A write of an entry or plan sets `next_check_at` to its own time (the request is a row first, the
    `safety.scan_member` message second); a scan sets it to `domain.safety.next_check`, the instant
    time alone could next change the findings (a dose's deadline, a midnight), or NULL when nothing
    can. The sweep visits the members whose instant has passed, and those with no row yet.
    """

    __tablename__ = "safety_watch"
    __table_args__ = (
        Index(
            "ix_safety_watch_next_check_at",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
