"""clinical rules (issue 19): a plan keeps the coach's confirmation of a high daily dose; symptom reports

Revision ID: 3c19a7d2e5b8
Revises: f3b8d2e6a417
Create Date: 2026-12-06 03:40:00

`medication_plans.high_dose_confirmed`: a daily dose above the medication's usual maximum is stored
only with the coach's `confirm_high_dose` (domain.plans.DoseLimits); existing plans read as not
confirmed. `symptom_reports`: symptoms a member reports at any time (POST /symptom-reports), keyed by
(member, the phone's id) like cravings; `codes` repeats the symptoms' codes for the safety loader.
`pacs_reports`: the weekly Penn Alcohol Craving Scale, one a member and week. `nudges.kind` admits
`pacs_reminder` (the monthly PACS reminder).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3c19a7d2e5b8"
down_revision: str | None = "f3b8d2e6a417"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_KINDS = "'dose_reminder', 'log_reminder', 'craving_support', 'streak', 'reengagement', 'weekly_summary'"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_nudges_kind"), "nudges", type_="check")
    op.create_check_constraint(
        op.f("ck_nudges_kind"), "nudges", f"kind IN ({_KINDS}, 'pacs_reminder', 'coach_message')"
    )
    op.add_column(
        "medication_plans",
        sa.Column("high_dose_confirmed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "symptom_reports",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("symptoms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("codes", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_symptom_reports_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "id", name=op.f("pk_symptom_reports")),
    )
    op.create_index("ix_symptom_reports_member_change", "symptom_reports", ["member_id", "change_seq"])
    op.create_index("ix_symptom_reports_member_date", "symptom_reports", ["member_id", "date"])
    op.create_table(
        "pacs_reports",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("week_of", sa.Date(), nullable=False),
        sa.Column("items", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column("total", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint("total BETWEEN 0 AND 30", name=op.f("ck_pacs_reports_total_range")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_pacs_reports_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("member_id", "id", name=op.f("pk_pacs_reports")),
        sa.UniqueConstraint("member_id", "week_of", name=op.f("uq_pacs_reports_member_id_week_of")),
    )
    op.create_index("ix_pacs_reports_member_change", "pacs_reports", ["member_id", "change_seq"])


def downgrade() -> None:
    op.execute("DELETE FROM nudges WHERE kind = 'pacs_reminder'")
    op.drop_constraint(op.f("ck_nudges_kind"), "nudges", type_="check")
    op.create_check_constraint(op.f("ck_nudges_kind"), "nudges", f"kind IN ({_KINDS}, 'coach_message')")
    op.drop_table("pacs_reports")
    op.drop_table("symptom_reports")
    op.drop_column("medication_plans", "high_dose_confirmed")
