"""Nudges are rows first (DESIGN.md): planned with a due time in UTC, claimed by the dispatcher, delivered
to the inbox and to each of the member's phones, each push recorded before it leaves.

* `Nudge`: one reminder, tip or coach message for one member. `dedupe_key` is unique per member, so
  planning the same window twice never makes a second row ("one nudge per kind and slot, ever").
  `due_at` is when the dispatcher looks at a pending row next: the planned instant, moved forward when
  the row is held (quiet hours) or snoozed; the planned instant itself is always `local_date` at
  `local_slot` in `zone` (wall-clock kinds) or the event's instant (craving support, coach messages).
* `Message`: what a coach wrote; its nudge has the same id (so the inbox, `GET /sync` and the push
  name one id) and `subject_id` pointing at it. Syncable: phones learn of it through `GET /sync`.
* `Delivery`: one push of one nudge to one device, in one send round (a snooze starts a new round).
  Its row is committed as `sending` before the request leaves, so a worker killed mid-delivery never
  sends the same push twice: the next worker finds the row and does not send it again.
* `NudgePlanning`: how far ahead each member's wall-clock nudges are planned (`planned_until`), so
  the dispatcher picks the members whose window needs planning with one indexed query.
"""

from __future__ import annotations

import enum
import functools
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from companion.accounts.models import Member
from companion.db import Base, utcnow
from companion.domain.nudges import MemberSettings, NudgeKind, PlannedNudge
from companion.domain.summary import Goal, GoalType
from companion.sync_seq import Syncable


class NudgeStatus(enum.StrEnum):
    #: Waiting for `due_at` (planned, held, or snoozed).
    PENDING = "pending"
    #: Claimed for delivery: a `nudges.deliver` task owns it until `next_attempt_at` (its lease, or
    #: the time of a push retry).
    SENDING = "sending"
    #: In the inbox, and every push reached an end (accepted, or refused for good).
    SENT = "sent"
    #: Never sent: expired, already done, muted or over the daily cap (`skip_reason`).
    SKIPPED = "skipped"
    #: In the inbox, but no phone accepted the push (`last_error`).
    FAILED = "failed"


class DeliveryStatus(enum.StrEnum):
    #: Recorded before the request leaves. Found so by a later worker: its sender died mid-request.
    SENDING = "sending"
    SENT = "sent"
    #: A transient error: sent again at `next_attempt_at`.
    RETRY = "retry"
    FAILED = "failed"
    #: The worker died after recording it: it may have reached the gateway, so it is never sent again.
    UNKNOWN = "unknown"


def _values(cls: type[enum.Enum]) -> str:
    return ", ".join(f"'{m.value}'" for m in cls)


