"""Opaque bearer tokens: random, stored as SHA-256, expiring, revocable, refresh rotated with reuse detection.

A login makes a token family. Each refresh spends the refresh token and issues a new pair in the same
family; presenting a spent refresh token again means it was copied, so the whole family is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.orm import attributes

from companion.accounts.models import AuthToken, Member, TokenKind, User
from companion.db import attach_as_loaded, session, utcnow
from companion.domain.errors import Unauthenticated


@dataclass(frozen=True)
class AccessToken:
    """The live access token of a request: which login (family) it belongs to."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: datetime
    refresh_expires_at: datetime


def _digest(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def _ttl(name: str) -> timedelta:
    return timedelta(seconds=current_app.config[f"COMPANION_{name}"])


def issue_pair(user: User, *, family_id: uuid.UUID | None = None, now: datetime) -> TokenPair:
    family_id = family_id or uuid.uuid4()
    access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    access_expires, refresh_expires = now + _ttl("ACCESS_TOKEN_TTL"), now + _ttl("REFRESH_TOKEN_TTL")
    session.add_all(
        [
            AuthToken(
                user_id=user.id,
                family_id=family_id,
                kind=TokenKind.ACCESS,
                token_hash=_digest(access),
                created_at=now,
                expires_at=access_expires,
            ),
            AuthToken(
                user_id=user.id,
                family_id=family_id,
                kind=TokenKind.REFRESH,
                token_hash=_digest(refresh),
                created_at=now,
                expires_at=refresh_expires,
            ),
        ]
    )
    session.flush()
    return TokenPair(access, refresh, access_expires, refresh_expires)


def _column_keys(model: type[User] | type[Member]) -> list[tuple[str, object]]:
    return [(prop.key, prop.columns[0]) for prop in model.__mapper__.column_attrs]


_USER_COLUMNS, _MEMBER_COLUMNS = _column_keys(User), _column_keys(Member)
#: Built once (on every request, building it cost more than running it): the token, its user and the
#: user's member profile in one round trip, read with Core and attached as if the ORM had loaded them
#: (`attach_as_loaded`): ORM loading of the three was a quarter of a member write's CPU.
ACCESS = (
    select(
        AuthToken.id,
        AuthToken.family_id,
        *(column for _, column in _USER_COLUMNS),
        *(column for _, column in _MEMBER_COLUMNS),
    )
    .select_from(AuthToken)
    .join(User, User.id == AuthToken.user_id)
    .outerjoin(Member, Member.id == User.id)
    .where(
        AuthToken.token_hash == bindparam("token_hash"),
        AuthToken.kind == TokenKind.ACCESS,
        AuthToken.revoked_at.is_(None),
        AuthToken.expires_at > bindparam("now"),
        User.deleted_at.is_(None),
    )
)


#: `ACCESS` and the versions of the user's and the profile's rows (PostgreSQL's `xmin`: any update of a
#: row writes a new version with a new one). The member-write lane keeps a login it read, and its write
#: holds only while `LIVE_LOGIN_GUARD` finds the token live and both rows at these versions.
ACCESS_VERSIONED = ACCESS.add_columns(
    literal_column("users.xmin::text").label("user_version"),
    literal_column("members.xmin::text").label("member_version"),
)

#: The lane's write guard (`FROM ... WHERE ...`, see `rowset.RowSpec.statement`): a row only while the
#: token passes `ACCESS`'s own conditions (test_write_lane holds the two together) and the user's and the
#: member's rows are the versions the lane read (`ACCESS_VERSIONED`).
LIVE_LOGIN_GUARD = (
    "FROM auth_tokens AS guard_token JOIN users AS guard_user ON guard_user.id = guard_token.user_id "
    "JOIN members AS guard_member ON guard_member.id = guard_user.id "
    "WHERE guard_token.token_hash = :token_hash AND guard_token.kind = 'access' "
    "AND guard_token.revoked_at IS NULL AND guard_token.expires_at > :now "
    "AND guard_user.deleted_at IS NULL AND guard_user.id = CAST(:member_id AS uuid) "
    "AND guard_user.xmin = CAST(:user_version AS xid) AND guard_member.xmin = CAST(:member_version AS xid)"
)


def access_values(raw: str, *, now: datetime) -> dict[str, Any]:
    """`ACCESS`'s parameters for a presented bearer token."""
    return {"token_hash": _digest(raw), "now": now}


def access_from_row(
    row: Sequence[Any], *, build: Callable[[type[Any], dict[str, Any]], Any] = attach_as_loaded
) -> tuple[AccessToken, User, Member | None]:
    """`ACCESS`'s row as the token, its user and the user's member profile (None for staff), each built
    by `build` (attached to the session as loaded; the write lane builds them detached)."""
    users_end = 2 + len(_USER_COLUMNS)
    members_end = users_end + len(_MEMBER_COLUMNS)  # `ACCESS_VERSIONED`'s versions follow
    user = build(User, {k: v for (k, _), v in zip(_USER_COLUMNS, row[2:users_end], strict=True)})
    member = None
    if row[users_end] is not None:  # members.id: staff have no profile
        profile = row[users_end:members_end]
        member = build(Member, {k: v for (k, _), v in zip(_MEMBER_COLUMNS, profile, strict=True)})
        attributes.set_committed_value(member, "user", user)
    attributes.set_committed_value(user, "member", member)
    return AccessToken(row[0], row[1], user.id), user, member


def authenticate_access(raw: str, *, now: datetime | None = None) -> tuple[AccessToken, User] | None:
    """The live access token and its user (with `user.member` loaded), or None (unknown, expired,
    revoked, erased account). The member profile comes in the same query: nearly every member call
    reads it (docs/performance/member-writes.md)."""
    row = session.connection().execute(ACCESS, access_values(raw, now=now or utcnow())).first()
    if row is None:
        return None
    token, user, _member = access_from_row(row)
    return token, user


def refresh(raw: str, *, now: datetime) -> tuple[User, TokenPair] | None:
    """Spend a refresh token for a new pair.

    A second use revokes the family (theft detection) and returns None: the caller commits that
    revocation and then answers 401.
    """
    token = session.execute(
        select(AuthToken).where(AuthToken.token_hash == _digest(raw), AuthToken.kind == TokenKind.REFRESH)
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        raise Unauthenticated("The refresh token is not valid.")
    # Spend it atomically: of two concurrent exchanges, exactly one wins; the other is a reuse.
    spent = session.execute(
        update(AuthToken)
        .where(AuthToken.id == token.id, AuthToken.spent_at.is_(None))
        .values(spent_at=now)
        .returning(AuthToken.id)
    ).first()
    if spent is None:
        revoke_family(token.family_id, now=now)
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise Unauthenticated("The refresh token is not valid.")
    return user, issue_pair(user, family_id=token.family_id, now=now)


def revoke_family(family_id: uuid.UUID, *, now: datetime) -> None:
    session.execute(
        update(AuthToken)
        .where(AuthToken.family_id == family_id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_all(user_id: uuid.UUID, *, now: datetime) -> None:
    session.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
