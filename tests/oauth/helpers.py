"""Helpers shared by the OAuth, console and end-to-end tests: tenants configured through the domain
services, a signed-in browser (httpx with cookies), and the consent step."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from provisio.db.engine import Database
from provisio.db.models import Admin, OAuthAuthorizationCode, OAuthToken, utcnow
from provisio.domain import admins as admin_service
from provisio.domain import domains as domain_service
from provisio.domain import redirect_uris as redirect_service
from provisio.domain import scim_credentials as credential_service
from provisio.domain import scim_settings as settings_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.hashing import hash_secret
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.scim_methods import ScimMethod
from provisio.oauth import codes, token_store
from provisio.oauth.clients import load_client

OKTA_CALLBACK = "https://system-admin.okta.com/admin/app/cpc/acme_app_1/oauth/callback"
PASSWORD = "correct horse battery staple"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class OAuthTenant:
    key: str
    id: str
    name: str
    admin_email: str
    client_id: str = ""
    client_secret: str = ""
    redirect_uris: list[str] = field(default_factory=list)

    @property
    def authorization_path(self) -> str:
        return f"/oauth/{self.key}/authorize"

    @property
    def scim_base(self) -> str:
        return f"/scim/v2/{self.key}"


async def make_oauth_tenant(
    db: Database,
    method: ScimMethod = ScimMethod.AUTHORIZATION_CODE,
    redirect_uris: tuple[str, ...] = (OKTA_CALLBACK,),
    *,
    enabled: bool = True,
    credentials: bool = True,
    name: str | None = None,
    seats: int = 100,
) -> OAuthTenant:
    suffix = uuid.uuid4().hex[:8]
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, name or f"Acme {suffix}", seats=seats)
        # SCIM needs a verified domain; users of any domain are accepted in these tests.
        await domain_service.add_domain(session, ws, f"acme-{suffix}.example", operator_verified=True)
        ws.allow_other_domains = True
        admin = await admin_service.create_admin(session, f"it-{suffix}@acme.example", PASSWORD)
        await admin_service.grant_workspace(session, admin, ws)
        await settings_service.set_method(session, ws, method)
        await settings_service.set_enabled(session, ws, enabled, by=CLI_ACTOR)
        for uri in redirect_uris if method is ScimMethod.AUTHORIZATION_CODE else ():
            await redirect_service.add_redirect_uri(session, ws, uri)
        tenant = OAuthTenant(key=ws.key, id=ws.id, name=ws.name, admin_email=admin.email)
        if credentials:
            issued = await credential_service.generate_credentials(session, ws)
            tenant.client_id = issued.client_id or ""
            tenant.client_secret = issued.client_secret or ""
        tenant.redirect_uris = list(redirect_uris)
    return tenant


async def make_admin(db: Database, workspace_key: str | None = None) -> str:
    """Another admin (of ``workspace_key``, or of a fresh workspace of their own); returns the e-mail."""
    suffix = uuid.uuid4().hex[:8]
    async with db.writing() as session:
        if workspace_key:
            ws = await workspace_service.require_workspace(session, workspace_key)
        else:
            ws = await workspace_service.create_workspace(session, f"Other {suffix}")
        admin = await admin_service.create_admin(session, f"admin-{suffix}@other.example", PASSWORD)
        await admin_service.grant_workspace(session, admin, ws)
    return admin.email


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(
    browser: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str = ""
) -> httpx.Response:
    page = await browser.get("/console/login", params={"next": next_path} if next_path else None)
    assert page.status_code == 200, page.text
    return await browser.post(
        "/console/login",
        data={"email": email, "password": password, "next": next_path, "csrf_token": csrf_token(page.text)},
    )


async def consent(browser: httpx.AsyncClient, authorize_url: str, decision: str = "allow") -> httpx.Response:
    """Open the authorization URL as a signed-in admin and answer the consent page."""
    page = await browser.get(authorize_url)
    assert page.status_code == 200, page.text
    assert "Allow access" in page.text
    path = urlsplit(authorize_url)
    return await browser.post(
        path.path + ("?" + path.query if path.query else ""),
        data={"csrf_token": csrf_token(page.text), "decision": decision},
    )


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


async def expire_access_tokens(db: Database, workspace_id: str) -> None:
    async with db.writing() as session:
        await session.execute(
            update(OAuthToken)
            .where(OAuthToken.workspace_id == workspace_id)
            .values(access_expires_at=utcnow() - timedelta(seconds=1))
        )


async def age_refresh_rotation(db: Database, refresh_token: str, seconds: int) -> None:
    """Pretend ``refresh_token`` was rotated ``seconds`` ago."""
    async with db.writing() as session:
        await session.execute(
            update(OAuthToken)
            .where(OAuthToken.refresh_token_hash == hash_secret(refresh_token))
            .values(refreshed_at=utcnow() - timedelta(seconds=seconds))
        )


def okta_user(user_name: str) -> dict[str, object]:
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "active": True,
    }


@dataclass(frozen=True)
class Grants:
    code: str
    access_token: str
    refresh_token: str


async def seed_grants(db: Database, tenant: OAuthTenant) -> Grants:
    """A live authorization code and token pair for ``tenant``'s client, stored as the server stores
    them, so a probe can see whether a request used or wrote any."""
    grants = Grants(codes.new_code(), token_store.new_access_token(), token_store.new_refresh_token())
    async with db.writing() as session:
        admin_id = (
            await session.execute(select(Admin.id).where(Admin.email == tenant.admin_email))
        ).scalar_one()

        def write(sync: Session) -> None:
            client = load_client(sync, tenant.client_id)
            assert client is not None
            codes.save_code(
                sync,
                grants.code,
                client,
                admin_id=admin_id,
                redirect_uri=None,
                scope="scim",
                code_challenge=None,
                code_challenge_method=None,
                ttl_seconds=600,
            )
            token = {"access_token": grants.access_token, "refresh_token": grants.refresh_token}
            token_store.save_token(
                sync,
                token | {"expires_in": 3600, "scope": "scim"},
                client_pk=client.pk,
                workspace_id=client.workspace_id,
                lineage=token_store.Lineage("authorization_code", admin_id=admin_id),
                refresh_ttl_seconds=86400,
            )

        await session.run_sync(write)
    return grants


async def grant_rows(db: Database, workspace_id: str) -> set[tuple[object, ...]]:
    """Every code and token row of the workspace with the columns a request may change."""
    async with db.reading() as session:
        tokens = await session.execute(
            select(OAuthToken.id, OAuthToken.revoked_at, OAuthToken.refreshed_at).where(
                OAuthToken.workspace_id == workspace_id
            )
        )
        codes_ = await session.execute(
            select(OAuthAuthorizationCode.id, OAuthAuthorizationCode.used_at).where(
                OAuthAuthorizationCode.workspace_id == workspace_id
            )
        )
        return {tuple(row) for row in tokens} | {tuple(row) for row in codes_}
