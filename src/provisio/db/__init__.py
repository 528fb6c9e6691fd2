"""Persistence: engine and sessions (engine.py), tables (models.py), Alembic migrations (migrations/)."""
