"""The change sequence behind `GET /sync?since=`: every write to a syncable record takes the next number.

A record stores the sequence number of its last change and which login made it (the token family),
so a phone asks for what changed after its cursor, made anywhere but by itself.

Sequence numbers are taken inside transactions that commit in any order: a reader could see change 11
before change 10 commits and move its cursor past 10 for ever. So each change also records its
transaction id, and a reader only takes changes older than every transaction still running
(`pg_snapshot_xmin`); the rest wait for the next call.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

from sqlalchemy import BigInteger, Sequence, Uuid, literal_column
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from companion.db import Base
from companion.domain.errors import InvalidInput

change_seq = Sequence("sync_change_seq", metadata=Base.metadata)


class Syncable:
    """Columns every syncable record carries."""

    change_seq: Mapped[int] = mapped_column(BigInteger)
    #: The writing transaction's id (xid8 as bigint): see the module docstring.
    change_xid: Mapped[int] = mapped_column(BigInteger)
    #: The login (token family) that made the last change; None for staff and the system.
    changed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


#: SQL for a change's stamps, evaluated by PostgreSQL in the writing statement (no extra round trip).
NEXT_CHANGE_SEQ: ColumnElement[int] = change_seq.next_value()
CURRENT_XID: ColumnElement[int] = literal_column("pg_current_xact_id()::text::bigint")
#: Changes below this transaction id are committed or gone: safe to hand out.
VISIBLE_XID_LIMIT: ColumnElement[int] = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


def stamp_values(origin: uuid.UUID | None) -> dict[str, object]:
    """Column values for a Core insert/update of a syncable row."""
    return {"change_seq": NEXT_CHANGE_SEQ, "change_xid": CURRENT_XID, "changed_by": origin}


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in a member's change stream: changes are read in (transaction id, sequence) order."""

    xid: int = 0
    seq: int = 0

    def encode(self) -> str:
        return base64.urlsafe_b64encode(f"c1:{self.xid}:{self.seq}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None) -> Cursor:
        if not cursor:
            return cls()
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            version, xid, seq = raw.split(":")
            if version != "c1":
                raise ValueError(version)
            return cls(int(xid), int(seq))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("The request is invalid.", fields={"since": ["Not a cursor this server issued."]}) from exc
