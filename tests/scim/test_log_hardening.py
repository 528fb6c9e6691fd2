"""The provisioning log never changes the answer an IdP gets (deeply nested bodies, a log that fails to
write), never keeps a password whatever the case of its keys, and counts only failures it wrote."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import select

from provisio.db.engine import Database
from provisio.db.models import ProvisioningEvent
from provisio.domain import events
from provisio.scim import request_log
from tests.conftest import Tenant
from tests.domain.helpers import okta_user

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SECRET = "hunter2-Qz7"


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def _email(tenant: Tenant) -> str:
    return f"deep-{uuid.uuid4().hex[:6]}@{tenant.key}.test"


async def _events(db: Database, workspace_id: str) -> list[ProvisioningEvent]:
    async with db.reading() as session:
        found = await session.scalars(
            select(ProvisioningEvent)
            .where(ProvisioningEvent.workspace_id == workspace_id)
            .order_by(ProvisioningEvent.id)
        )
        return list(found.all())


async def test_a_deep_patch_value_gets_the_handlers_scim_error(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    created = await client.post(
        f"{tenant.base}/Users", json=okta_user(_email(tenant)), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "nosuchattr", "value": _nested(300)}],
    }
    r = await client.patch(f"{tenant.base}/Users/{created.json()['id']}", json=patch, headers=tenant.headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/scim+json")
    assert r.json()["scimType"] in {"invalidPath", "invalidValue", "noTarget"}
    rows = await _events(db, tenant.id)
    assert [(e.action, e.status) for e in rows] == [("create", 201), ("patch", 400)]
    assert rows[1].request_body and events.TOO_DEEP in rows[1].request_body


async def test_a_deep_extension_value_on_create_gets_a_scim_answer(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    body = okta_user(_email(tenant)) | {"urn:example:ext": {"deep": _nested(300)}}
    r = await client.post(f"{tenant.base}/Users", json=body, headers=tenant.headers)
    assert r.status_code == 400, r.text
    assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    rows = await _events(db, tenant.id)
    assert [(e.action, e.status) for e in rows] == [("create", 400)]
    # Deep enough for Python's recursion limit too: still an answer, the body kept up to the depth.
    r = await client.post(
        f"{tenant.base}/Users",
        json=okta_user(_email(tenant)) | {"urn:example:ext": {"deep": _nested(900)}},
        headers=tenant.headers,
    )
    assert r.status_code == 400, r.text


def test_redaction_never_raises() -> None:
    assert events.TOO_DEEP in (events.redact_body(_nested(300)) or "")
    assert events.TOO_DEEP in (events.redact_body(_nested(5000)) or "")
    assert events.redact_body({"n": 2**70}) == events.BODY_NOT_KEPT  # beyond what orjson writes


async def test_a_log_that_raises_does_not_change_the_answer(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("log broken")

    monkeypatch.setattr(request_log, "redact_body", broken)
    r = await client.get(f"{tenant.base}/Users/{uuid.uuid4()}", headers=tenant.headers)
    assert r.status_code == 404 and r.json()["status"] == "404"


def _failures_counted(operation: str) -> float:
    labels = {"operation": operation, "outcome": "failure"}
    return REGISTRY.get_sample_value("provisio_provisioning_events_total", labels) or 0.0


async def test_a_failure_not_written_is_not_counted(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _failures_counted("get")
    assert (
        await client.get(f"{tenant.base}/Users/{uuid.uuid4()}", headers=tenant.headers)
    ).status_code == 404
    assert _failures_counted("get") == before + 1

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("log table unavailable")

    monkeypatch.setattr(events, "_write_failure", broken)
    assert (
        await client.get(f"{tenant.base}/Users/{uuid.uuid4()}", headers=tenant.headers)
    ).status_code == 404
    assert _failures_counted("get") == before + 1


async def test_capitalised_patch_keys_are_redacted(
    client: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    created = await client.post(
        f"{tenant.base}/Users", json=okta_user(_email(tenant)), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "Path": "password", "Value": SECRET},
            {"Op": "replace", "value": {"PassWord": SECRET}},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": SECRET},
            {"op": "replace", "PATH": "displayName", "VALUE": "Ada L."},
        ],
    }
    r = await client.patch(f"{tenant.base}/Users/{created.json()['id']}", json=patch, headers=tenant.headers)
    assert r.status_code == 200, r.text
    rows = await _events(db, tenant.id)
    assert [(e.action, e.status) for e in rows] == [("create", 201), ("patch", 200)]
    assert rows[1].request_body and SECRET not in rows[1].request_body
    assert "Ada L." in rows[1].request_body


def test_secret_key_names_in_any_case() -> None:
    body = {"PassWord": SECRET, "a": [{"clientSecret": SECRET, "ACCESS_TOKEN": SECRET, "keep": "ok"}]}
    text = events.redact_body(body) or ""
    assert SECRET not in text and '"keep":"ok"' in text


_SECRET_KEYS = st.sampled_from(
    ["password", "PassWord", "PASSWORD", "userPassword", "clientSecret", "access_token", "apiKey", "passwd"]
)
_PATH_SPELLINGS = st.sampled_from(["path", "Path", "PATH", "pAtH"])
_VALUE_SPELLINGS = st.sampled_from(["value", "Value", "VALUE", "vAlUe"])
_SECRET_PATHS = st.sampled_from(
    ["password", "Password", "urn:ietf:params:scim:schemas:core:2.0:User:password", "x:User:PASSWORD"]
)
# Text that cannot contain the secret (no digits), so finding it means it leaked.
_TEXT = st.text(alphabet=st.characters(categories=["L", "P", "Zs"]), max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)


@st.composite
def _with_secret(draw: st.DrawFn) -> Any:
    """A JSON body with the secret placed, at some depth, under a secret's name or as a PATCH
    operation's value for a secret's path, the keys spelled in any case."""
    secret_value = draw(st.sampled_from([SECRET, [SECRET], {"x": SECRET}]))
    holder = draw(
        st.one_of(
            st.builds(lambda k: {k: secret_value}, _SECRET_KEYS),
            st.builds(
                lambda p, path, v: {"op": "replace", p: path, v: secret_value},
                _PATH_SPELLINGS,
                _SECRET_PATHS,
                _VALUE_SPELLINGS,
            ),
        )
    )
    extra = draw(st.dictionaries(_TEXT, _JSON, max_size=3))
    value: Any = extra | holder
    for wrap in draw(st.lists(st.sampled_from(["list", "dict"]), max_size=40)):
        value = [value, draw(_JSON)] if wrap == "list" else {draw(_TEXT): value}
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_with_secret())
def test_no_body_with_a_password_ever_keeps_it(body: Any) -> None:
    text = events.redact_body(body, cap=1_000_000)
    assert text is not None and SECRET not in text
