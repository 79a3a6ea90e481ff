"""Nudges: the member's inbox, coach messages, and a craving's support nudge. Flush only; the view or task
commits. The dispatcher's tick, which commits batch by batch, is `nudges.dispatcher_tx`.

The inbox (`GET /me/messages`) is every nudge that reached the member, newest first, and every coach
message from the moment it is written, whether or not its push has gone out.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, tuple_, update

from companion import jobs, privacy
from companion.accounts.models import Member, User
from companion.audit import services as audit
from companion.auth.policy import member_for_staff
from companion.db import session
from companion.domain.errors import Conflict, InvalidInput, NotFound
from companion.domain.nudges import TEMPLATES, NudgeKind, coach_message_nudge
from companion.nudges import hooks
from companion.nudges.models import Message, Nudge, NudgeStatus
from companion.nudges.rows import insert_one
from companion.pagination import decode_page_cursor, encode_page_cursor, instant_cursor_key
from companion.sync_seq import stamp
from companion.tracking.models import Craving

log = logging.getLogger(__name__)

#: A coach message is at most this long (ours).
MAX_MESSAGE_LENGTH = 4000
INBOX_PAGE = 50
INBOX_MAX_PAGE = 200
#: Snooze bounds (API.md).
SNOOZE_MINUTES = (10, 240)

_N = Nudge.__table__.c


def craving_support(member_id: uuid.UUID, craving_id: uuid.UUID, *, now: datetime) -> uuid.UUID | None:
    """The support nudge of a craving (made if it is due and missing). Flushes; the caller delivers it."""
    member = session.get(Member, member_id)
    craving = session.execute(
        select(Craving).where(Craving.member_id == member_id, Craving.id == craving_id)
    ).scalar_one_or_none()
    if member is None or craving is None:
        return None
    return hooks.plan_craving_support(member, craving.id, craving.intensity, craving.recorded_at, now=now)


# --- coach messages ----------------------------------------------------------------------------------


def message_view(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "member_id": message.member_id,
        "sender_id": message.sender_id,
        "body": message.body,
        "created_at": message.created_at,
    }


def send_coach_message(
    actor: User, member_id: uuid.UUID, body: str, *, now: datetime, message_id: uuid.UUID | None = None
) -> Message:
    """`POST /coach/members/{id}/messages`: the message, and its nudge (same id), pushed after commit.

    Never capped or muted (DOMAIN.md); quiet hours hold the push, not the inbox. `message_id`: the id
    the dashboard's form carries, so a resubmitted form cannot send twice (the key is unique).

    :raises NotFound: the member is not on `actor`'s caseload (admins: no such member).
    """
    member = member_for_staff(actor, member_id)
    message = Message(
        id=message_id or uuid.uuid4(), member_id=member.id, sender_id=actor.id, body=body, created_at=now
    )
    stamp(message, None)  # staff changes reach every device of the member through GET /sync
    session.add(message)
    session.flush()
    nudge = coach_message_nudge(message.id, now, hooks.member_settings(member))
    insert_one(member.id, nudge, now=now, id=message.id)
    jobs.enqueue_after_commit(jobs.DELIVER_NUDGES, nudge_ids=[str(message.id)])  # type: ignore[arg-type]  # jobs' ids are int | str; this task takes a list of ids
    # The text stays in `messages` (the member may erase it); the log keeps which message, and its size.
    audit.record(
        "message.sent",
        actor_id=actor.id,
        now=now,
        subject_member_id=member.id,
        message_id=str(message.id),
        characters=len(body),
    )
    return message


def message_change(member: Member, message: Message) -> dict[str, Any]:
    """A coach message as `GET /sync` hands it out: the inbox item's id, kind and texts."""
    title, _ = TEMPLATES[NudgeKind.COACH_MESSAGE.value]
    return {
        "type": "message",
        "deleted": False,
        "data": {
            "id": str(message.id),
            "kind": NudgeKind.COACH_MESSAGE.value,
            "title": title,
            "body": message.body,
            "sender_id": str(message.sender_id) if message.sender_id else None,
            "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
        },
    }


# --- the inbox -----------------------------------------------------------------------------------------

_SHOWN_AT = func.coalesce(_N.sent_at, _N.created_at)


def _visible(member_id: uuid.UUID, now: datetime):
    """In the member's inbox: reached them (or a coach message), and not snoozed."""
    return (
        (_N.member_id == member_id)
        & or_(_N.sent_at.is_not(None), _N.kind == NudgeKind.COACH_MESSAGE.value)
        & or_(_N.snoozed_until.is_(None), _N.snoozed_until <= now)
    )


