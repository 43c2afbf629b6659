"""Jobs table (active and completed jobs).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from sundial.storage import schema

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    schema.jobs.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    schema.jobs.drop(op.get_bind(), checkfirst=True)
