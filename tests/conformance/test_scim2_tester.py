"""scim2-tester, an independent SCIM checker, against a live server: every check must pass."""

from __future__ import annotations

import asyncio

import pytest

from provisio.db.engine import Database
from tests.conftest import make_tenant
from tests.live_server import live_server

pytestmark = pytest.mark.conformance


def _run_checks(base_url: str, token: str) -> list[tuple[str, str, str]]:
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    client.check_response_content_type = True
    client.check_response_status_codes = True
    results = check_server(client)
    passed = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}
    return [(r.status.name, r.title, str(r.reason)) for r in results if r.status not in passed] + [
        ("COUNT", str(len(results)), "")
    ]


async def test_scim2_tester_passes(database_url: str, db: Database) -> None:
    tenant = await make_tenant(db, "Conformance")
    with live_server(database_url) as server:
        outcome = await asyncio.get_running_loop().run_in_executor(
            None, _run_checks, server.tenant_url(tenant.key), tenant.token
        )
    *failures, (_, total, _) = outcome
    assert int(total) > 50, f"scim2-tester ran only {total} checks"
    assert not failures, "\n".join(f"{s}: {t}: {r}" for s, t, r in failures)
