"""Alembic environment: runs on the connection handed over by sundial.storage.migrate."""

from alembic import context

from sundial.storage.migrate import VERSION_TABLE
from sundial.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
