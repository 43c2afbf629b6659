"""Scheduler tables: launched slots (exactly-once key) and cursors.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from sundial.storage import schema

revision = "0003"
down_revision = "0002"

TABLES = [schema.schedule_slots, schema.schedule_state]


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind, checkfirst=True)
