"""safety watch: when each member's safety rules must run next (the sweep's index)

Revision ID: c41d7a9e5b10
Revises: 507e9b130a31
Create Date: 2026-11-24 03:50:00

Existing members get no row: the sweep visits members without one, so the first sweep after this
migration scans everyone once and sets their next check.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c41d7a9e5b10"
down_revision: str | None = "507e9b130a31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "safety_watch",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_safety_watch_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_safety_watch")),
    )
    op.create_index(
        "ix_safety_watch_next_check_at",
        "safety_watch",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_safety_watch_next_check_at",
        table_name="safety_watch",
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.drop_table("safety_watch")
