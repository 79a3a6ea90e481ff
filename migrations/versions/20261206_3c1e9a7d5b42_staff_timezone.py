"""staff timezone: the zone a coach or admin reads the dashboard's times in (issue 22)

Revision ID: 3c1e9a7d5b42
Revises: f3b8d2e6a417
Create Date: 2026-12-06 03:30:00

NULL (every existing account): the browser's zone sent at sign-in, else UTC.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c1e9a7d5b42"
down_revision: str | None = "f3b8d2e6a417"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("timezone", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "timezone")
