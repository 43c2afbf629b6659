"""Composite job indexes for paged search and per-event history.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_index("ix_jobs_final_id", "jobs", ["final", "id"], if_not_exists=True)
    op.create_index("ix_jobs_event_final_id", "jobs", ["event", "final", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_jobs_event_final_id", table_name="jobs")
    op.drop_index("ix_jobs_final_id", table_name="jobs")
