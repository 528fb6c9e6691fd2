"""Hostile input to the SCIM API: whatever a client sends, the answer is never a 5xx, every refusal is
a SCIM Error (RFC 7644 §3.12), and a refused request changes no member, seat or count.

Each test draws requests with hypothesis (``PROVISIO_HOSTILE_EXAMPLES`` per test and database, 120 by
default) against the real application on SQLite and PostgreSQL, with a second workspace beside the
one attacked so that a leak across tenants would show as a change to its rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import Member, MemberBucket, Person, Workspace
from tests.conftest import Tenant, make_tenant
from tests.hostile import strategies as hs
from tests.scim.test_okta_flow import okta_user

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_TYPES = {
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
    "invalidCursor",
    "expiredCursor",
}
EXAMPLES = int(os.environ.get("PROVISIO_HOSTILE_EXAMPLES", "120"))

hostile = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,  # the same examples on every run and machine: CI stays reproducible
    derandomize=True,
)


@dataclass
class World:
    client: httpx.AsyncClient
    db: Database
    tenant: Tenant
    other: Tenant
    member_ids: list[str]
    other_member_id: str

    def ids(self) -> st.SearchStrategy[str]:
        """A member id of the attacked workspace, of the other one, or anything at all."""
        return st.sampled_from([*self.member_ids, self.other_member_id]) | hs.segments


@pytest.fixture
async def world(client: httpx.AsyncClient, db: Database) -> World:
    tenant = await make_tenant(db, "Hostile")
    other = await make_tenant(db, "Bystander")
    ids = []
    for i in range(3):
        r = await client.post(
            f"{tenant.base}/Users", json=okta_user(f"h{i}@{tenant.key}.test"), headers=tenant.headers
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await client.post(f"{other.base}/Users", json=okta_user(f"b@{other.key}.test"), headers=other.headers)
    assert r.status_code == 201, r.text
    return World(client, db, tenant, other, ids, r.json()["id"])


async def snapshot(world: World) -> tuple[Any, ...]:
    """Every stored fact a SCIM request could change, for both workspaces."""
    ws_ids = [world.tenant.id, world.other.id]
    async with world.db.reading() as session:
        workspaces = (await session.execute(select(Workspace).where(Workspace.id.in_(ws_ids)))).scalars()
        members = (
            await session.execute(select(Member).where(Member.workspace_id.in_(ws_ids)).order_by(Member.id))
        ).scalars()
        buckets = (
            await session.execute(select(MemberBucket).where(MemberBucket.workspace_id.in_(ws_ids)))
        ).scalars()
        people = (await session.execute(select(Person.id, Person.email_lower).order_by(Person.id))).all()
        return (
            sorted(_row(w) for w in workspaces),
            [_row(m) for m in members],
            sorted(_row(b) for b in buckets),
            len(people),
        )


def _row(obj: Any) -> str:
    return repr(sorted((c.key, repr(getattr(obj, c.key))) for c in obj.__table__.columns))


def assert_scim_error(r: httpx.Response) -> None:
    assert r.headers.get("content-type", "").startswith("application/scim+json"), (r.status_code, r.text)
    body = r.json()
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert body["status"] == str(r.status_code), body
    assert isinstance(body["detail"], str) and body["detail"], body
    if "scimType" in body:
        assert body["scimType"] in SCIM_TYPES, body
    if r.status_code == 401:
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers
    if r.status_code == 405:
        assert r.headers.get("allow"), r.headers


async def send(
    world: World,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str | bytes] | None = None,
    params: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """Send one hostile request and check the answer and, for a refusal, that nothing changed."""
    before = await snapshot(world)
    request_headers = {"Authorization": f"Bearer {world.tenant.token}".encode()}
    request_headers.update(headers or {})
    r = await world.client.request(method, url, headers=request_headers, params=params, content=content)
    assert r.status_code < 500, (method, url, headers, params, content, r.status_code, r.text)
    if r.status_code >= 400:
        # HEAD is GET's answer without its body; "../.." can take a path out of the SCIM API.
        if method != "HEAD" and r.request.url.path.startswith("/scim/v2/"):
            assert_scim_error(r)
        assert await snapshot(world) == before, (method, url, params, content, r.status_code, r.text)
    return r


def body(value: Any) -> bytes:
    # The standard library, not orjson: it writes integers of any size, as a hostile client may.
    return json.dumps(value).encode()


METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "get"])


@hostile
@given(data=st.data())
async def test_hostile_headers(world: World, data: st.DataObject) -> None:
    member = data.draw(world.ids())
    method = data.draw(st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]))
    headers: dict[str, str | bytes] = {}
    for name in data.draw(
        st.lists(
            st.sampled_from(
                ["If-Match", "If-None-Match", "Content-Type", "Accept", "Authorization", "Content-Length"]
            ),
            max_size=4,
            unique=True,
        )
    ):
        value = data.draw(
            hs.header_bytes
            | st.sampled_from([b'W/"\xc2\xb2"', 'W/"²"'.encode(), b'W/"1"', b"*", b'"99999999999999999999"'])
            | st.sampled_from([b"Bearer ", b"Basic \xff\xfe", b"bearer " + world.tenant.token.encode()])
            | st.just(f"Bearer {world.other.token}".encode())
        )
        if name == "Content-Length":
            continue  # the ASGI transport frames the body itself; the HTTP layer's own tests cover this
        headers[name] = value
    content = body(okta_user(f"h0@{world.tenant.key}.test")) if method == "PUT" else None
    if method == "PATCH":
        content = body(
            {"schemas": [hs.PATCH_OP], "Operations": [{"op": "replace", "value": {"active": True}}]}
        )
    await send(world, method, f"{world.tenant.base}/Users/{member}", headers=headers, content=content)


@hostile
@given(data=st.data())
async def test_hostile_paths(world: World, data: st.DataObject) -> None:
    first = data.draw(
        st.sampled_from(["Users", "Schemas", "ResourceTypes", "ServiceProviderConfig", ".search", "Groups"])
        | hs.segments
    )
    rest = data.draw(st.lists(world.ids() | hs.segments, max_size=3))
    path = "/".join([first, *rest])
    method = data.draw(METHODS)
    content = data.draw(st.none() | hs.json_values.map(body))
    await send(world, method.upper(), f"{world.tenant.base}/{path}", content=content)


@hostile
@given(params=hs.list_params)
async def test_hostile_list_parameters(world: World, params: dict[str, str]) -> None:
    await send(world, "GET", f"{world.tenant.base}/Users", params=params)


@hostile
@given(query=hs.raw_queries)
async def test_hostile_query_bytes(world: World, query: bytes) -> None:
    url = httpx.URL(f"http://provisio.test{world.tenant.base}/Users", query=query)
    await send(world, "GET", str(url))


@hostile
@given(search=hs.search_bodies, root=st.booleans())
async def test_hostile_search_bodies(world: World, search: Any, root: bool) -> None:
    url = f"{world.tenant.base}/.search" if root else f"{world.tenant.base}/Users/.search"
    await send(world, "POST", url, content=body(search), headers={"Content-Type": "application/scim+json"})


@hostile
@given(user=hs.user_bodies)
async def test_hostile_creates(world: World, user: Any) -> None:
    await send(world, "POST", f"{world.tenant.base}/Users", content=body(user))


@hostile
@given(data=st.data(), user=hs.user_bodies)
async def test_hostile_replaces(world: World, data: st.DataObject, user: Any) -> None:
    member = data.draw(world.ids())
    await send(world, "PUT", f"{world.tenant.base}/Users/{member}", content=body(user))


@hostile
@given(data=st.data(), patch=hs.patch_bodies)
async def test_hostile_patches(world: World, data: st.DataObject, patch: Any) -> None:
    member = data.draw(world.ids())
    await send(world, "PATCH", f"{world.tenant.base}/Users/{member}", content=body(patch))


@hostile
@given(
    raw=st.binary(max_size=200)
    | st.sampled_from(
        [b"{", b"[]", b"null", b'{"a":1e999}', b'{"a":' + b"9" * 5000 + b"}", b"\xef\xbb\xbf{}"]
    ),
    method=st.sampled_from(["POST", "PUT", "PATCH"]),
    content_type=st.sampled_from(["application/scim+json", "application/json", "text/plain", "", "x/\xff"]),
)
async def test_hostile_raw_bodies(world: World, raw: bytes, method: str, content_type: str) -> None:
    url = (
        f"{world.tenant.base}/Users"
        if method == "POST"
        else f"{world.tenant.base}/Users/{world.member_ids[0]}"
    )
    await send(world, method, url, content=raw, headers={"Content-Type": content_type.encode("latin-1")})


async def test_known_breakers(world: World) -> None:
    """The inputs that broke the server before, each a class the tests above draw from."""
    base = world.tenant.base
    member = world.member_ids[0]
    for tag in ('W/"²"', 'W/"\u0661"', '"' + "9" * 5000 + '"'):
        r = await send(
            world,
            "PUT",
            f"{base}/Users/{member}",
            headers={"If-Match": tag.encode()},
            content=body(okta_user(f"h0@{world.tenant.key}.test")),
        )
        assert r.status_code == 412, r.text
        r = await send(world, "GET", f"{base}/Users/{member}", headers={"If-None-Match": tag.encode()})
        assert r.status_code == 200, r.text
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        r = await send(
            world, method, f"{base}/Users/%2A", content=b"{}" if method in ("PUT", "PATCH") else None
        )
        assert r.status_code in (400, 404), r.text
    for schemas in (None, 1, "x", {"a": 1}, [1]):
        r = await send(world, "POST", f"{base}/Users/.search", content=body({"schemas": schemas}))
        assert r.status_code == 400, r.text
