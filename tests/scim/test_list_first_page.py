"""A first list page (Okta's lookup before each create): 401 before any complaint about the request,
other tenants invisible, totals right whether or not the page is full."""

from __future__ import annotations

import httpx

from provisio.db.engine import Database
from tests.conftest import Tenant, make_tenant
from tests.scim.test_protocol import assert_error, seed


async def test_unauthenticated_callers_get_401_before_any_filter_or_paging_error(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    url = f"{tenant.base}/Users"
    bad = {"Authorization": "Bearer not-a-token"}
    for params in (
        {"filter": 'userName eq "x"'},
        {"filter": "userName eq"},  # invalid filter
        {"count": "many"},  # invalid count
        {"sortBy": "emails"},  # cannot sort by a multi-valued attribute
    ):
        r = await client.get(url, params=params, headers=bad)
        assert_error(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(
        await client.get(url, params={"filter": "userName eq"}, headers=tenant.headers), 400, "invalidFilter"
    )
    assert_error(await client.get(url, params={"count": "many"}, headers=tenant.headers), 400, "invalidValue")


async def test_first_page_totals_and_tenant_isolation(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    other = await make_tenant(db, "Other")
    url = f"{tenant.base}/Users"
    # An empty workspace: an empty page, not a 401 or 404.
    empty = (await client.get(url, params={"filter": 'userName sw "user"'}, headers=tenant.headers)).json()
    assert (empty["totalResults"], empty["Resources"]) == (0, [])
    await seed(client, tenant, 3)
    # Unfiltered, the total is the workspace's kept member count. Filtered: a page that is not full is
    # its own total, a full one is counted.
    for params in ({}, {"filter": 'userName sw "user"'}):
        for count, total, items in ((5, 3, 3), (3, 3, 3), (2, 3, 2), (0, 3, 0)):
            query = {**params, "count": str(count)}
            body = (await client.get(url, params=query, headers=tenant.headers)).json()
            assert (body["totalResults"], body["itemsPerPage"], body["startIndex"]) == (total, items, 1), (
                query
            )
            assert len(body["Resources"]) == items
    found = (
        await client.get(url, params={"filter": 'userName eq "USER001@example.com"'}, headers=tenant.headers)
    ).json()
    assert [u["userName"] for u in found["Resources"]] == ["user001@example.com"]
    # The other workspace's token sees nothing of this one, on either URL.
    r = await client.get(url, params={"filter": 'userName sw "user"'}, headers=other.headers)
    assert_error(r, 401)
    theirs = (
        await client.get(
            f"{other.base}/Users", params={"filter": 'userName sw "user"'}, headers=other.headers
        )
    ).json()
    assert theirs["totalResults"] == 0
