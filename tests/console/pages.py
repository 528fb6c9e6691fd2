"""Helpers for the workspace page tests (Members, Billing & seats, Domains): a workspace with a signed-in
admin, its pages' paths, form submission with the page's CSRF token, and members made like SCIM does."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import Member, Workspace
from provisio.domain import domains as domain_service
from provisio.domain import members as member_service
from provisio.domain import seats as seat_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.scim_methods import ScimMethod
from tests.oauth.helpers import OAuthTenant, csrf_token, make_oauth_tenant, sign_in

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BASE_URL = "http://provisio.test"


def new_browser(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)  # type: ignore[arg-type]


async def signed_in_tenant(
    db: Database,
    browser: httpx.AsyncClient,
    *,
    seats: int | None = None,
    allow_other_domains: bool = False,
    auto_charge: bool = False,
) -> OAuthTenant:
    """A workspace (100 seats, one operator-verified domain) whose admin is signed in in ``browser``."""
    tenant = await make_oauth_tenant(db, ScimMethod.BEARER, enabled=False, credentials=False)
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        ws.allow_other_domains = allow_other_domains
        ws.license_auto_charge = auto_charge
        if seats is not None:
            await seat_service.set_purchased(session, ws, seats, actor="test", by=CLI_ACTOR)
    r = await sign_in(browser, tenant.admin_email)
    assert r.status_code == 303
    return tenant


def members_path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/members"


def billing_path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/settings/billing"


def domains_path(tenant: OAuthTenant) -> str:
    return f"/console/workspaces/{tenant.key}/settings/domains"


async def submit(browser: httpx.AsyncClient, path: str, action: str, **data: str) -> httpx.Response:
    """Open the page at ``path`` (for its CSRF token) and post one of its forms."""
    opened = await browser.get(path)
    assert opened.status_code == 200, opened.text
    return await browser.post(f"{path}/{action}", data={"csrf_token": csrf_token(opened.text), **data})


async def own_domain(db: Database, tenant: OAuthTenant) -> str:
    async with db.reading() as session:
        return (await domain_service.verified_domains(session, tenant.id))[0]


def unique_email(domain: str, local: str = "ada") -> str:
    return f"{local}-{uuid.uuid4().hex[:8]}@{domain}"


async def scim_member(db: Database, tenant: OAuthTenant, email: str, given: str = "Ada") -> str:
    """A member as an identity provider creates it (``provisioned_by_scim``); returns its id."""
    doc = {
        "schemas": [USER],
        "userName": email,
        "name": {"givenName": given, "familyName": "Lovelace"},
        "displayName": f"{given} Lovelace",
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
    }
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        member = await member_service.create_member(session, ws, doc, actor="Okta (test)", by=CLI_ACTOR)
        return member.id


async def member_by_user_name(db: Database, tenant: OAuthTenant, user_name: str) -> Member:
    async with db.reading() as session:
        return (
            await session.execute(
                select(Member).where(
                    Member.workspace_id == tenant.id, Member.user_name_lower == user_name.lower()
                )
            )
        ).scalar_one()


async def workspace(db: Database, tenant: OAuthTenant) -> Workspace:
    async with db.reading() as session:
        return await workspace_service.require_workspace(session, tenant.key)


async def used_and_purchased(db: Database, tenant: OAuthTenant) -> tuple[int, int]:
    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        usage = await seat_service.usage(session, ws)
    return usage.used, usage.purchased


def member_ids(html: str) -> list[str]:
    return re.findall(r'name="member_id" value="([^"]+)"', html)
