"""sign-in counters: failed sign-ins per account and per (account, address), in PostgreSQL (issue 21)

Revision ID: 7a11e5c0a7e2
Revises: 5e55b0a1c0de
Create Date: 2026-12-06 03:40:00

One count for the API and the dashboard that holds while Redis is down (companion/accounts/throttle.py);
emails and addresses are kept only as sha256.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a11e5c0a7e2"
down_revision: str | None = "5e55b0a1c0de"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_counters",
        sa.Column("key", sa.String(length=140), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_counters")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_counters")
