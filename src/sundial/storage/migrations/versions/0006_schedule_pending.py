"""Scheduler launches waiting for a scheduler plugin's answer.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from sundial.storage import schema

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    schema.schedule_pending.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    schema.schedule_pending.drop(op.get_bind(), checkfirst=True)
