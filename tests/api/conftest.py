"""An operator API key for the management API tests."""

from __future__ import annotations

import pytest

from provisio.db.engine import Database
from provisio.domain import api_keys


async def new_key(db: Database, name: str = "host app") -> api_keys.IssuedKey:
    async with db.writing() as session:
        return await api_keys.create_key(session, name)


@pytest.fixture
async def api(db: Database) -> dict[str, str]:
    """Headers that authenticate with a fresh operator key named "host app"."""
    issued = await new_key(db)
    return {"Authorization": f"Bearer {issued.key}"}
