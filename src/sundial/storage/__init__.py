"""Storage: one async SQLAlchemy engine (SQLite by default, PostgreSQL by URL), the schema,
migrations, and the small repositories the domain services use."""

from sundial.storage.engine import Storage, Tx

__all__ = ["Storage", "Tx"]
