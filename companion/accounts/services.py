"""Accounts: registration, sign-in, the member's own profile, devices, export and erasure.

Services flush and never commit: the view or command around them owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from companion import privacy
from companion.accounts import tokens
from companion.accounts.models import (
    CoachAssignment,
    ConsentEvent,
    Device,
    Insurer,
    Member,
    Role,
    User,
)
from companion.accounts.passwords import hash_password, verify_password
from companion.auth import sessions as staff_sessions
from companion.db import session
from companion.domain import drinking
from companion.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from companion.nudges import hooks as nudge_hooks
from companion.tracking import services as tracking
from companion.tracking.models import DrinkLog


@dataclass(frozen=True)
class SignedIn:
    user: User
    pair: tokens.TokenPair


def find_user_by_email(email: str) -> User | None:
    return session.execute(
        select(User).where(func.lower(User.email) == email.strip().lower(), User.deleted_at.is_(None))
    ).scalar_one_or_none()


def _email_taken(email: str) -> bool:
    return (
        session.execute(select(User.id).where(func.lower(User.email) == email.strip().lower())).first()
        is not None
    )


#: The version of each consent's text the apps show; recorded with every consent given or withdrawn.
CONSENT_TEXT_VERSIONS = {"outcome_sharing": "2026-11-01"}


def _record_consents(member_id: uuid.UUID, consents: dict[str, Any], *, now: datetime) -> None:
    for name, given in sorted(consents.items()):
        session.add(
            ConsentEvent(member_id=member_id, consent=name, given=bool(given),
                         text_version=CONSENT_TEXT_VERSIONS[name], at=now)
        )  # fmt: skip


def register_member(data: dict[str, Any], *, now: datetime) -> SignedIn:
    """Create a member and sign them in. An enrollment code links them to an insurer plan."""
    insurer = None
    if data.get("enrollment_code"):
        insurer = session.execute(
            select(Insurer).where(func.upper(Insurer.code) == data["enrollment_code"].strip().upper())
        ).scalar_one_or_none()
        if insurer is None:
            raise InvalidInput(
                "The request body is invalid.", fields={"enrollment_code": ["Unknown enrollment code."]}
            )
    if _email_taken(data["email"]):
        raise Conflict(
            "An account with this email already exists.", fields={"email": ["Already registered."]}
        )
    user = User(
        email=data["email"].strip(),
        password_hash=hash_password(data["password"]),
        display_name=data.get("display_name"),
        role=Role.MEMBER,
        created_at=now,
    )
    consents = data.get("consents") or {}
    member = Member(
        user=user,
        timezone=data["timezone"],
        country=data["country"],
        sex=data["sex"],
        goal_type=data["goal"]["type"],
        weekly_limit=data["goal"].get("weekly_limit"),
        insurer=insurer,
        outcome_sharing=bool(consents.get("outcome_sharing", False)),
        consents_updated_at=now if consents else None,
        muted_kinds=[],
        enrolled_at=now,
        updated_at=now,
    )
    session.add_all([user, member])
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same email won the race
        raise Conflict(
            "An account with this email already exists.", fields={"email": ["Already registered."]}
        ) from exc
    if consents:
        _record_consents(user.id, consents, now=now)
    return SignedIn(user, tokens.issue_pair(user, now=now))


def sign_in(email: str, password: str, *, now: datetime) -> SignedIn:
    """Unknown email and wrong password are the same 401, in the same time."""
    user = find_user_by_email(email)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthenticated("The email or password is wrong.")
    return SignedIn(user, tokens.issue_pair(user, now=now))


def refresh(raw_refresh_token: str, *, now: datetime) -> SignedIn | None:
    result = tokens.refresh(raw_refresh_token, now=now)
    return None if result is None else SignedIn(*result)


def sign_out(token_family: uuid.UUID, *, now: datetime) -> None:
    tokens.revoke_family(token_family, now=now)


def current_coach(member_id: uuid.UUID) -> User | None:
    return session.execute(
        select(User)
        .join(CoachAssignment, CoachAssignment.coach_id == User.id)
        .where(CoachAssignment.member_id == member_id, CoachAssignment.ended_at.is_(None))
    ).scalar_one_or_none()


def member_view(user: User) -> dict[str, Any]:
    """The member as `GET /me` shows it."""
    member = user.member
    assert member is not None
    coach = current_coach(member.id)
    quiet = (
        {"start": member.quiet_start, "end": member.quiet_end}
        if member.quiet_start is not None and member.quiet_end is not None
        else None
    )
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role.value,
        "display_name": user.display_name,
        "timezone": member.timezone,
        "country": member.country,
        "sex": member.sex,
        "goal": {"type": member.goal_type, "weekly_limit": member.weekly_limit},
        "reminders": {
            "log_time": member.log_time,
            "quiet_hours": quiet,
            "muted_kinds": list(member.muted_kinds),
        },
        "consents": {
            "outcome_sharing": member.outcome_sharing,
            "updated_at": member.consents_updated_at.isoformat() if member.consents_updated_at else None,
        },
        "coach": {"id": coach.id, "display_name": coach.display_name} if coach else None,
        "insurer": {"name": member.insurer.name, "code": member.insurer.code} if member.insurer else None,
        "enrolled_at": member.enrolled_at,
        "updated_at": member.updated_at,
    }


def update_member(user: User, changes: dict[str, Any], *, now: datetime) -> User:
    """Apply a PATCH /me. A time zone change applies from now on; past entries keep their dates."""
    member = user.member
    assert member is not None
    zone_before, log_time_before, sex_before = member.timezone, member.log_time, member.sex
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    for name in ("timezone", "country", "sex"):
        if name in changes:
            setattr(member, name, changes[name])
    if "goal" in changes:
        member.goal_type = changes["goal"]["type"]
        limit = changes["goal"].get("weekly_limit")
        member.weekly_limit = Decimal(limit) if limit is not None else None
    reminders = changes.get("reminders") or {}
    if "log_time" in reminders:
        member.log_time = reminders["log_time"]
    if "quiet_hours" in reminders:
        quiet = reminders["quiet_hours"]
        member.quiet_start, member.quiet_end = (quiet["start"], quiet["end"]) if quiet else (None, None)
    if "muted_kinds" in reminders:
        member.muted_kinds = sorted(set(reminders["muted_kinds"]))
    if "consents" in changes:
        if changes["consents"]["outcome_sharing"] != member.outcome_sharing:
            _record_consents(member.id, changes["consents"], now=now)
        member.outcome_sharing = changes["consents"]["outcome_sharing"]
        member.consents_updated_at = now
    member.updated_at = now
    session.flush()
    if member.sex != sex_before:
        rederive_heavy_days(member, now=now)
    nudge_hooks.settings_changed(member, zone_before=zone_before, log_time_before=log_time_before, now=now)
    return user


def rederive_heavy_days(member: Member, *, now: datetime) -> int:
    """A change of sex changes the heavy-day threshold: every stored drink log's `heavy` is derived
    again from its grams (DOMAIN.md; the flags, the summary and the exports read the stored value),
    and the safety rules run again. Returns how many logs changed.

    The logs keep their `change_seq` and `server_updated_at`: this is not an entry (the disengagement
    rule reads the latest entry from them), so phones see the new value on their next read of the
    logs, not through `GET /sync`."""
    threshold = drinking.heavy_day_grams(member.sex)
    changed = session.execute(
        update(DrinkLog)
        .where(
            DrinkLog.member_id == member.id,
            DrinkLog.heavy.is_distinct_from(DrinkLog.grams_ethanol >= threshold),
        )
        .values(heavy=DrinkLog.grams_ethanol >= threshold)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        tracking.request_safety_scan(member, now=now)
    return changed


def register_device(
    member_id: uuid.UUID, platform: str, push_token: str, *, now: datetime
) -> tuple[Device, bool]:
    """(device, created). A push token known for another member moves to this one (a shared phone)."""
    device = session.execute(
        select(Device).where(Device.push_token == push_token).with_for_update()
    ).scalar_one_or_none()
    if device is not None and device.member_id == member_id:
        device.platform, device.active, device.last_seen_at, device.deactivated_reason = (
            platform,
            True,
            now,
            None,
        )
        session.flush()
        return device, False
    if device is not None:
        session.delete(device)
        session.flush()
    device = Device(
        member_id=member_id, platform=platform, push_token=push_token, created_at=now, last_seen_at=now
    )
    session.add(device)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # the same token registered concurrently: the retry answers 200
        raise Conflict("This device is being registered by another request; retry.") from exc
    return device, True


def list_devices(member_id: uuid.UUID) -> list[Device]:
    return list(
        session.execute(
            select(Device).where(Device.member_id == member_id).order_by(Device.created_at)
        ).scalars()
    )


def remove_device(member_id: uuid.UUID, device_id: uuid.UUID) -> None:
    device = session.get(Device, device_id)
    if device is None or device.member_id != member_id:
        raise NotFound("No such device.")
    session.delete(device)
    session.flush()


def export_member(user: User) -> dict[str, Any]:
    """Every record held about the member (GET /me/export)."""
    member_id = user.id
    return {
        "account": {
            "id": str(user.id),
            "email": user.email,
            "display_name": user.display_name,
            "created_at": user.created_at.isoformat(),
        },
        "profile": _jsonable(member_view(user)),
        "devices": [
            {
                "id": str(d.id),
                "platform": d.platform,
                "active": d.active,
                "created_at": d.created_at.isoformat(),
            }
            for d in list_devices(member_id)
        ],
        "coach_assignments": [
            {
                "coach_id": str(a.coach_id),
                "started_at": a.started_at.isoformat(),
                "ended_at": a.ended_at.isoformat() if a.ended_at else None,
            }
            for a in session.execute(
                select(CoachAssignment).where(CoachAssignment.member_id == member_id)
            ).scalars()
        ],
        "consent_ledger": [
            {
                "consent": e.consent,
                "given": e.given,
                "text_version": e.text_version,
                "at": e.at.isoformat(),
            }
            for e in session.execute(
                select(ConsentEvent).where(ConsentEvent.member_id == member_id).order_by(ConsentEvent.at)
            ).scalars()
        ],
        **privacy.export_member(member_id),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def erase_member(user: User, password: str, *, now: datetime) -> None:
    """DELETE /me: the account can no longer sign in, and its personal data is erased.

    The `members` row and everything that cascades from it (every logged record, devices, caseload)
    is deleted; the `users` row stays as a tombstone with no email, name or password, so audit
    entries that name it still resolve.
    """
    if not verify_password(user.password_hash, password):
        raise Unauthenticated("The password is wrong.")
    tokens.revoke_all(user.id, now=now)
    staff_sessions.end_all(reason="erased", now=now, user_id=user.id)
    if user.member is not None:
        session.delete(user.member)
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            email=f"erased-{user.id}@invalid",
            display_name=None,
            password_hash=None,
            deleted_at=now,
            session_epoch=User.session_epoch + 1,
        )
    )
    session.flush()


def set_password(email: str, password: str, *, now: datetime) -> User:
    """A new password (the command line's reset): every sign-in made with the old one ends, bearer
    tokens and dashboard sessions alike."""
    user = find_user_by_email(email)
    if user is None or not user.is_active:
        raise NotFound("No such account.")
    if not 10 <= len(password) <= 1024:
        message = "Length must be between 10 and 1024."
        raise InvalidInput("The password is invalid.", fields={"password": [message]})
    user.password_hash = hash_password(password)
    user.session_epoch += 1
    tokens.revoke_all(user.id, now=now)
    staff_sessions.end_all(reason="password_changed", now=now, user_id=user.id)
    session.flush()
    return user


# --- staff and plans: the command line's side ------------------------------------------------------


def create_insurer(name: str, code: str, *, now: datetime) -> Insurer:
    code = code.strip().upper()
    if session.execute(select(Insurer).where(func.upper(Insurer.code) == code)).first():
        raise Conflict(f"An insurer with code {code} already exists.")
    insurer = Insurer(name=name.strip(), code=code, created_at=now)
    session.add(insurer)
    session.flush()
    return insurer


def create_staff(
    role: Role,
    email: str,
    password: str,
    *,
    insurer_code: str | None = None,
    display_name: str | None = None,
    now: datetime,
) -> User:
    if role == Role.MEMBER:
        raise InvalidInput("Members register themselves through the API.")
    if len(password) < 10:
        raise InvalidInput("The password must have at least 10 characters.")
    insurer = None
    if role == Role.INSURER_ANALYST:
        if not insurer_code:
            raise InvalidInput("An insurer analyst needs --insurer CODE.")
        insurer = session.execute(
            select(Insurer).where(func.upper(Insurer.code) == insurer_code.strip().upper())
        ).scalar_one_or_none()
        if insurer is None:
            raise NotFound(f"No insurer with code {insurer_code}.")
    if _email_taken(email):
        raise Conflict(f"An account with email {email} already exists.")
    user = User(
        email=email.strip(),
        password_hash=hash_password(password),
        role=role,
        insurer=insurer,
        display_name=display_name,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def assign_coach(member_email: str, coach_email: str, *, now: datetime) -> CoachAssignment:
    """Put a member on a coach's caseload, ending any current assignment."""
    member_user = find_user_by_email(member_email)
    if member_user is None or member_user.role != Role.MEMBER:
        raise NotFound(f"No member with email {member_email}.")
    coach = find_user_by_email(coach_email)
    if coach is None or coach.role != Role.COACH:
        raise NotFound(f"No coach with email {coach_email}.")
    current = session.execute(
        select(CoachAssignment)
        .where(CoachAssignment.member_id == member_user.id, CoachAssignment.ended_at.is_(None))
        .with_for_update()
    ).scalar_one_or_none()
    if current is not None and current.coach_id == coach.id:
        return current
    if current is not None:
        current.ended_at = now
        session.flush()
    assignment = CoachAssignment(member_id=member_user.id, coach_id=coach.id, started_at=now)
    session.add(assignment)
    session.flush()
    return assignment
