"""Dashboard sign-ins kept on the server (issue 21): the cookie carries only a session id, checked on every
request against its row. Sign-out, a password change, erasure and an admin's "end all sessions" end the
rows; a session also ends after DASHBOARD_IDLE_SECONDS without a request, DASHBOARD_ABSOLUTE_SECONDS after
sign-in, and when its cookie comes from another browser (User-Agent) or address than it was made for.

Services flush and never commit (STYLE.md); the view or loader around them owns the transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, Index, String, Uuid, select, text, update
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, session

#: A session's last_seen_at is written at most this often (a dashboard page is several requests).
TOUCH_EVERY = timedelta(seconds=60)


class StaffSession(Base):
    __tablename__ = "staff_sessions"
    __table_args__ = (
        Index("ix_staff_sessions_open_by_user", "user_id", postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: sha256 of the browser's User-Agent and of the client address it signed in from; never the values.
    agent_hash: Mapped[str] = mapped_column(String(64))
    address_hash: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: signed_out, password_changed, erased, ended_by_admin, idle, expired, other_client
    ended_reason: Mapped[str | None] = mapped_column(String(32))


def fingerprint(value: str | None) -> str:
    return hashlib.sha256((value or "").encode("utf-8", "replace")).hexdigest()


def start(user_id: uuid.UUID, *, agent: str | None, address: str | None, now: datetime) -> StaffSession:
    row = StaffSession(
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        agent_hash=fingerprint(agent),
        address_hash=fingerprint(address),
    )
    session.add(row)
    session.flush()
    return row


def check(
    raw_id: str | None,
    user_id: uuid.UUID,
    *,
    agent: str | None,
    address: str | None,
    now: datetime,
    idle: timedelta,
    absolute: timedelta,
) -> bool:
    """True when `raw_id` names an open session of `user_id` made for this client; otherwise False, and a
    session that just timed out or was replayed from another client is ended (it cannot come back)."""
    try:
        sid = uuid.UUID(str(raw_id))
    except ValueError:
        return False
    row = session.get(StaffSession, sid)
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return False
    reason = None
    if now - row.last_seen_at > idle:
        reason = "idle"
    elif now - row.created_at > absolute:
        reason = "expired"
    elif row.agent_hash != fingerprint(agent) or row.address_hash != fingerprint(address):
        reason = "other_client"
    if reason is not None:
        row.ended_at, row.ended_reason = now, reason
        session.flush()
        return False
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return True


def end(raw_id: str | None, *, reason: str, now: datetime) -> None:
    try:
        sid = uuid.UUID(str(raw_id))
    except ValueError:
        return
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == sid, StaffSession.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
    )


def end_all(*, reason: str, now: datetime, user_id: uuid.UUID | None = None, keep: str | None = None) -> int:
    """End every open session (of one user when given), but `keep` (the caller's own); how many ended."""
    query = update(StaffSession).where(StaffSession.ended_at.is_(None))
    if user_id is not None:
        query = query.where(StaffSession.user_id == user_id)
    if keep is not None:
        with contextlib.suppress(ValueError):
            query = query.where(StaffSession.id != uuid.UUID(keep))
    result = session.execute(query.values(ended_at=now, ended_reason=reason))
    return int(result.rowcount or 0)


def open_count() -> int:
    return len(session.scalars(select(StaffSession.id).where(StaffSession.ended_at.is_(None))).all())
