"""A disabled workspace refuses every SCIM request of its identity provider with 403 (its credentials
still check out, so the IdP is not told they are wrong), changes nothing, counts the refusals in its
provisioning log, and serves again as before once it is enabled. Other workspaces never notice."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from provisio.db.engine import Database
from provisio.db.models import Member, NotificationState
from provisio.domain import provisioning_log
from provisio.domain import workspaces as workspace_service
from tests.conftest import Tenant, make_tenant
from tests.disabling import disable, enable
from tests.domain.helpers import PATCH, entra_active, okta_user

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _requests(tenant: Tenant, member_id: str) -> list[tuple[str, str, Any]]:
    users = f"{tenant.base}/Users"
    rename = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}
    return [
        ("GET", users, None),
        ("GET", f'{users}?filter=userName eq "ada@{tenant.key}.test"', None),
        ("GET", f"{users}/{member_id}", None),
        ("GET", f"{users}/no-such-member", None),
        ("POST", users, okta_user(f"bob@{tenant.key}.test")),
        ("POST", f"{users}/.search", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
        ("PUT", f"{users}/{member_id}", okta_user(f"ada@{tenant.key}.test", given="Eve")),
        ("PATCH", f"{users}/{member_id}", rename),
        ("PATCH", f"{users}/{member_id}", entra_active(False)),
        ("DELETE", f"{users}/{member_id}", None),
        ("GET", f"{tenant.base}/ServiceProviderConfig", None),
        ("GET", f"{tenant.base}/Schemas", None),
        ("GET", f"{tenant.base}/Groups", None),
    ]


async def _member(db: Database, member_id: str) -> tuple[Any, ...]:
    async with db.reading() as session:
        row = (
            await session.execute(
                select(Member.display_name, Member.active, Member.deleted_at, Member.version).where(
                    Member.id == member_id
                )
            )
        ).one()
    return tuple(row)


async def test_every_request_is_refused_while_disabled_and_served_again_once_enabled(
    db: Database, client: httpx.AsyncClient
) -> None:
    tenant = await make_tenant(db)
    neighbour = await make_tenant(db, "Globex")
    created = await client.post(
        f"{tenant.base}/Users", json=okta_user(f"ada@{tenant.key}.test"), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    member_id = created.json()["id"]
    before = await _member(db, member_id)

    await disable(db, tenant.key)
    for method, path, body in _requests(tenant, member_id):
        r = await client.request(method, path, json=body, headers=tenant.headers)
        assert r.status_code == 403, (method, path, r.text)
        error = r.json()
        assert error["schemas"] == [ERROR] and error["status"] == "403", error
        assert "This workspace is disabled" in error["detail"] and "credentials are valid" in error["detail"]
        assert "www-authenticate" not in r.headers  # not a credentials problem
    assert await _member(db, member_id) == before  # nothing was changed
    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        count = await session.scalar(select(func.count()).where(Member.workspace_id == ws.id))
    assert ws.scim_enabled is True and ws.member_count == 1 and count == 1  # kept as it was

    # A caller without the workspace's credentials learns nothing, disabled or not.
    stranger = await client.get(f"{tenant.base}/Users", headers={"Authorization": "Bearer pvs_not-a-token"})
    assert stranger.status_code == 401 and "disabled" not in stranger.text
    # The neighbour is served as ever.
    users = f"{neighbour.base}/Users"
    assert (await client.get(users, headers=neighbour.headers)).status_code == 200
    made = await client.post(users, json=okta_user(f"ada@{neighbour.key}.test"), headers=neighbour.headers)
    assert made.status_code == 201, made.text

    await enable(db, tenant.key)
    r = await client.get(f"{tenant.base}/Users/{member_id}", headers=tenant.headers)
    assert r.status_code == 200 and r.json()["userName"] == f"ada@{tenant.key}.test"
    r = await client.patch(
        f"{tenant.base}/Users/{member_id}", json=entra_active(False), headers=tenant.headers
    )
    assert r.status_code == 200 and r.json()["active"] is False


async def test_refusals_are_counted_in_the_log_and_mail_nobody(
    db: Database, client: httpx.AsyncClient
) -> None:
    tenant = await make_tenant(db)
    await disable(db, tenant.key)
    for _ in range(3):
        r = await client.get(f"{tenant.base}/Users", headers=tenant.headers)
        assert r.status_code == 403
    body = okta_user(f"ada@{tenant.key}.test")
    for _ in range(2):
        r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
        assert r.status_code == 403

    async with db.reading() as session:
        found = await provisioning_log.page(session, tenant.id, provisioning_log.LogFilter.parse(), limit=50)
        state = await session.get(NotificationState, tenant.id)
    # Counted on one row per minute (two, should the requests straddle one), not one row per request.
    totals: dict[tuple[str, int], int] = {}
    for event in found.events:
        totals[(event.action, event.status)] = totals.get((event.action, event.status), 0) + event.repeats
    assert totals == {("list", 403): 3, ("create", 403): 2}
    assert len(found.events) <= 4
    for event in found.events:
        assert event.outcome == "failure" and event.credential and event.credential.startswith("bearer:")
        assert event.request_body is None and event.member_id is None and event.user_name is None
        assert "This workspace is disabled" in (event.detail or "")
    assert state is None  # the admins are not mailed about a workspace their provider disabled
