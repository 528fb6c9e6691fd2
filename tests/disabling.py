"""Disabling and enabling a workspace the way the host application does (the domain service the API
and the CLI call), for the tests of what a disabled workspace refuses."""

from __future__ import annotations

from datetime import datetime

from provisio.db.engine import Database
from provisio.domain import workspaces as workspace_service


async def disable(db: Database, key: str) -> datetime:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        await workspace_service.disable_workspace(session, ws)
        assert ws.disabled_at is not None
        return ws.disabled_at


async def enable(db: Database, key: str) -> None:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        await workspace_service.enable_workspace(session, ws)
