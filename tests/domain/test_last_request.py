"""An IdP that only reads (Entra's periodic sync with nothing to change) still shows as connected: the
newest successful request of any kind is remembered, at most once a minute per workspace."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent, ScimLastRequest, ScimToken
from provisio.domain import connection_status as status_service
from provisio.domain import workspaces as workspace_service
from tests.conftest import Tenant

ENTRA_AGENT = "Microsoft.Azure.AD.Provisioning/1.0"


async def _status(db: Database, key: str) -> status_service.ConnectionStatus:
    async with db.reading() as session:
        workspace = await workspace_service.require_workspace(session, key)
        return await status_service.connection_status(session, workspace)


async def test_reads_alone_make_a_connection(client: httpx.AsyncClient, db: Database, tenant: Tenant) -> None:
    status_service.forget_noted()
    assert (await _status(db, tenant.key)).waiting
    headers = {**tenant.headers, "User-Agent": ENTRA_AGENT}
    listed = await client.get(f"{tenant.base}/Users", params={"filter": 'userName eq "x"'}, headers=headers)
    assert listed.status_code == 200

    status = await _status(db, tenant.key)
    assert status.connected and status.last_success is not None
    assert status.last_success.action == "list" and status.idp == status_service.ENTRA
    assert status.credential_last_used is not None
    async with db.reading() as session:
        logged = await session.scalar(
            select(func.count())
            .select_from(ProvisioningEvent)
            .where(ProvisioningEvent.workspace_id == tenant.id)
        )
        token_used = await session.scalar(
            select(ScimToken.last_used_at).where(ScimToken.workspace_id == tenant.id)
        )
    assert logged == 0  # reads stay out of the provisioning log
    assert token_used is not None  # the bearer token's last use is recorded with it


async def test_a_busy_idp_is_noted_once_a_minute(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    status_service.forget_noted()
    for _ in range(5):
        assert (await client.get(f"{tenant.base}/Users", headers=tenant.headers)).status_code == 200
    async with db.reading() as session:
        first = await session.get(ScimLastRequest, tenant.id)
    assert first is not None
    for _ in range(5):
        assert (await client.get(f"{tenant.base}/Users", headers=tenant.headers)).status_code == 200
    async with db.reading() as session:
        again = await session.get(ScimLastRequest, tenant.id, populate_existing=True)
    assert again is not None and again.at == first.at  # within the minute: not written again


async def test_failures_and_strangers_are_not_a_connection(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    status_service.forget_noted()
    refused = await client.get(f"{tenant.base}/Users", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    missing = await client.get(
        f"{tenant.base}/Users/00000000-0000-0000-0000-000000000000", headers=tenant.headers
    )
    assert missing.status_code == 404
    async with db.reading() as session:
        assert await session.get(ScimLastRequest, tenant.id) is None
