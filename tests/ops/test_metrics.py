"""/metrics: requests by route template, method and status; provisioning outcomes; a token; off."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.metrics import outbox_gauges
from tests.conftest import Tenant
from tests.ops.apps import outbox_worker, served

SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def _requests(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("provisio_http_request_seconds_count", labels) or 0.0


def _events(operation: str, outcome: str) -> float:
    labels = {"operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("provisio_provisioning_events_total", labels) or 0.0


async def test_requests_are_labelled_by_route_template_and_status(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    route = "/scim/v2/{workspace_key}/Users/{member_id}"
    missing = str(uuid.uuid4())
    before = _requests("GET", route, 404), _requests("GET", route, 401)
    assert (await client.get(f"{tenant.base}/Users/{missing}", headers=tenant.headers)).status_code == 404
    assert (await client.get(f"{tenant.base}/Users/{missing}")).status_code == 401
    assert (_requests("GET", route, 404), _requests("GET", route, 401)) == (before[0] + 1, before[1] + 1)
    text = (await client.get("/metrics")).text
    # Neither the workspace nor the id is a label value anywhere.
    assert tenant.key not in text and missing not in text
    assert 'provisio_http_requests_total{method="GET",route="' + route + '",status="404"}' in text


async def test_paths_no_route_serves_share_one_label(client: httpx.AsyncClient) -> None:
    before = _requests("GET", "unmatched", 404)
    token = uuid.uuid4().hex
    for path in (f"/nothing/{token}", f"/{token}", f"/console-{token}/x?y={token}"):
        assert (await client.get(path)).status_code == 404
    assert _requests("GET", "unmatched", 404) == before + 3
    assert token not in (await client.get("/metrics")).text


async def test_made_up_methods_share_one_label(client: httpx.AsyncClient) -> None:
    before = _requests("OTHER", "/healthz", 405)
    for method in ("FROBNICATE", "X-" + uuid.uuid4().hex):
        assert (await client.request(method, "/healthz")).status_code == 405
    assert _requests("OTHER", "/healthz", 405) == before + 2


async def test_metrics_route_is_labelled_as_itself(client: httpx.AsyncClient) -> None:
    before = _requests("GET", "/metrics", 200)
    await client.get("/metrics")
    assert _requests("GET", "/metrics", 200) == before + 1


async def test_provisioning_outcomes_by_operation(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = {**tenant.headers, "Content-Type": SCIM}
    user = {"schemas": [USER_SCHEMA], "userName": f"ops-{uuid.uuid4().hex[:8]}@{tenant.key}.test"}
    before = {
        key: _events(*key)
        for key in [("create", "success"), ("create", "failure"), ("patch", "success"), ("delete", "success")]
    }

    created = await client.post(f"{tenant.base}/Users", json=user, headers=headers)
    assert created.status_code == 201, created.text
    duplicate = await client.post(f"{tenant.base}/Users", json=user, headers=headers)
    assert duplicate.status_code == 409
    member = created.json()["id"]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ops Person"}],
    }
    patched = await client.patch(f"{tenant.base}/Users/{member}", json=patch, headers=headers)
    assert patched.status_code == 200, patched.text
    assert (await client.delete(f"{tenant.base}/Users/{member}", headers=headers)).status_code == 204
    # Refused credentials on the workspace's Tenant URL are a logged failure; on an unknown workspace
    # nothing is logged, so nothing is counted.
    assert (await client.post(f"{tenant.base}/Users", json=user)).status_code == 401
    unknown = tenant.base.replace(tenant.key, f"no-such-{uuid.uuid4().hex[:8]}")
    assert (await client.post(f"{unknown}/Users", json=user, headers=headers)).status_code == 401

    after = {key: _events(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("create", "success"): 1,
        ("create", "failure"): 2,
        ("patch", "success"): 1,
        ("delete", "success"): 1,
    }


async def test_token_protects_metrics(settings: Settings) -> None:
    token = "scrape-" + uuid.uuid4().hex
    async with served(settings.model_copy(update={"metrics_token": token})) as (_app, client):
        missing = await client.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "provisio_" not in missing.text
        for wrong in (f"Bearer {token}x", f"Bearer {token[:-1]}", f"Basic {token}", token, "Bearer "):
            assert (await client.get("/metrics", headers={"Authorization": wrong})).status_code == 401
        for right in (f"Bearer {token}", f"bearer {token}"):
            scraped = await client.get("/metrics", headers={"Authorization": right})
            assert scraped.status_code == 200
            assert "provisio_http_request_seconds_bucket" in scraped.text
        # The token guards /metrics only.
        assert (await client.get("/healthz")).status_code == 200


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    async with served(settings.model_copy(update={"metrics_enabled": False})) as (_app, client):
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


async def test_scrape_hooks_set_outbox_gauges(settings: Settings) -> None:
    seen: list[Database] = []

    async def report(db: Database) -> dict[str, Any]:
        seen.append(db)
        return {"depth": 17, "oldest_due_age_seconds": 42.5, "last_heartbeat_age_seconds": 1.0}

    async def broken(_db: Database) -> None:
        raise RuntimeError("cannot read")

    async with served(settings) as (app, client):
        # A hook that fails does not spoil the scrape; the others still run.
        app.state.scrape_hooks[:] = [broken, outbox_gauges(report)]
        scraped = await client.get("/metrics")
        assert scraped.status_code == 200
        assert "provisio_outbox_depth 17.0" in scraped.text
        assert "provisio_outbox_oldest_age_seconds 42.5" in scraped.text
        assert seen == [app.state.db]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_health_probes_are_not_rate_limited(
    db: Database, settings: Settings, tmp_path: Path, method: str
) -> None:
    tight = settings.model_copy(update={"scim_rate_limit_per_second": 1, "scim_rate_limit_burst": 1})
    async with outbox_worker(db, settings, tmp_path), served(tight) as (_app, client):
        for _ in range(20):
            for path in ("/healthz", "/readyz"):
                assert (await client.request(method, path)).status_code == 200
