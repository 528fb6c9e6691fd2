"""RFC 7644 protocol details: listing, pagination (index and RFC 9865 cursors), sorting, projection,
ETags, body limits and error documents."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisio.db.engine import Database
from tests.conftest import Tenant, make_tenant
from tests.scim.test_okta_flow import okta_user

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


async def seed(client: httpx.AsyncClient, tenant: Tenant, n: int) -> list[dict]:
    users = []
    for i in range(n):
        body = okta_user(f"user{i:03d}@example.com", given=f"G{(i * 7) % n:03d}", family=f"F{i:03d}")
        r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
        assert r.status_code == 201, r.text
        users.append(r.json())
    return users


def assert_error(r: httpx.Response, status: int, scim_type: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"] and len(body["detail"]) > 10
    if scim_type:
        assert body.get("scimType") == scim_type, body
    return body


async def test_index_pagination_sort_and_projection(client: httpx.AsyncClient, tenant: Tenant) -> None:
    users = await seed(client, tenant, 12)
    h = tenant.headers
    r = await client.get(
        f"{tenant.base}/Users", params={"startIndex": 3, "count": 4, "sortBy": "userName"}, headers=h
    )
    body = r.json()
    assert body["totalResults"] == 12 and body["startIndex"] == 3 and body["itemsPerPage"] == 4
    assert [u["userName"] for u in body["Resources"]] == [f"user{i:03d}@example.com" for i in range(2, 6)]

    r = await client.get(
        f"{tenant.base}/Users",
        params={"sortBy": "name.givenName", "sortOrder": "descending", "count": 3},
        headers=h,
    )
    givens = [u["name"]["givenName"] for u in r.json()["Resources"]]
    assert givens == sorted((u["name"]["givenName"] for u in users), reverse=True)[:3]

    # count=0 only counts; a count over the maximum is capped (PROVISIO_SCIM_MAX_RESULTS=100 in tests).
    r = await client.get(f"{tenant.base}/Users", params={"count": 0}, headers=h)
    assert r.json()["totalResults"] == 12 and r.json()["Resources"] == []
    r = await client.get(f"{tenant.base}/Users", params={"count": 100000}, headers=h)
    assert r.json()["itemsPerPage"] == 12

    # attributes / excludedAttributes: id and schemas always come back.
    r = await client.get(
        f"{tenant.base}/Users", params={"attributes": "userName,name.familyName", "count": 1}, headers=h
    )
    one = r.json()["Resources"][0]
    assert set(one) == {"schemas", "id", "userName", "name"} and set(one["name"]) == {"familyName"}
    r = await client.get(
        f"{tenant.base}/Users/{users[0]['id']}", params={"excludedAttributes": "emails,meta"}, headers=h
    )
    assert "emails" not in r.json() and "meta" not in r.json() and r.json()["userName"]


async def test_cursor_pagination_walks_everything_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    users = await seed(client, tenant, 11)
    seen: list[str] = []
    params: dict[str, object] = {"cursor": "", "count": 4, "sortBy": "userName"}
    while True:
        r = await client.get(f"{tenant.base}/Users", params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["totalResults"] == 11 and "startIndex" not in body
        seen += [u["userName"] for u in body["Resources"]]
        if "nextCursor" not in body:
            break
        params["cursor"] = body["nextCursor"]
    assert seen == sorted(u["userName"] for u in users)

    # A cursor is bound to its query, and a forged one is refused.
    r = await client.get(f"{tenant.base}/Users", params={"cursor": "", "count": 4}, headers=tenant.headers)
    nxt = r.json()["nextCursor"]
    r = await client.get(
        f"{tenant.base}/Users",
        params={"cursor": nxt, "count": 4, "filter": "active eq true"},
        headers=tenant.headers,
    )
    assert_error(r, 400, "invalidCursor")
    r = await client.get(
        f"{tenant.base}/Users", params={"cursor": "bm9wZQ", "count": 4}, headers=tenant.headers
    )
    assert_error(r, 400, "invalidCursor")
    r = await client.get(
        f"{tenant.base}/Users", params={"cursor": "", "startIndex": 2}, headers=tenant.headers
    )
    assert_error(r, 400, "invalidValue")


async def test_search_endpoint(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await seed(client, tenant, 3)
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName sw "user00" and name.familyName eq "f001"',
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10,
    }
    r = await client.post(f"{tenant.base}/Users/.search", json=body, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert [u["userName"] for u in r.json()["Resources"]] == ["user001@example.com"]
    r = await client.post(f"{tenant.base}/.search", json=body, headers=tenant.headers)
    assert r.json()["totalResults"] == 1


async def test_etags(client: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await client.post(f"{tenant.base}/Users", json=okta_user("etag@example.com"), headers=tenant.headers)
    uid, version = r.json()["id"], r.headers["etag"]
    url = f"{tenant.base}/Users/{uid}"
    r = await client.get(url, headers=tenant.headers | {"If-None-Match": version})
    assert r.status_code == 304
    r = await client.put(
        url, json=okta_user("etag@example.com", given="New"), headers=tenant.headers | {"If-Match": version}
    )
    assert r.status_code == 200 and r.headers["etag"] != version
    # The old version is stale now: every write with it is refused and changes nothing.
    stale = tenant.headers | {"If-Match": version}
    assert_error(await client.put(url, json=okta_user("etag@example.com", given="Lost"), headers=stale), 412)
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Lost"}],
    }
    assert_error(await client.patch(url, json=patch, headers=stale), 412)
    assert_error(await client.delete(url, headers=stale), 412)
    r = await client.get(url, headers=tenant.headers)
    assert r.json()["name"]["givenName"] == "New" and r.json()["displayName"] == "New Lovelace"
    # An unchanged PUT keeps the version.
    current = r.headers["etag"]
    r = await client.put(url, json=okta_user("etag@example.com", given="New"), headers=tenant.headers)
    assert r.headers["etag"] == current


@pytest.mark.parametrize(
    ("filter_text", "status", "scim_type"),
    [
        ("userName eq", 400, "invalidFilter"),
        ('userName xx "a"', 400, "invalidFilter"),
        ('(userName eq "a"', 400, "invalidFilter"),
        ('emails[type eq "work"', 400, "invalidFilter"),
        ('meta.created gt "not a date"', 400, "invalidFilter"),
        ("active gt true", 400, "invalidFilter"),
        ('foo eq "x"', 400, "invalidFilter"),
    ],
)
async def test_bad_filters(
    client: httpx.AsyncClient, tenant: Tenant, filter_text: str, status: int, scim_type: str
) -> None:
    r = await client.get(f"{tenant.base}/Users", params={"filter": filter_text}, headers=tenant.headers)
    assert_error(r, status, scim_type)


async def test_unknown_attributes_one_rule(client: httpx.AsyncClient, tenant: Tenant) -> None:
    """What the server does not define is an error where it would change the answer (filters, bodies,
    PATCH paths), and selects nothing where it only shapes the answer (attributes=)."""
    h = tenant.headers
    url = f"{tenant.base}/Users"
    [user] = await seed(client, tenant, 1)
    for text in ('foo eq "x"', 'userName eq "user000@example.com" or foo eq "x"', "name.foo pr"):
        body = assert_error(await client.get(url, params={"filter": text}, headers=h), 400, "invalidFilter")
        assert "foo" in body["detail"], body
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'foo eq "x"'}
    assert_error(await client.post(f"{url}/.search", json=search, headers=h), 400, "invalidFilter")
    # Defined attributes held only in the JSON document filter like any other.
    r = await client.get(url, params={"filter": 'x509Certificates.value eq "x"'}, headers=h)
    assert r.status_code == 200 and r.json()["totalResults"] == 0
    r = await client.get(url, params={"filter": 'emails eq "user000@example.com"'}, headers=h)
    assert r.status_code == 200 and r.json()["totalResults"] == 1

    # attributes= / excludedAttributes=: an unknown name selects (or removes) nothing; an unknown URN is 400.
    r = await client.get(f"{url}/{user['id']}", params={"attributes": "foo"}, headers=h)
    assert r.status_code == 200 and set(r.json()) == {"schemas", "id"}
    r = await client.get(f"{url}/{user['id']}", params={"excludedAttributes": "foo"}, headers=h)
    assert r.status_code == 200 and r.json()["userName"] == "user000@example.com"
    r = await client.get(url, params={"attributes": "urn:example:unknown:2.0:User:foo"}, headers=h)
    assert_error(r, 400, "invalidValue")

    # Bodies and PATCH paths: an unknown attribute is refused, naming it.
    r = await client.post(url, json=okta_user("new@example.com") | {"foo": "x"}, headers=h)
    assert "'foo'" in assert_error(r, 400, "invalidSyntax")["detail"]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "foo", "value": "x"}],
    }
    r = await client.patch(f"{url}/{user['id']}", json=patch, headers=h)
    assert "'foo'" in assert_error(r, 400, "invalidPath")["detail"]


async def test_bad_bodies(client: httpx.AsyncClient, db: Database, settings: object) -> None:
    tenant = await make_tenant(db)
    url = f"{tenant.base}/Users"
    h = tenant.headers
    assert_error(await client.post(url, content=b"{not json", headers=h), 400, "invalidSyntax")
    assert_error(await client.post(url, content=b"[1,2]", headers=h), 400, "invalidSyntax")
    assert_error(await client.post(url, json={"schemas": []}, headers=h), 400)
    assert_error(
        await client.post(url, json=okta_user("x@example.com") | {"active": "maybe"}, headers=h),
        400,
        "invalidValue",
    )
    assert_error(await client.post(url, json=okta_user("y@example.com") | {"emails": "nope"}, headers=h), 400)
    big = okta_user("big@example.com") | {"title": "x" * 2_000_000}
    assert_error(await client.post(url, json=big, headers=h), 413)
    assert_error(await client.post(url, params={"sortBy": "emails"}, json={}, headers=h), 400)
    r = await client.get(url, params={"sortBy": "nope.nothing"}, headers=h)
    assert_error(r, 400, "invalidValue")
    r = await client.get(url, params={"startIndex": "abc"}, headers=h)
    assert_error(r, 400, "invalidValue")
    r = await client.put(f"{url}/x", json={}, headers=h)
    assert r.status_code in (400, 404)
    r = await client.post(f"{tenant.base}/ServiceProviderConfig", json={}, headers=h)
    assert_error(r, 405)
    # None of these left a row behind.
    r = await client.get(url, headers=h)
    assert r.json()["totalResults"] == 0


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
user_keys = st.sampled_from(
    [
        "userName",
        "name",
        "emails",
        "active",
        "displayName",
        "title",
        "phoneNumbers",
        "addresses",
        "externalId",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "schemas",
        "id",
        "meta",
        "x509Certificates",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(user_keys, json_values, max_size=6))
async def test_random_user_bodies_never_500(client: httpx.AsyncClient, tenant: Tenant, body: dict) -> None:
    r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
    assert r.status_code in (201, 400, 409), r.text
    if r.status_code != 201:
        assert r.json()["schemas"] == [ERROR]
    else:
        uid = r.json()["id"]
        r = await client.put(f"{tenant.base}/Users/{uid}", json=body, headers=tenant.headers)
        assert r.status_code in (200, 400, 409), r.text
        await client.delete(f"{tenant.base}/Users/{uid}", headers=tenant.headers)


async def test_trailing_slashes_are_the_same_resource(client: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await client.post(
        f"{tenant.base}/Users/", json=okta_user("slash@example.com"), headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    r = await client.get(
        f"{tenant.base}/Users/", params={"filter": 'userName eq "slash@example.com"'}, headers=tenant.headers
    )
    assert r.status_code == 200 and r.json()["totalResults"] == 1
    assert (await client.get(f"{tenant.base}/Users/{uid}/", headers=tenant.headers)).status_code == 200
    assert (await client.get(f"{tenant.base}/Schemas/", headers=tenant.headers)).status_code == 200
    r = await client.delete(f"{tenant.base}/Users/", headers=tenant.headers)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    "sort_by",
    [
        "userName",
        "displayName",
        "name.givenName",
        "name.familyName",
        "meta.created",
        "meta.lastModified",
        "externalId",
        "title",
        "active",
        "emails",
        "id",
    ],
)
async def test_cursor_walk_for_every_sort_key(
    client: httpx.AsyncClient, tenant: Tenant, sort_by: str
) -> None:
    h = tenant.headers
    for i in range(7):
        body = okta_user(f"walk{i}@example.com", given=f"G{i % 3}")
        if i % 2:  # some users lack the optional attributes, so NULL keys are walked too
            body = {k: v for k, v in body.items() if k not in ("displayName", "externalId", "name")}
        assert (await client.post(f"{tenant.base}/Users", json=body, headers=h)).status_code == 201
    for order in ("ascending", "descending"):
        seen: list[str] = []
        params: dict[str, object] = {"cursor": "", "count": 2, "sortBy": sort_by, "sortOrder": order}
        for _ in range(10):
            r = await client.get(f"{tenant.base}/Users", params=params, headers=h)
            assert r.status_code == 200, r.text
            seen += [u["id"] for u in r.json()["Resources"]]
            if "nextCursor" not in r.json():
                break
            params["cursor"] = r.json()["nextCursor"]
        assert len(seen) == len(set(seen)) == 7, (order, seen)


async def test_huge_start_index_is_an_empty_page(client: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await client.get(
        f"{tenant.base}/Users", params={"startIndex": "99999999999999999999999"}, headers=tenant.headers
    )
    assert r.status_code == 200 and r.json()["Resources"] == []


async def test_values_too_long_for_storage_are_clear_400s(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for body in (
        okta_user("x" * 600 + "@example.com"),
        okta_user("long@example.com") | {"displayName": "d" * 513},
        okta_user("long@example.com") | {"externalId": "e" * 513},
    ):
        r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
        err = assert_error(r, 400, "invalidValue")
        assert "at most" in err["detail"]
    r = await client.post(
        f"{tenant.base}/Users",
        json=okta_user("nul@example.com") | {"title": "a\u0000b"},
        headers=tenant.headers,
    )
    assert_error(r, 400, "invalidValue")
    for path in ("/Users/%00", "/Users?filter=userName%20eq%20%22%00%22"):
        r = await client.get(f"{tenant.base}{path}", headers=tenant.headers)
        assert r.status_code in (400, 404) and r.json()["schemas"] == [ERROR]
    r = await client.get("/scim/v2/a%00b/Users", headers=tenant.headers)
    assert r.status_code in (400, 401) and r.json()["schemas"] == [ERROR]
