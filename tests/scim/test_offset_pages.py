"""Index pagination (RFC 7644 §3.4.2.4) for every page of a workspace. An unfiltered page past the middle
is read from the far end in the reverse order (``members._nearer_end``); every page, whichever way it was
read, must be exactly the slice of the whole ordered list that ``startIndex`` and ``count`` name."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Tenant
from tests.scim.test_okta_flow import okta_user

SIZE = 11


async def _seed(client: httpx.AsyncClient, tenant: Tenant) -> list[dict]:
    users = []
    for i in range(SIZE):
        body = okta_user(f"page{i:02d}@example.com", given=f"G{i % 3}", family=f"F{(i * 5) % SIZE:02d}")
        if i % 4 == 1:  # NULL keys and ties, which the reverse order must place exactly opposite
            body = {k: v for k, v in body.items() if k not in ("displayName", "externalId", "name")}
        if i % 3 == 2:
            body["active"] = False  # inactive members are still listed
        r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
        assert r.status_code == 201, r.text
        users.append(r.json())
    # A deleted member is not a row of any page, from either end.
    assert (
        await client.delete(f"{tenant.base}/Users/{users[4]['id']}", headers=tenant.headers)
    ).status_code == 204
    return [u for i, u in enumerate(users) if i != 4]


async def _ids(client: httpx.AsyncClient, tenant: Tenant, params: dict[str, object]) -> tuple[int, list[str]]:
    r = await client.get(f"{tenant.base}/Users", params=params, headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["startIndex"] == params.get("startIndex", 1)
    assert body["itemsPerPage"] == len(body["Resources"])
    return body["totalResults"], [u["id"] for u in body["Resources"]]


@pytest.mark.parametrize(
    "sort_by",
    [None, "userName", "displayName", "name.givenName", "externalId", "active", "meta.created", "title"],
)
async def test_every_offset_page_is_its_slice_of_the_whole_list(
    client: httpx.AsyncClient, tenant: Tenant, sort_by: str | None
) -> None:
    users = await _seed(client, tenant)
    live = len(users)
    for order in ("ascending", "descending"):
        sort = {"sortOrder": order} | ({"sortBy": sort_by} if sort_by else {})
        # The whole list as one first page: read forwards, never reversed.
        total, whole = await _ids(client, tenant, {**sort, "count": 100})
        assert total == live and sorted(whole) == sorted(u["id"] for u in users)
        if sort_by is None:
            assert whole == sorted(whole, reverse=order == "descending")
        if sort_by == "userName":
            names = {u["id"]: u["userName"].lower() for u in users}
            assert [names[i] for i in whole] == sorted(names.values(), reverse=order == "descending")
        for count in (1, 2, 3, 5, live - 1, live, live + 4):
            for start in range(1, live + 3):
                total, page = await _ids(client, tenant, {**sort, "startIndex": start, "count": count})
                assert total == live
                assert page == whole[start - 1 : start - 1 + count], (order, count, start)


async def test_filtered_pages_past_the_middle(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """A filter's total is not known before its page is read, so it skips forwards; the pages agree."""
    await _seed(client, tenant)
    params: dict[str, object] = {"filter": 'userName sw "page"', "sortBy": "name.familyName"}
    total, whole = await _ids(client, tenant, {**params, "count": 100})
    assert total == SIZE - 1
    for start in range(1, total + 2):
        assert (await _ids(client, tenant, {**params, "startIndex": start, "count": 3}))[1] == whole[
            start - 1 : start + 2
        ]