class Nudge(Base):
    __tablename__ = "nudges"
    __table_args__ = (
        UniqueConstraint("member_id", "dedupe_key"),
        CheckConstraint(f"kind IN ({_values(NudgeKind)})", name="kind"),
        CheckConstraint(f"status IN ({_values(NudgeStatus)})", name="status"),
        # The dispatcher's queue: pending rows by due time.
        Index("ix_nudges_pending_due", "due_at", postgresql_where=text("status = 'pending'")),
        # Rows being delivered whose lease ran out or whose push retry is due.
        Index("ix_nudges_sending_next", "next_attempt_at", postgresql_where=text("status = 'sending'")),
        # What counts toward a member's daily cap (`dispatch._sent_today`), without reading their whole
        # history: a year of nudges is ~1,500 rows a member.
        Index(
            "ix_nudges_member_sent",
            "member_id",
            text("coalesce(sent_at, due_at)"),
            postgresql_where=text("status IN ('sending', 'sent', 'failed') AND kind <> 'coach_message'"),
        ),
        # Each member's last re-engagement (planning): a few rows, not the member's history.
        Index(
            "ix_nudges_member_reengagement",
            "member_id",
            "local_date",
            postgresql_where=text("kind = 'reengagement'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(120))
    #: The member's local day and wall time the nudge is for, in `zone` (their zone when planned).
    local_date: Mapped[date] = mapped_column(Date)
    local_slot: Mapped[time] = mapped_column(Time)
    zone: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Never sent at or after this instant (None: never expires, as coach messages).
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: A key of `domain.nudges.TEMPLATES`: the push and inbox texts, which carry no health data.
    template: Mapped[str] = mapped_column(String(32))
    #: The plan, craving or message the nudge is about.
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default=NudgeStatus.PENDING.value)
    skip_reason: Mapped[str | None] = mapped_column(String(32))
    #: Delivery passes made (each sends to every device not yet done).
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    #: While sending: when the dispatcher sends the delivery task again (lease end, or push retry).
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When it reached the inbox (its latest send, after a snooze).
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Hidden from the inbox until then, and sent again (a new round) at that time.
    snoozed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: 0 for the first send; each snooze starts the next round of deliveries.
    send_round: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Message(Syncable, Base):
    """A coach's message to a member: the inbox shows its body; the push never does."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_member_change", "member_id", "change_seq"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    sender_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Delivery(Base):
    """One push of a nudge to one device in one send round: recorded `sending` before it leaves.

    Stored with fillfactor 50 (migration f3b8d2e6a417): the answer's update then stays on the row's page.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({_values(DeliveryStatus)})", name="status"),
        Index("ix_deliveries_device", "device_id"),
    )

    nudge_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nudges.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    send_round: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=0)
    #: `fcm`, `apns` or `log`.
    provider: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    #: The provider's error code (e.g. UNREGISTERED, 410 Unregistered), never the payload.
    error: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NudgePlanning(Base):
    """Each member's wall-clock nudges are planned up to `planned_until` (UTC, exclusive)."""

    __tablename__ = "nudge_planning"
    __table_args__ = (Index("ix_nudge_planning_planned_until", "planned_until"),)

    member_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    planned_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- rows as the domain's values -------------------------------------------------------------------


def planned_of(row: Any) -> PlannedNudge | None:
    """The row as the domain's `PlannedNudge`; None when it can no longer be sent (due at or after expiry)."""
    if row.expires_at is not None and row.due_at >= row.expires_at:
        return None
    return PlannedNudge(
        kind=NudgeKind(row.kind),
        dedupe_key=row.dedupe_key,
        local_date=row.local_date,
        local_slot=row.local_slot,
        zone=row.zone,
        due_at=row.due_at,
        expires_at=row.expires_at,
        template=row.template,
        subject_id=row.subject_id,
    )


MEMBER_COLUMNS = (
    Member.id,
    Member.timezone,
    Member.log_time,
    Member.quiet_start,
    Member.quiet_end,
    Member.muted_kinds,
    Member.goal_type,
    Member.weekly_limit,
    Member.country,
)


def settings_of(row: Any) -> MemberSettings:
    """`MemberSettings` from a row of MEMBER_COLUMNS. :raises ValueError: settings the domain refuses."""
    return settings_from_values(
        row.timezone,
        row.log_time,
        row.quiet_start,
        row.quiet_end,
        tuple(row.muted_kinds or ()),
        row.goal_type,
        row.weekly_limit,
        row.country,
    )


@functools.lru_cache(maxsize=16384)  # settings are values: members with the same ones share one (frozen)
def settings_from_values(
    zone: str,
    log_time: time,
    quiet_start: time | None,
    quiet_end: time | None,
    muted_kinds: tuple[str, ...],
    goal_type: str,
    weekly_limit: Any,
    country: str,
) -> MemberSettings:
    return MemberSettings(
        zone=zone,
        log_time=log_time,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        muted_kinds=frozenset(muted_kinds),
        goal=Goal(GoalType(goal_type), Decimal(weekly_limit) if weekly_limit is not None else None),
        country=country,
    )
