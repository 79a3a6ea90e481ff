"""The change sequence behind `GET /sync?since=`: every write to a syncable record takes the next number.

A record stores the sequence number of its last change and which login made it (the token family),
so a phone asks for what changed after its cursor, made anywhere but by itself.

Sequence numbers are taken inside transactions that commit in any order, and a reader must never see
change 11 before change 10 has committed (its cursor would pass 10 for ever). So a transaction that
changes a member's records first takes that member's change lock (a transaction-scoped advisory
lock): one member's changes are numbered and committed one transaction at a time, and a reader of
that member's stream can never see a later number while an earlier one is still uncommitted.
"""

from __future__ import annotations

import base64
import uuid

from flask import g
from sqlalchemy import BigInteger, Sequence, Uuid, event, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from companion.db import Base, session
from companion.domain.errors import InvalidInput

change_seq = Sequence("sync_change_seq", metadata=Base.metadata)

#: First key of the two-key advisory locks that guard each member's change stream.
CHANGE_LOCK_NAMESPACE = 71_001
_HELD = "companion.change_locks"


class Syncable:
    """Columns every syncable record carries."""

    change_seq: Mapped[int] = mapped_column(BigInteger)
    #: The login (token family) that made the last change; None for staff and the system.
    changed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


#: SQL for a change's number, evaluated by PostgreSQL in the writing statement (no extra round trip).
NEXT_CHANGE_SEQ: ColumnElement[int] = change_seq.next_value()


def claim_change_stream(member_id: uuid.UUID) -> None:
    """Take the member's change lock for the rest of the transaction (once per transaction)."""
    if holds_change_stream(member_id):
        return
    session.execute(select(func.pg_advisory_xact_lock(CHANGE_LOCK_NAMESPACE, func.hashtext(str(member_id)))))
    mark_change_stream_held(member_id)


def holds_change_stream(member_id: uuid.UUID) -> bool:
    """Whether this transaction holds the member's change lock already."""
    return member_id in session().info.get(_HELD, ())


def mark_change_stream_held(member_id: uuid.UUID) -> None:
    """Record that a statement of this transaction took the member's change lock itself (in SQL, as
    `tracking.rowset` does: the lock folded into the write, one round trip less)."""
    session().info.setdefault(_HELD, set()).add(member_id)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _locks_released(sess: Session) -> None:
    sess.info.pop(_HELD, None)


def stamp_values(origin: uuid.UUID | None, member_id: uuid.UUID | None = None) -> dict[str, object]:
    """Column values for a Core insert/update of a syncable row; claims the member's change lock."""
    if member_id is not None:
        claim_change_stream(member_id)
    return {"change_seq": NEXT_CHANGE_SEQ, "changed_by": origin}


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"c2:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, number = raw.partition(":")
        if version != "c2" or not number.isdigit():
            raise ValueError(raw)
        return int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "The request is invalid.", fields={"since": ["Not a cursor this server issued."]}
        ) from exc


def current_login() -> uuid.UUID | None:
    """The login (token family) making this request: sync hides a phone's own changes from itself."""
    token = g.get("auth_token")
    return token.family_id if token is not None else None


def stamp(record: Syncable, origin: uuid.UUID | None) -> None:
    """Mark an ORM record as changed by `origin` (a login, or None for staff and the system)."""
    claim_change_stream(record.member_id)  # type: ignore[attr-defined]  # every Syncable model has member_id; the mixin does not declare it
    record.change_seq = NEXT_CHANGE_SEQ  # SQL, evaluated in the flush
    record.changed_by = origin
