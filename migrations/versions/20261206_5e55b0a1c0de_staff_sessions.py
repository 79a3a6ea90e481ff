"""staff sessions: dashboard sign-ins kept on the server (issue 21)

Revision ID: 5e55b0a1c0de
Revises: f3b8d2e6a417
Create Date: 2026-12-06 03:30:00

The dashboard's cookie carries a session id; each request checks it against its row here, so sign-out,
a password change, erasure or an admin's "end all sessions" ends it for good, as do the idle and
absolute timeouts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e55b0a1c0de"
down_revision: str | None = "f3b8d2e6a417"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_hash", sa.String(length=64), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_staff_sessions_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
    )
    op.create_index(
        "ix_staff_sessions_open_by_user",
        "staff_sessions",
        ["user_id"],
        unique=False,
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_open_by_user", table_name="staff_sessions")
    op.drop_table("staff_sessions")
