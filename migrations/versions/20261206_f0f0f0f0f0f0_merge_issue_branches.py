"""merge: the branches of the 2026-12-06 issues (safety net, clinical rules, workbench, security), each
made on top of f3b8d2e6a417 in parallel, joined here. Nothing to do: they touch different tables.

Revision ID: f0f0f0f0f0f0
Revises: 1a2b3c4d5e60, 3c19a7d2e5b8, 3c1e9a7d5b42, e4a8f3b6c2d1
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

revision: str = "f0f0f0f0f0f0"
down_revision: str | Sequence[str] | None = ("1a2b3c4d5e60", "3c19a7d2e5b8", "3c1e9a7d5b42", "e4a8f3b6c2d1")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
