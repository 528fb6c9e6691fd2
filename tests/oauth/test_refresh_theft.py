"""Refresh-token theft detection (RFC 9700 §4.14.2) and single use under concurrency: a replay inside the
grace period must not let a thief keep the grant, and concurrent uses of one refresh token or one
authorization code must not fork the grant."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import OAuthToken
from provisio.domain.hashing import hash_secret
from tests.oauth.helpers import OAuthTenant, consent, make_oauth_tenant, redirect_params, sign_in
from tests.oauth.test_tokens import TOKEN_URL, authorize_and_exchange, refresh, scim


@pytest.fixture
async def tenant(db: Database) -> OAuthTenant:
    return await make_oauth_tenant(db)


async def test_replay_within_grace_is_detected_when_the_client_next_refreshes(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    first = await authorize_and_exchange(browser, client, tenant)
    stolen = first["refresh_token"]
    okta = await refresh(client, tenant, first["refresh_token"])  # R1 -> R2
    assert okta.status_code == 200
    thief = await refresh(client, tenant, stolen)  # replay of R1 within grace: indistinguishable from a retry
    assert thief.status_code == 200
    # Okta presents R2, which the replay superseded: the theft signal. The whole family ends.
    okta_next = await refresh(client, tenant, okta.json()["refresh_token"])
    assert okta_next.status_code == 400 and okta_next.json()["error"] == "invalid_grant"
    assert (await refresh(client, tenant, thief.json()["refresh_token"])).status_code == 400
    assert await scim(client, tenant, thief.json()["access_token"]) == 401
    assert await scim(client, tenant, okta.json()["access_token"]) == 401


async def test_thief_presenting_the_superseded_successor_ends_the_family(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    first = await authorize_and_exchange(browser, client, tenant)
    thief = await refresh(client, tenant, first["refresh_token"])  # the thief refreshes first: R1 -> R2
    okta = await refresh(client, tenant, first["refresh_token"])  # Okta's refresh looks like a retry: R3
    assert thief.status_code == 200 and okta.status_code == 200
    assert (await refresh(client, tenant, thief.json()["refresh_token"])).status_code == 400
    assert (await refresh(client, tenant, okta.json()["refresh_token"])).status_code == 400
    assert await scim(client, tenant, okta.json()["access_token"]) == 401


async def test_presenting_a_revoked_refresh_token_is_idempotent(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    first = await authorize_and_exchange(browser, client, tenant)
    r = await client.post(
        "/oauth/revoke", data={"token": first["refresh_token"]}, auth=(tenant.client_id, tenant.client_secret)
    )
    assert r.status_code == 200
    for _ in range(2):
        assert (await refresh(client, tenant, first["refresh_token"])).status_code == 400
    # A grant of the same client from another authorization (the admin is still signed in) is unaffected.
    code = redirect_params(
        await consent(browser, f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}")
    )["code"]
    other = await client.post(
        TOKEN_URL,
        data={"grant_type": "authorization_code", "code": code},
        auth=(tenant.client_id, tenant.client_secret),
    )
    assert (await refresh(client, tenant, other.json()["refresh_token"])).status_code == 200


async def _live_successors(db: Database, refresh_token: str) -> list[OAuthToken]:
    async with db.reading() as session:
        parent = (
            await session.execute(
                select(OAuthToken).where(OAuthToken.refresh_token_hash == hash_secret(refresh_token))
            )
        ).scalar_one()
        rows = await session.execute(
            select(OAuthToken).where(OAuthToken.parent_id == parent.id, OAuthToken.revoked_at.is_(None))
        )
        return list(rows.scalars())


async def test_concurrent_refreshes_leave_one_live_successor(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    first = await authorize_and_exchange(browser, client, tenant)
    responses = await asyncio.gather(*(refresh(client, tenant, first["refresh_token"]) for _ in range(6)))
    assert all(r.status_code in (200, 400) for r in responses)
    # Taken one after the other: one rotation, the rest grace retries, each superseding the previous one.
    live = await _live_successors(db, first["refresh_token"])
    assert len(live) == 1
    issued = [r.json()["refresh_token"] for r in responses if r.status_code == 200]
    assert sum(hash_secret(t) == live[0].refresh_token_hash for t in issued) == 1


async def test_concurrent_code_exchanges_issue_one_grant(
    db: Database, browser: httpx.AsyncClient, client: httpx.AsyncClient, tenant: OAuthTenant
) -> None:
    await sign_in(browser, tenant.admin_email)
    code = redirect_params(
        await consent(browser, f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}")
    )["code"]

    async def exchange() -> httpx.Response:
        return await client.post(
            TOKEN_URL,
            data={"grant_type": "authorization_code", "code": code},
            auth=(tenant.client_id, tenant.client_secret),
        )

    responses = await asyncio.gather(*(exchange() for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) <= 1 and statuses.count(400) >= 5
    async with db.reading() as session:
        live = await session.execute(
            select(OAuthToken.id).where(OAuthToken.workspace_id == tenant.id, OAuthToken.revoked_at.is_(None))
        )
        # A reuse revokes what the first exchange issued, so no grant (or at most the single one) survives.
        assert len(list(live)) <= 1
