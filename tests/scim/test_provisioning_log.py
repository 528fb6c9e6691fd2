"""Every SCIM request that changes state and every failed one is in the provisioning log, with its
request id, credential, status, scimType, detail, duration and redacted body; repeated refusals are
counted on one row; a log that cannot be written never fails the request."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent, ScimToken
from provisio.domain import events
from provisio.domain import members as member_service
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from tests.conftest import Tenant
from tests.domain.helpers import okta_user

SECRET = "Sup3r-s3cret-passw0rd"


async def _events(db: Database, workspace_id: str) -> list[ProvisioningEvent]:
    async with db.reading() as session:
        found = await session.scalars(
            select(ProvisioningEvent)
            .where(ProvisioningEvent.workspace_id == workspace_id)
            .order_by(ProvisioningEvent.id)
        )
        return list(found.all())


async def _only(db: Database, tenant: Tenant) -> ProvisioningEvent:
    found = await _events(db, tenant.id)
    assert len(found) == 1, [(e.action, e.status) for e in found]
    return found[0]


def _email(tenant: Tenant, local: str = "ada") -> str:
    return f"{local}-{uuid.uuid4().hex[:6]}@{tenant.key}.test"


async def test_a_create_is_logged_with_its_request(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    email = _email(tenant)
    body = okta_user(email) | {"password": SECRET}
    r = await client.post(
        f"{tenant.base}/Users", json=body, headers=tenant.headers | {"User-Agent": "Okta SCIM Client 1.0"}
    )
    assert r.status_code == 201, r.text
    event = await _only(db, tenant)
    async with db.reading() as session:
        token = await session.scalar(select(ScimToken).where(ScimToken.workspace_id == tenant.id))
    assert token is not None
    assert (event.action, event.outcome, event.status, event.user_name) == ("create", "success", 201, email)
    assert event.member_id == r.json()["id"]
    assert event.request_id == r.headers["x-request-id"]
    assert event.credential == f"bearer:{token.id}"
    assert event.user_agent == "Okta SCIM Client 1.0"
    assert event.duration_ms is not None and event.duration_ms >= 0
    assert event.repeats == 1 and event.last_at is None
    assert event.request_body and email in event.request_body
    assert SECRET not in event.request_body and "password" not in event.request_body


async def test_successful_reads_are_not_logged(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    r = await client.post(f"{tenant.base}/Users", json=okta_user(_email(tenant)), headers=tenant.headers)
    member_id = r.json()["id"]
    for path in ("/Users", f"/Users/{member_id}", "/ServiceProviderConfig", "/Schemas"):
        assert (await client.get(tenant.base + path, headers=tenant.headers)).status_code == 200
    assert [e.action for e in await _events(db, tenant.id)] == ["create"]


async def test_a_bad_token_is_one_401_event(client: httpx.AsyncClient, db: Database, tenant: Tenant) -> None:
    r = await client.post(
        f"{tenant.base}/Users", json=okta_user(_email(tenant)), headers={"Authorization": "Bearer guessed"}
    )
    assert r.status_code == 401
    event = await _only(db, tenant)
    assert (event.action, event.outcome, event.status) == ("create", "failure", 401)
    assert event.detail == r.json()["detail"]
    assert event.actor == "unknown credential" and event.credential is None
    assert event.request_id == r.headers["x-request-id"]
    assert event.request_body is None and event.user_name is None  # a stranger's body is not kept
    assert event.repeats == 1 and event.last_at == event.at


async def test_a_revoked_token_is_named(client: httpx.AsyncClient, db: Database, tenant: Tenant) -> None:
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, tenant.key)
        token = await session.scalar(select(ScimToken).where(ScimToken.workspace_id == tenant.id))
        assert token is not None
        assert await token_service.revoke_token(session, ws, token.id)
    r = await client.get(f"{tenant.base}/Users", headers=tenant.headers)
    assert r.status_code == 401
    event = await _only(db, tenant)
    assert (event.action, event.status) == ("list", 401)
    assert event.credential == f"bearer:{token.id}"
    assert event.actor.endswith("(revoked)")


async def test_an_unknown_workspace_writes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.get(
        f"/scim/v2/no-such-{uuid.uuid4().hex[:8]}/Users", headers={"Authorization": "Bearer x"}
    )
    assert r.status_code == 401
    async with db.reading() as session:
        found = await session.scalar(
            select(ProvisioningEvent.id).where(ProvisioningEvent.request_id == r.headers["x-request-id"])
        )
    assert found is None


async def test_bad_tokens_are_counted_on_one_row(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    for i in range(100):
        r = await client.get(f"{tenant.base}/Users", headers={"Authorization": f"Bearer flood-{i}"})
        assert r.status_code == 401
    rows = await _events(db, tenant.id)
    # One row per minute: two when the flood straddles one.
    assert 1 <= len(rows) <= 2 and sum(e.repeats for e in rows) == 100
    assert {(e.action, e.status, e.actor) for e in rows} == {("list", 401, "unknown credential")}
    assert all(e.last_at is not None and e.last_at >= e.at for e in rows)


async def test_an_invalid_value_is_a_400_event(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    body = {"schemas": [okta_user("x@y.z")["schemas"][0]], "name": {"givenName": "Ada"}, "password": SECRET}
    r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
    assert r.status_code == 400
    event = await _only(db, tenant)
    assert (event.action, event.outcome, event.status, event.scim_type) == (
        "create",
        "failure",
        400,
        "invalidValue",
    )
    assert event.detail == r.json()["detail"]
    assert event.request_body is not None and "Ada" in event.request_body and SECRET not in event.request_body


async def test_a_uniqueness_conflict_is_a_409_event(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    email = _email(tenant)
    assert (
        await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
    ).status_code == 201
    r = await client.post(f"{tenant.base}/Users", json=okta_user(email), headers=tenant.headers)
    assert r.status_code == 409
    failed = [e for e in await _events(db, tenant.id) if e.outcome == "failure"]
    assert [(e.action, e.status, e.scim_type, e.user_name) for e in failed] == [
        ("create", 409, "uniqueness", email)
    ]
    assert failed[0].detail == r.json()["detail"]


async def test_a_missing_member_is_a_404_event(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    missing = str(uuid.uuid4())
    r = await client.patch(
        f"{tenant.base}/Users/{missing}",
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
        headers=tenant.headers,
    )
    assert r.status_code == 404
    r = await client.get(f"{tenant.base}/Users/{missing}", headers=tenant.headers)
    assert r.status_code == 404
    rows = await _events(db, tenant.id)
    assert [(e.action, e.status, e.member_id) for e in rows] == [
        ("patch", 404, missing),
        ("get", 404, missing),
    ]


async def test_a_server_fault_is_a_500_event(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(member_service, "create_member", broken)
    r = await client.post(f"{tenant.base}/Users", json=okta_user(_email(tenant)), headers=tenant.headers)
    assert r.status_code == 500
    event = await _only(db, tenant)
    assert (event.action, event.status, event.outcome) == ("create", 500, "failure")
    assert event.detail == r.json()["detail"] and "disk on fire" not in (event.detail or "")


async def test_passwords_are_dropped_at_any_depth(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    created = await client.post(
        f"{tenant.base}/Users", json=okta_user(_email(tenant)) | {"password": SECRET}, headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    # Refused (an extension not listed in schemas), and logged with its body: secrets removed all the same.
    body = okta_user(_email(tenant)) | {
        "urn:example:ext": {
            "nested": [{"userPassword": SECRET, "apiToken": SECRET}],
            "note": f"Bearer {SECRET}",
        },
    }
    assert (await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)).status_code == 400
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "password", "value": SECRET},
            {"op": "replace", "value": {"password": SECRET, "displayName": "Ada L."}},
        ],
    }
    r = await client.patch(f"{tenant.base}/Users/{created.json()['id']}", json=patch, headers=tenant.headers)
    assert r.status_code == 200, r.text
    rows = await _events(db, tenant.id)
    assert [(e.action, e.status) for e in rows] == [("create", 201), ("create", 400), ("patch", 200)]
    for event in rows:
        assert event.request_body and SECRET not in event.request_body
    assert "nested" in (rows[1].request_body or "")
    assert "Ada L." in (rows[2].request_body or "") and events.REDACTED in (rows[2].request_body or "")


async def test_a_long_body_is_cut_and_says_so(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    body = okta_user(_email(tenant)) | {"title": "x" * 10_000}
    assert (await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)).status_code == 201
    event = await _only(db, tenant)
    assert event.request_body is not None
    assert len(event.request_body) < events.BODY_CAP + 100 and "[cut:" in event.request_body


async def test_a_log_that_cannot_be_written_does_not_fail_the_request(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("log table unavailable")

    monkeypatch.setattr(events, "_write_failure", broken)
    r = await client.get(f"{tenant.base}/Users/{uuid.uuid4()}", headers=tenant.headers)
    assert r.status_code == 404 and r.json()["status"] == "404"
    r = await client.get(f"{tenant.base}/Users", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert await _events(db, tenant.id) == []


def test_redaction_rules() -> None:
    body = {
        "password": "p",
        "a": [{"b": {"clientSecret": "s", "keep": "=1+1"}}, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"],
        "Operations": [{"op": "add", "path": "urn:x:User:password", "value": "p2"}],
    }
    text = events.redact_body(body)
    assert text is not None
    assert '"p"' not in text and "clientSecret" not in text and "eyJhbGci" not in text and "p2" not in text
    assert '"keep":"=1+1"' in text
    assert events.redact_body(None) is None
