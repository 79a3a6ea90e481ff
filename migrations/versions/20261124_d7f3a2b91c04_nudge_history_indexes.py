"""nudge history indexes: the daily cap and the last re-engagement without reading a member's history

Revision ID: d7f3a2b91c04
Revises: c41d7a9e5b10
Create Date: 2026-11-24 06:30:00

Claiming counted each member's sends of the day, and planning found their last re-engagement, by
reading every nudge the member ever had (the only index led by member_id is the dedupe key): with a
year of history, 1,000 members cost ~200 ms a statement, and the re-engagement one fell back to a
sequential scan of the table. Two partial indexes make both a short range per member.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d7f3a2b91c04"
down_revision: str | None = "c41d7a9e5b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENT = "status IN ('sending', 'sent', 'failed') AND kind <> 'coach_message'"


def upgrade() -> None:
    op.create_index(
        "ix_nudges_member_sent",
        "nudges",
        ["member_id", sa.text("coalesce(sent_at, due_at)")],
        unique=False,
        postgresql_where=sa.text(SENT),
    )
    op.create_index(
        "ix_nudges_member_reengagement",
        "nudges",
        ["member_id", "local_date"],
        unique=False,
        postgresql_where=sa.text("kind = 'reengagement'"),
    )


def downgrade() -> None:
    op.drop_index("ix_nudges_member_reengagement", table_name="nudges")
    op.drop_index("ix_nudges_member_sent", table_name="nudges")
