"""Persistence: SQLAlchemy tables, Alembic migrations and the few queries that matter."""
