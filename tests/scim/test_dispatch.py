"""The SCIM router (``provisio.scim.dispatch``): 401 before anything else a request could be told, and
SCIM URLs found when the app is served under a path prefix (ASGI ``root_path``)."""

from __future__ import annotations

import httpx

from provisio.config import Settings
from tests.conftest import Tenant
from tests.scim.test_okta_flow import okta_user
from tests.scim.test_protocol import assert_error


async def test_oversized_bodies_are_refused_after_authentication(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    url = f"{tenant.base}/Users"
    big = {**okta_user("big@example.com"), "title": "x" * (settings.scim_max_request_bytes + 1)}
    stranger = {"Authorization": "Bearer not-a-token"}
    assert_error(await client.post(url, json=big, headers=stranger), 401)
    assert_error(await client.post(url, content=b"{not json", headers=stranger), 401)
    assert_error(await client.post(url, json=big, headers=tenant.headers), 413)
    assert_error(await client.post(url, content=b"{not json", headers=tenant.headers), 400, "invalidSyntax")


async def test_scim_is_found_under_a_root_path(app: object, tenant: Tenant) -> None:
    transport = httpx.ASGITransport(app=app, root_path="/provisioning")  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        url = f"/provisioning{tenant.base}/Users"
        created = await client.post(url, json=okta_user("rooted@example.com"), headers=tenant.headers)
        assert created.status_code == 201, created.text
        found = await client.get(
            f"{url}/", params={"filter": 'userName eq "rooted@example.com"'}, headers=tenant.headers
        )
        assert found.status_code == 200 and found.json()["totalResults"] == 1
