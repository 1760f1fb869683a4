"""Dashboard figures: monthly duty-log counts per 邻 (duty_months) with their per-town marks,
a covering index for counting contacts and 上门 of a 邻 in a period, and one for reading a
town's requests without their table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 05:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "duty_months",
        sa.Column("neighborhood_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("town_id", sa.Integer(), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["neighborhood_id"], ["regions.id"],
                                name=op.f("fk_duty_months_neighborhood_id_regions")),
        sa.ForeignKeyConstraint(["town_id"], ["regions.id"],
                                name=op.f("fk_duty_months_town_id_regions")),
        sa.PrimaryKeyConstraint("neighborhood_id", "month", name=op.f("pk_duty_months")),
    )
    op.create_index("ix_duty_months_town_month", "duty_months", ["town_id", "month"],
                    postgresql_include=["neighborhood_id", "contacts", "visits"])
    op.create_table(
        "duty_month_marks",
        sa.Column("town_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filled_version", sa.Integer(), nullable=True),
        sa.Column("filled_at", sa.DateTime(), nullable=True),
        sa.Column("filled_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["town_id"], ["regions.id"],
                                name=op.f("fk_duty_month_marks_town_id_regions")),
        sa.PrimaryKeyConstraint("town_id", "month", name=op.f("pk_duty_month_marks")),
    )
    op.create_index("ix_duty_logs_neighborhood_occurred_method", "duty_logs",
                    ["neighborhood_id", "occurred_at"], postgresql_include=["method"],
                    postgresql_where=sa.text("voided_at IS NULL"),
                    sqlite_where=sa.text("voided_at IS NULL"))
    op.create_index("ix_requests_path_figures", "requests", ["path", "created_at"],
                    postgresql_include=["status", "level", "closed_at", "closed_level", "missed",
                                        "due_0", "due_1", "due_2", "due_3"])


def downgrade():
    op.drop_index("ix_requests_path_figures", table_name="requests")
    op.drop_index("ix_duty_logs_neighborhood_occurred_method", table_name="duty_logs")
    op.drop_table("duty_month_marks")
    op.drop_index("ix_duty_months_town_month", table_name="duty_months")
    op.drop_table("duty_months")
