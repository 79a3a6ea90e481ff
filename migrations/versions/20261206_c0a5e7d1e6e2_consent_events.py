"""consent events: the consent ledger (issue 21)

Revision ID: c0a5e7d1e6e2
Revises: 7a11e5c0a7e2
Create Date: 2026-12-06 03:50:00

Each consent given or withdrawn, with its time and the version of its text. A member who chose before
the ledger existed gets one row from `members` (their current choice at `consents_updated_at`, text
version "before-ledger": which text they saw was not kept).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0a5e7d1e6e2"
down_revision: str | None = "7a11e5c0a7e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("consent", sa.String(length=32), nullable=False),
        sa.Column("given", sa.Boolean(), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_consent_events_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index("ix_consent_events_member_at", "consent_events", ["member_id", "at"], unique=False)
    op.execute(
        "INSERT INTO consent_events (id, member_id, consent, given, text_version, at) "
        "SELECT gen_random_uuid(), id, 'outcome_sharing', outcome_sharing, 'before-ledger', "
        "consents_updated_at FROM members WHERE consents_updated_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_consent_events_member_at", table_name="consent_events")
    op.drop_table("consent_events")
