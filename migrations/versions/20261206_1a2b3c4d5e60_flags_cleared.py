"""flags cleared: a finding that stops being true clears its open flag (issue 26)

Revision ID: 1a2b3c4d5e60
Revises: f3b8d2e6a417
Create Date: 2026-12-06 03:30:00

A rescan that no longer finds what an open flag says (missed doses later entered as taken, a member
active again) marks it `cleared`, with when, why and the entries that cleared it. A cleared flag is
kept (the coach's "cleared" filter, the member's timeline) and, like a resolved one, no longer counts
as the member's unresolved flag of its rule, so the partial unique index excludes it too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "1a2b3c4d5e60"
down_revision: str | None = "f3b8d2e6a417"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("flags", sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("flags", sa.Column("cleared_reason", sa.Text(), nullable=True))
    op.add_column(
        "flags",
        sa.Column("cleared_evidence", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.drop_constraint(op.f("ck_flags_status"), "flags", type_="check")
    op.create_check_constraint(
        op.f("ck_flags_status"), "flags", "status IN ('open', 'acknowledged', 'resolved', 'cleared')"
    )
    op.create_check_constraint(
        op.f("ck_flags_cleared_at_when_cleared"), "flags", "(status = 'cleared') = (cleared_at IS NOT NULL)"
    )
    op.drop_index("uq_flags_member_rule_unresolved", table_name="flags")
    op.create_index(
        "uq_flags_member_rule_unresolved",
        "flags",
        ["member_id", "rule"],
        unique=True,
        postgresql_where=sa.text("status IN ('open', 'acknowledged')"),
    )


def downgrade() -> None:
    op.execute("DELETE FROM flags WHERE status = 'cleared'")
    op.drop_index("uq_flags_member_rule_unresolved", table_name="flags")
    op.create_index(
        "uq_flags_member_rule_unresolved",
        "flags",
        ["member_id", "rule"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.drop_constraint(op.f("ck_flags_cleared_at_when_cleared"), "flags", type_="check")
    op.drop_constraint(op.f("ck_flags_status"), "flags", type_="check")
    op.create_check_constraint(op.f("ck_flags_status"), "flags", "status IN ('open', 'acknowledged', 'resolved')")
    op.drop_column("flags", "cleared_evidence")
    op.drop_column("flags", "cleared_reason")
    op.drop_column("flags", "cleared_at")
