"""Durable state: SQLAlchemy 2 (async) over SQLite by default or PostgreSQL by URL.

``Database`` owns the engine and sessions and brings the schema up to date with Alembic at
start-up. Tables live in ``storage.tables``; each resource reaches them only through its own
repository.
"""
