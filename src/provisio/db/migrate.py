"""Schema migrations: ``provisio db upgrade`` and the start-up check that the database is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from provisio.db.engine import Database, ensure_sqlite_dir

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url)
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (blocking; runs its own event loop)."""
    ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(database_url), revision)


def head_revision(database_url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


async def current_revision(db: Database) -> str | None:
    def _current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with db.read_engine.connect() as conn:
        return await conn.run_sync(_current)


class NotMigrated(RuntimeError):
    pass


async def check_current(db: Database, database_url: str) -> None:
    """Refuse to serve a database whose schema is not at the newest migration."""
    have, want = await current_revision(db), head_revision(database_url)
    if have != want:
        raise NotMigrated(
            f"The database is at migration {have or 'none'} but this version of provisio needs {want}. "
            "Run `provisio db upgrade` (with the same PROVISIO_DATABASE_URL) and start again."
        )