def inbox(member: Member, *, cursor: str | None, limit: int, now: datetime) -> dict[str, Any]:
    """`GET /me/messages`: newest first, keyset-paged."""
    query = (
        select(
            _N.id, _N.kind, _N.template, _N.sent_at, _N.read_at, _N.expires_at, _SHOWN_AT.label("shown_at"),
            Message.body.label("message_body"),
        )
        .outerjoin(
            Message,
            (Message.id == _N.subject_id)
            & (Message.member_id == _N.member_id)
            & (_N.kind == NudgeKind.COACH_MESSAGE.value),
        )
        .where(_visible(member.id, now))
    )  # fmt: skip
    filters = ("inbox", member.id)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        query = query.where(tuple_(_SHOWN_AT, _N.id) < instant_cursor_key(after))
    rows = session.execute(query.order_by(_SHOWN_AT.desc(), _N.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for row in rows:
        title, body = TEMPLATES[row.template]
        if row.kind == NudgeKind.COACH_MESSAGE and row.message_body is not None:
            body = row.message_body
        items.append(
            {
                "id": row.id,
                "kind": row.kind,
                "title": title,
                "body": body,
                "sent_at": row.sent_at,
                "read_at": row.read_at,
                "expires_at": row.expires_at,
            }
        )
    next_cursor = (
        encode_page_cursor([rows[-1].shown_at.isoformat(), str(rows[-1].id)], filters=filters)
        if more and rows
        else None
    )
    return {"items": items, "next_cursor": next_cursor}


def mark_read(member: Member, nudge_id: uuid.UUID, *, now: datetime) -> None:
    """`POST /me/messages/{id}/read`: idempotent; the first read time is kept."""
    result = session.execute(
        update(Nudge.__table__)
        .where(_N.id == nudge_id, _visible(member.id, now))
        .values(read_at=func.coalesce(_N.read_at, now))
    )
    if not result.rowcount:  # type: ignore[attr-defined]  # an UPDATE's Result is a CursorResult
        raise NotFound("No such message.")


def snooze(member: Member, nudge_id: uuid.UUID, minutes: int, *, now: datetime) -> datetime:
    """`POST /me/messages/{id}/snooze`: hidden until then, then pushed again (a new send round).

    :raises NotFound: not an item of the member's inbox.
    :raises Conflict: its push is leaving right now (try again in a moment).
    :raises InvalidInput: it expires before then.
    """
    row = session.execute(
        select(_N.id, _N.status, _N.expires_at, _N.send_round)
        .where(_N.id == nudge_id, _visible(member.id, now))
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("No such message.")
    if row.status == NudgeStatus.SENDING:
        raise Conflict("This message is being delivered right now; try again in a moment.")
    until = now + timedelta(minutes=minutes)
    if row.expires_at is not None and until >= row.expires_at:
        raise InvalidInput("The request body is invalid.", fields={"minutes": ["It expires before then."]})
    values: dict[str, Any] = {"due_at": until, "snoozed_until": until, "read_at": None}
    if row.status in (NudgeStatus.SENT, NudgeStatus.FAILED):
        values.update(status=NudgeStatus.PENDING.value, send_round=row.send_round + 1, next_attempt_at=None)
    session.execute(update(Nudge.__table__).where(_N.id == nudge_id).values(**values))
    return until


def _export(member_id: uuid.UUID) -> dict[str, Any]:
    messages = session.execute(
        select(Message).where(Message.member_id == member_id).order_by(Message.created_at)
    ).scalars()
    nudges = session.execute(
        select(_N.id, _N.kind, _N.status, _N.due_at, _N.sent_at, _N.read_at)
        .where(_N.member_id == member_id)
        .order_by(_N.due_at)
    )
    return {
        "messages": [
            {"id": str(m.id), "body": m.body, "created_at": m.created_at.isoformat()} for m in messages
        ],
        "nudges": [
            {
                "id": str(n.id),
                "kind": n.kind,
                "status": n.status,
                "due_at": n.due_at.isoformat(),
                "sent_at": n.sent_at.isoformat() if n.sent_at else None,
                "read_at": n.read_at.isoformat() if n.read_at else None,
            }
            for n in nudges
        ],
    }


privacy.register_exporter("nudges", _export)
