"""The SCIM settings page's connection status, from provisioning events and credential rows written at
controlled times, on SQLite and PostgreSQL; and the plans of its queries, which must use indexes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text, update

from provisio.db.engine import Database
from provisio.db.models import OAuthClient, OAuthToken, ProvisioningEvent, ScimToken, Workspace, utcnow
from provisio.domain import connection_status as status_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.connection_status import ENTRA, OKTA, OTHER, connection_status, idp_from_user_agent
from provisio.domain.hashing import hash_secret
from provisio.domain.scim_methods import ScimMethod
from tests.oauth.helpers import OAuthTenant, make_oauth_tenant

OKTA_AGENT = "Okta SCIM Client 1.0.0"
ENTRA_AGENT = "Microsoft.Azure.AD.Provisioning/1.0"
NOW = utcnow().replace(microsecond=0)


@pytest.mark.parametrize(
    ("agent", "idp"),
    [
        (OKTA_AGENT, OKTA),
        ("okta scim client 2.3", OKTA),
        (ENTRA_AGENT, ENTRA),
        ("Microsoft Azure AD SCIM provisioning 1.0.0", ENTRA),
        ("Microsoft Entra Provisioning", ENTRA),
        ("AAD-Provisioning", ENTRA),
        ("curl/8.5.0", OTHER),
        ("python-httpx/0.27", OTHER),
        ("Central SCIM bridge", OTHER),  # "entra" inside a word is not Entra
        ("", None),
        (None, None),
    ],
)
def test_idp_from_user_agent(agent: str | None, idp: str | None) -> None:
    assert idp_from_user_agent(agent) == idp


async def _workspace(db: Database, tenant: OAuthTenant) -> Workspace:
    async with db.reading() as session:
        return await workspace_service.require_workspace(session, tenant.key)


async def _events(db: Database, tenant: OAuthTenant, *rows: dict[str, Any]) -> None:
    """Events in the order given (ids ascend with time, as when the server writes them)."""
    async with db.writing() as session:
        for row in rows:
            values = {"actor": "OAuth client pvc_test", "action": "create", "status": 201, **row}
            session.add(ProvisioningEvent(workspace_id=tenant.id, **values))
            await session.flush()


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


async def _status(db: Database, tenant: OAuthTenant) -> status_service.ConnectionStatus:
    workspace = await _workspace(db, tenant)
    async with db.reading() as session:
        return await connection_status(session, workspace, now=NOW)


async def test_waiting_for_the_first_request(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    status = await _status(db, tenant)
    assert status.waiting and not status.connected
    assert status.last_success is None and status.last_failure is None
    assert (status.requests_24h, status.failures_24h) == (0, 0)
    assert status.idp is None and status.credential_last_used is None and status.refresh is None


async def test_connected_with_the_last_day_counted(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    other = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    await _events(
        db,
        tenant,
        {"at": ago(hours=30), "outcome": "success", "user_agent": "curl/8"},  # before the last day
        {"at": ago(hours=5), "outcome": "failure", "status": 409, "detail": "userName taken"},
        {
            "at": ago(hours=3),
            "outcome": "success",
            "status": 200,
            "action": "replace",
            "user_agent": ENTRA_AGENT,
        },
        {
            "at": ago(hours=1),
            "outcome": "failure",
            "status": 403,
            "detail": "No free seat",
            "scim_type": None,
        },
    )
    # Another workspace's newer events change nothing here.
    await _events(db, other, {"at": ago(minutes=1), "outcome": "success"}, {"at": NOW, "outcome": "failure"})

    status = await _status(db, tenant)
    assert status.connected and not status.waiting
    assert status.last_success is not None and status.last_success.at == ago(hours=3)
    assert status.last_success.action == "replace" and status.last_success.status == 200
    assert status.last_failure is not None and status.last_failure.at == ago(hours=1)
    assert (status.last_failure.status, status.last_failure.detail) == (403, "No free seat")
    assert (status.requests_24h, status.failures_24h) == (3, 2)
    assert status.idp == ENTRA


async def test_no_success_in_the_last_day_is_not_connected(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    await _events(
        db,
        tenant,
        {"at": ago(hours=25), "outcome": "success", "user_agent": OKTA_AGENT},
        {"at": ago(minutes=10), "outcome": "failure", "status": 400, "detail": "bad filter"},
    )
    status = await _status(db, tenant)
    assert not status.connected and not status.waiting
    assert status.last_success is not None and status.last_success.at == ago(hours=25)
    assert (status.requests_24h, status.failures_24h) == (1, 1)
    assert status.idp == OKTA  # from the last success


async def test_repeated_refusals_count_each_repeat(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    await _events(
        db,
        tenant,
        {
            "at": ago(minutes=3),
            "last_at": ago(minutes=2, seconds=15),
            "outcome": "failure",
            "status": 401,
            "detail": "The access token is invalid",
            "repeats": 7,
            "aggregate_key": "401:abc",
            "user_agent": "Okta SCIM Client 1.0.0",
        },
    )
    status = await _status(db, tenant)
    assert status.waiting and not status.connected
    assert (status.requests_24h, status.failures_24h) == (7, 7)
    assert status.last_failure is not None and status.last_failure.at == ago(minutes=2, seconds=15)
    assert status.idp == OKTA  # no success yet: the failure's agent says who tries


async def _token(
    db: Database,
    tenant: OAuthTenant,
    *,
    issued: datetime,
    grant_type: str,
    refresh_expires: datetime | None = None,
    refreshed: datetime | None = None,
    revoked: datetime | None = None,
) -> None:
    async with db.writing() as session:
        client_pk = (
            await session.execute(
                select(OAuthClient.id).where(
                    OAuthClient.workspace_id == tenant.id, OAuthClient.revoked_at.is_(None)
                )
            )
        ).scalar_one()
        session.add(
            OAuthToken(
                workspace_id=tenant.id,
                client_pk=client_pk,
                grant_type=grant_type,
                family_id=str(uuid.uuid4()),
                access_token_hash=hash_secret(uuid.uuid4().hex),
                refresh_token_hash=hash_secret(uuid.uuid4().hex) if refresh_expires else None,
                issued_at=issued,
                access_expires_at=issued + timedelta(hours=1),
                refresh_expires_at=refresh_expires,
                refreshed_at=refreshed,
                revoked_at=revoked,
            )
        )


async def test_client_credentials_last_token_request(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.CLIENT_CREDENTIALS)
    await _token(db, tenant, issued=ago(hours=2), grant_type="client_credentials")
    await _token(db, tenant, issued=ago(minutes=20), grant_type="client_credentials")
    status = await _status(db, tenant)
    assert status.credential_last_used == ago(minutes=20)
    assert status.refresh is None  # no refresh tokens with Client Credentials
    # A later success with another credential (a replaced client) is not this client's use...
    await _events(
        db, tenant, {"at": ago(minutes=10), "outcome": "success", "credential": "client_credentials:pvc_old"}
    )
    assert (await _status(db, tenant)).credential_last_used == ago(minutes=20)
    # ...one made with this client's access token is.
    credential = f"client_credentials:{tenant.client_id}"
    await _events(db, tenant, {"at": ago(minutes=5), "outcome": "success", "credential": credential})
    assert (await _status(db, tenant)).credential_last_used == ago(minutes=5)


@pytest.mark.parametrize(("days_left", "soon"), [(5, True), (7, True), (8, False), (40, False)])
async def test_refresh_token_expiry_warning(db: Database, days_left: int, soon: bool) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.AUTHORIZATION_CODE)
    # The authorization's token was rotated away by a refresh; the refresh's token is the live one.
    await _token(
        db,
        tenant,
        issued=ago(days=20),
        grant_type="authorization_code",
        refresh_expires=ago(days=20) + timedelta(days=30),
        refreshed=ago(days=3),
    )
    await _token(
        db,
        tenant,
        issued=ago(days=3),
        grant_type="refresh_token",
        refresh_expires=NOW + timedelta(days=days_left),
    )
    status = await _status(db, tenant)
    assert status.refresh is not None
    assert status.refresh.issued_at == ago(days=3) and status.refresh.rotated
    assert status.refresh.expires_at == NOW + timedelta(days=days_left)
    assert status.refresh.expires_soon is soon and not status.refresh.expired
    assert status.credential_last_used == ago(days=3)


async def test_refresh_token_never_rotated_and_expired(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.AUTHORIZATION_CODE)
    await _token(
        db, tenant, issued=ago(days=31), grant_type="authorization_code", refresh_expires=ago(days=1)
    )
    status = await _status(db, tenant)
    assert status.refresh is not None and not status.refresh.rotated
    assert status.refresh.expired and not status.refresh.expires_soon


async def test_revoked_refresh_tokens_are_not_the_live_one(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.AUTHORIZATION_CODE)
    await _token(
        db,
        tenant,
        issued=ago(days=1),
        grant_type="refresh_token",
        refresh_expires=NOW + timedelta(days=3),
        revoked=NOW,
    )
    assert (await _status(db, tenant)).refresh is None


async def test_bearer_token_last_used(db: Database) -> None:
    tenant = await make_oauth_tenant(db, ScimMethod.BEARER)
    async with db.writing() as session:
        await session.execute(
            update(ScimToken).where(ScimToken.workspace_id == tenant.id).values(created_at=ago(days=2))
        )
    assert (await _status(db, tenant)).credential_last_used is None
    # A success from before the live token existed was another token's.
    await _events(db, tenant, {"at": ago(days=3), "outcome": "success"})
    assert (await _status(db, tenant)).credential_last_used is None
    await _events(db, tenant, {"at": ago(hours=6), "outcome": "success"})
    assert (await _status(db, tenant)).credential_last_used == ago(hours=6)
    async with db.writing() as session:
        await session.execute(
            update(ScimToken).where(ScimToken.workspace_id == tenant.id).values(last_used_at=ago(minutes=5))
        )
    assert (await _status(db, tenant)).credential_last_used == ago(minutes=5)


@contextmanager
def _captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        statements.append((statement, parameters))

    engine = db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def _explain(conn: Any, statement: str, params: Any) -> list[Any]:
    return list(conn.exec_driver_sql(statement, params).fetchall())


@pytest.mark.parametrize("method", [ScimMethod.AUTHORIZATION_CODE, ScimMethod.BEARER])
async def test_every_query_uses_an_index(db: Database, method: ScimMethod) -> None:
    tenant = await make_oauth_tenant(db, method)
    # Mostly old events: the last day is a narrow range of the workspace's log, as in production.
    old = [{"at": ago(days=400 - i / 10), "outcome": "success"} for i in range(2000)]
    recent = [{"at": ago(minutes=i), "outcome": "failure"} for i in range(20, 0, -1)]
    async with db.writing() as session:
        base = {
            "workspace_id": tenant.id,
            "actor": "OAuth client pvc_test",
            "action": "create",
            "status": 201,
        }
        await session.execute(insert(ProvisioningEvent), [{**base, **row} for row in old + recent])
        if db.dialect != "sqlite":
            await session.execute(text("ANALYZE provisioning_events"))
    workspace = await _workspace(db, tenant)
    with _captured(db) as statements:
        async with db.reading() as session:
            await connection_status(session, workspace, now=NOW)
    queries = [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) >= 4
    async with db.reading() as session:
        conn = await session.connection()
        for statement, params in queries:
            if db.dialect == "sqlite":
                rows = await conn.run_sync(_explain, "EXPLAIN QUERY PLAN " + statement, params)
                plan = "\n".join(str(r[-1]) for r in rows)
                scans = [
                    line for line in plan.splitlines() if line.startswith("SCAN") and "INDEX" not in line
                ]
            else:
                # Tiny tables would be read whole anyway; with sequential scans priced out, a query that
                # cannot use an index still shows one.
                # Session-wide, then reset: SET LOCAL would not outlive an autocommit statement.
                await conn.exec_driver_sql("SET enable_seqscan = off")
                try:
                    rows = await conn.run_sync(_explain, "EXPLAIN " + statement, params)
                finally:
                    await conn.exec_driver_sql("RESET enable_seqscan")
                plan = "\n".join(str(r[0]) for r in rows)
                scans = [line for line in plan.splitlines() if "Seq Scan" in line]
            if "provisioning_events" in statement and ".at >=" in statement:
                # The last day's counts read only the last day: the time bound is in the index condition,
                # not a filter over the whole workspace's log.
                conditions = [line for line in plan.splitlines() if "Index Cond" in line or "USING" in line]
                assert any(("at>?" in c) or ("at >=" in c) for c in conditions), plan
            assert not scans, f"{statement}\n{plan}"
