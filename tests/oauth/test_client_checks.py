"""What the OAuth endpoints reveal before a client has authenticated, and how the consent page names the
identity provider behind a redirect URI."""

from __future__ import annotations

import httpx
import pytest

from provisio.db.engine import Database
from provisio.domain import scim_settings as settings_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.host_events import CLI_ACTOR
from provisio.oauth.consent import ConsentRequest
from tests.oauth.helpers import make_oauth_tenant, sign_in

TOKEN_URL = "/oauth/token"


async def _turn_scim_off(db: Database, key: str) -> None:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        await settings_service.set_enabled(session, ws, False, by=CLI_ACTOR)


@pytest.mark.parametrize("endpoint", [TOKEN_URL, "/oauth/revoke"])
async def test_scim_off_is_told_only_to_an_authenticated_client(
    db: Database, client: httpx.AsyncClient, endpoint: str
) -> None:
    tenant = await make_oauth_tenant(db)
    await _turn_scim_off(db, tenant.key)
    data = {"grant_type": "refresh_token", "refresh_token": "x", "token": "x"}
    wrong = await client.post(endpoint, data=data, auth=(tenant.client_id, "pvcs_wrong"))
    assert wrong.status_code in (400, 401) and wrong.json()["error"] == "invalid_client"
    assert "turned off" not in wrong.text
    right = await client.post(endpoint, data=data, auth=(tenant.client_id, tenant.client_secret))
    assert right.status_code == 401 and "turned off" in right.json()["error_description"]


async def test_scim_off_is_shown_to_the_admin_on_the_authorization_page(
    db: Database, browser: httpx.AsyncClient
) -> None:
    tenant = await make_oauth_tenant(db)
    await _turn_scim_off(db, tenant.key)
    await sign_in(browser, tenant.admin_email)
    page = await browser.get(f"{tenant.authorization_path}?response_type=code&client_id={tenant.client_id}")
    assert page.status_code == 400 and "turned off" in page.text


@pytest.mark.parametrize(
    ("redirect_uri", "name"),
    [
        ("https://acme.okta.com/cb", "Okta"),
        ("https://okta.com/cb", "Okta"),
        ("https://acme.oktapreview.com/cb", "Okta"),
        ("https://evilokta.com/cb", "evilokta.com"),
        ("https://acme.notokta-emea.com/cb", "acme.notokta-emea.com"),
        ("https://okta.com.evil.example/cb", "okta.com.evil.example"),
    ],
)
def test_identity_provider_is_named_only_for_its_own_domains(redirect_uri: str, name: str) -> None:
    consent = ConsentRequest("pvc_x", "w", "acme", "Acme", redirect_uri, "scim")
    assert consent.idp_name == name
