"""clinical rules (issue 19): a plan keeps the coach's confirmation of a high daily dose

Revision ID: 3c19a7d2e5b8
Revises: f3b8d2e6a417
Create Date: 2026-12-06 03:40:00

`medication_plans.high_dose_confirmed`: a daily dose above the medication's usual maximum is stored
only with the coach's `confirm_high_dose` (domain.plans.DoseLimits); existing plans read as not
confirmed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c19a7d2e5b8"
down_revision: str | None = "f3b8d2e6a417"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "medication_plans",
        sa.Column("high_dose_confirmed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("medication_plans", "high_dose_confirmed")
