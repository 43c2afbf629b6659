"""Servers table (satellite records).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from sundial.storage import schema

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    schema.servers.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    schema.servers.drop(op.get_bind(), checkfirst=True)
