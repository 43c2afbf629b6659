"""Core tables: configuration lists, users, sessions, security log, activity, records.

Revision ID: 0001
Revises:
"""

from alembic import op

from sundial.storage import schema

revision = "0001"
down_revision = None

TABLES = [*schema.config_tables.values(), schema.users, schema.sessions, schema.security_log,
          schema.activity, schema.records]


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind, checkfirst=True)
