"""The change sequence behind `GET /sync?since=`: every write to a syncable record takes the next number.

A record stores the sequence number of its last change and which login made it (the token family),
so a phone asks for what changed after its cursor, made anywhere but by itself.
"""

from __future__ import annotations

import base64
import uuid

from sqlalchemy import BigInteger, Sequence, Uuid, select
from sqlalchemy.orm import Mapped, mapped_column

from companion.db import Base, session
from companion.domain.errors import InvalidInput

change_seq = Sequence("sync_change_seq", metadata=Base.metadata)


class Syncable:
    """Columns every syncable record carries."""

    change_seq: Mapped[int] = mapped_column(BigInteger)
    #: The login (token family) that made the last change; None for staff and the system.
    changed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


def next_change() -> int:
    return int(session.execute(select(change_seq.next_value())).scalar_one())


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, number = raw.partition(":")
        if version != "c1":
            raise ValueError(version)
        return int(number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("The request is invalid.", fields={"since": ["Not a cursor this server issued."]}) from exc
