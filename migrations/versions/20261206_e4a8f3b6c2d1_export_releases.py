"""export releases: the release ledger of insurer reports (issue 21)

Revision ID: e4a8f3b6c2d1
Revises: c0a5e7d1e6e2
Create Date: 2026-12-06 04:00:00

Every member count a report published, by cell, so that a later report of the same insurer over an
overlapping period publishes no count that differs from one of them by 1..10 (differencing).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e4a8f3b6c2d1"
down_revision: str | None = "c0a5e7d1e6e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_releases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("insurer_id", sa.Uuid(), nullable=False),
        sa.Column("start_month", sa.Date(), nullable=False),
        sa.Column("end_month", sa.Date(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cells", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["insurer_id"], ["insurers.id"], name=op.f("fk_export_releases_insurer_id_insurers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_releases")),
    )
    op.create_index(
        "ix_export_releases_insurer_period",
        "export_releases",
        ["insurer_id", "start_month", "end_month"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_export_releases_insurer_period", table_name="export_releases")
    op.drop_table("export_releases")
