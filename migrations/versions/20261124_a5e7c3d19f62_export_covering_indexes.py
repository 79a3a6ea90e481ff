"""export covering indexes: the insurer export reads day rows member by member from the indexes alone

Revision ID: a5e7c3d19f62
Revises: d7f3a2b91c04
Create Date: 2026-11-24 09:00:00

The insurer export (companion/exports/queries.py) groups every day row of its cohort by (member,
30-day bucket). Read from the heap, the rows come day by day across members (as they are written) and
have to be hashed: at 100,000 members x 180 days, 669 k drink-log groups with a dozen aggregates, a
hash table that misses the caches and spills. Read through a (member_id, date) index that carries
the few columns the export needs, they come member by member from the index alone (an index-only
scan: autovacuum keeps the visibility map), and each member's buckets are summed as they stream by.

* drink_logs: a new index on (member_id, date) with grams and heavy, of the live logs only (the
  primary key has no other columns, and soft-deleted logs are never read by the export).
* cravings, medication_checkins: their (member_id, date) indexes (used by the member's own reads and
  by the export's odd-dose lookup) now carry intensity, resp. status, plan_id and scheduled_for.
* bac_readings: its (member_id, date) index already holds all the export reads.

The cost is on writes: one more index entry per drink log write, wider entries for the other two
(docs/performance/insurer-export.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a5e7c3d19f62"
down_revision: str | None = "d7f3a2b91c04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_drink_logs_member_date_live",
        "drink_logs",
        ["member_id", "date"],
        unique=False,
        postgresql_include=["grams_ethanol", "heavy"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_cravings_member_date", table_name="cravings")
    op.create_index(
        "ix_cravings_member_date",
        "cravings",
        ["member_id", "date"],
        unique=False,
        postgresql_include=["intensity"],
    )
    op.drop_index("ix_medication_checkins_member_date", table_name="medication_checkins")
    op.create_index(
        "ix_medication_checkins_member_date",
        "medication_checkins",
        ["member_id", "date"],
        unique=False,
        postgresql_include=["status", "plan_id", "scheduled_for"],
    )


def downgrade() -> None:
    op.drop_index("ix_medication_checkins_member_date", table_name="medication_checkins")
    op.create_index(
        "ix_medication_checkins_member_date", "medication_checkins", ["member_id", "date"], unique=False
    )
    op.drop_index("ix_cravings_member_date", table_name="cravings")
    op.create_index("ix_cravings_member_date", "cravings", ["member_id", "date"], unique=False)
    op.drop_index("ix_drink_logs_member_date_live", table_name="drink_logs")
