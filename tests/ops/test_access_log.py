"""One access-log line per request: method, route template, status, duration and request id, and
nothing a client sent that could be a credential (paths, query strings, headers, bodies)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import structlog

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from tests.conftest import Tenant
from tests.ops.apps import client_of, outbox_worker


@asynccontextmanager
async def logging_app(
    settings: Settings, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, io.StringIO]]:
    """An app that logs at INFO, as in production, its JSON lines written to a buffer: the app's own
    renderer and processors, only the stream replaced (and not cached by loggers, so that the others
    tests' configuration comes back whole afterwards)."""
    saved = structlog.get_config()
    buffer = io.StringIO()
    try:
        app = create_app(settings.model_copy(update={"log_level": "INFO", "log_json": True, **overrides}))
        structlog.configure(
            logger_factory=structlog.PrintLoggerFactory(buffer), cache_logger_on_first_use=False
        )
        async with app.router.lifespan_context(app), client_of(app) as client:
            yield client, buffer
    finally:
        structlog.configure(**saved)


def access_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == "http.request"]


async def test_one_line_per_request_with_its_fields(settings: Settings, tenant: Tenant) -> None:
    async with logging_app(settings) as (client, buffer):
        missing = str(uuid.uuid4())
        response = await client.get(f"{tenant.base}/Users/{missing}", headers=tenant.headers)
        assert response.status_code == 404
        [line] = access_lines(buffer)
    assert set(line) == {
        "event",
        "method",
        "route",
        "status",
        "duration_ms",
        "request_id",
        "level",
        "timestamp",
    }
    assert line["method"] == "GET"
    assert line["route"] == "/scim/v2/{workspace_key}/Users/{member_id}"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["level"] == "info"


async def test_a_proxys_request_id_is_in_the_line(settings: Settings) -> None:
    async with logging_app(settings) as (client, buffer):
        response = await client.get("/console/login", headers={"X-Request-Id": "lb-7:trace-99"})
        assert response.headers["x-request-id"] == "lb-7:trace-99"
        [line] = access_lines(buffer)
    assert (line["route"], line["request_id"]) == ("/console/login", "lb-7:trace-99")


async def test_no_credential_reaches_the_log(settings: Settings, tenant: Tenant) -> None:
    query_secret = "qs-" + uuid.uuid4().hex
    form_secret = "form-" + uuid.uuid4().hex
    path_secret = "path-" + uuid.uuid4().hex
    async with logging_app(settings) as (client, buffer):
        listed = await client.get(
            f"{tenant.base}/Users",
            params={"filter": f'userName eq "{query_secret}"', "access_token": query_secret},
            headers={**tenant.headers, "Cookie": f"provisio_session={form_secret}"},
        )
        assert listed.status_code == 200, listed.text
        token = await client.post(
            f"/oauth/token?client_secret={query_secret}",
            data={"grant_type": "client_credentials", "client_id": "x", "client_secret": form_secret},
            headers={"Authorization": f"Bearer {tenant.token}"},
        )
        assert token.status_code in (400, 401)
        assert (await client.get(f"/reset/{path_secret}?token={query_secret}")).status_code == 404
        text = buffer.getvalue()
        lines = access_lines(buffer)
    assert [(line["method"], line["route"]) for line in lines] == [
        ("GET", "/scim/v2/{workspace_key}/Users"),
        ("POST", "/oauth/token"),
        ("GET", "unmatched"),
    ]
    for secret in (tenant.token, query_secret, form_secret, path_secret, tenant.key, "Bearer", "?"):
        assert secret not in text


async def test_probes_are_logged_only_when_they_fail(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    async with (
        outbox_worker(db, settings, tmp_path),
        logging_app(settings, metrics_token=token) as (
            client,
            buffer,
        ),
    ):
        for _ in range(3):
            await client.get("/healthz")
            await client.head("/healthz")
            await client.get("/readyz")
            await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert access_lines(buffer) == []
        assert (await client.get("/metrics")).status_code == 401
        [line] = access_lines(buffer)
    assert (line["route"], line["status"]) == ("/metrics", 401)


async def test_the_access_log_can_be_turned_off(settings: Settings, tenant: Tenant) -> None:
    async with logging_app(settings, access_log=False) as (client, buffer):
        await client.get(f"{tenant.base}/Users", headers=tenant.headers)
        await client.get("/console/login")
        assert access_lines(buffer) == []


def test_log_lines_render_what_orjson_refuses() -> None:
    from provisio.logging import _dumps

    assert json.loads(_dumps({"n": 1, "big": 2**70, 3: "x"}, default=repr)) == {
        "n": 1,
        "big": 2**70,
        "3": "x",
    }
    assert json.loads(_dumps({"o": object}, default=lambda o: "fallback")) == {"o": "fallback"}
