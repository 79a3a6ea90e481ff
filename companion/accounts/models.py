"""Accounts: people who sign in, the member profile, insurer plans, coach caseloads, tokens, devices."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    Time,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from companion.db import Base, utcnow
from companion.domain import localtime


class Role(enum.StrEnum):
    MEMBER = "member"
    COACH = "coach"
    ADMIN = "admin"
    INSURER_ANALYST = "insurer_analyst"


STAFF_ROLES = (Role.COACH, Role.ADMIN, Role.INSURER_ANALYST)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Insurer(Base):
    __tablename__ = "insurers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    #: The enrollment code members type at registration; also names the plan on the command line.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """Anyone who signs in. A member also has a `Member` row; staff do not."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_lower", text("lower(email)"), unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(String(80))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    #: Staff: the IANA zone the dashboard shows times in; NULL: the browser's zone at sign-in, else UTC.
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: Insurer analysts see only their own plan's aggregates.
    insurer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("insurers.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Set when the account is erased (DELETE /me); the row stays as a tombstone without personal data.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Bumped on password change or erasure: dashboard sessions made before it stop working.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    member: Mapped[Member | None] = relationship(back_populates="user", uselist=False)
    insurer: Mapped[Insurer | None] = relationship()

    # Flask-Login's user protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.deleted_at is None

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"


class Member(Base):
    """The member's profile. Deleting it erases every record they logged (ON DELETE CASCADE)."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("goal_type IN ('abstain', 'moderate')", name="goal_type"),
        CheckConstraint("sex IN ('female', 'male', 'unspecified')", name="sex"),
        CheckConstraint(
            "(goal_type = 'moderate') = (weekly_limit IS NOT NULL)", name="weekly_limit_with_moderate"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2), default="US")
    sex: Mapped[str] = mapped_column(String(16), default="unspecified")
    goal_type: Mapped[str] = mapped_column(String(16))
    #: Standard drinks per week, in the member's country's size (moderate goals only).
    weekly_limit: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    insurer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("insurers.id", ondelete="SET NULL"))
    outcome_sharing: Mapped[bool] = mapped_column(Boolean, default=False)
    consents_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    log_time: Mapped[time] = mapped_column(Time, default=time(20, 0))
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    muted_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="member")
    insurer: Mapped[Insurer | None] = relationship()


class CoachAssignment(Base):
    """A member on a coach's caseload, from `started_at` until `ended_at`. One current coach per member."""

    __tablename__ = "coach_assignments"
    __table_args__ = (
        Index(
            "uq_coach_assignments_current",
            "member_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_coach_assignments_coach_current", "coach_id", postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    coach_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TokenKind(enum.StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class AuthToken(Base):
    """An opaque bearer token, stored as its SHA-256. Tokens of one login share a `family_id`."""

    __tablename__ = "auth_tokens"
    __table_args__ = (Index("ix_auth_tokens_family", "family_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[TokenKind] = mapped_column(_enum(TokenKind, "token_kind"))
    token_hash: Mapped[bytes] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: A refresh token is spent once exchanged; presenting it again is theft.
    spent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Device(Base):
    """A phone that receives push notifications. A push token belongs to one member at a time."""

    __tablename__ = "devices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    push_token: Mapped[str] = mapped_column(String(4096), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deactivated_reason: Mapped[str | None] = mapped_column(String(64))


class ConsentEvent(Base):
    """The consent ledger: each consent given or withdrawn, when, and under which version of its text.
    Append-only in the code; erased with the member (ON DELETE CASCADE), like every record of theirs."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_member_at", "member_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    #: The consent's name as the API spells it ("outcome_sharing").
    consent: Mapped[str] = mapped_column(String(32))
    given: Mapped[bool] = mapped_column(Boolean)
    #: The version of the consent text the member was shown (accounts.services.CONSENT_TEXT_VERSIONS).
    text_version: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def local_today(member: Member, now: datetime) -> date:
    return localtime.local_date(now, member.timezone)
