"""A sign-in link's token never reaches the server's log: the access line names the route template, and
so does the line of a database that could not answer while the link was being opened."""

from __future__ import annotations

import json
import uuid

import pytest
import structlog

from provisio import retry
from provisio.config import Settings
from provisio.db.availability import DatabaseUnavailable
from provisio.db.engine import Database
from provisio.domain import api_keys, portal_links
from provisio.domain import workspaces as workspace_service
from tests.ops.test_access_log import access_lines, logging_app

ALLOW = "https://app.example.com"


async def _link_request(db: Database) -> tuple[str, dict[str, str], dict[str, str]]:
    async with db.writing() as session:
        ws = await workspace_service.create_workspace(session, f"Logs {uuid.uuid4().hex[:6]}")
        issued = await api_keys.create_key(session, "log test")
    body = {"email": f"pat-{uuid.uuid4().hex[:6]}@logs.example", "return_url": f"{ALLOW}/settings"}
    return f"/api/v1/workspaces/{ws.key}/portal-links", body, {"Authorization": f"Bearer {issued.key}"}


async def test_the_token_is_not_logged(settings: Settings, db: Database) -> None:
    path, body, headers = await _link_request(db)
    async with logging_app(settings, portal_return_urls=ALLOW) as (client, buffer):
        made = await client.post(path, json=body, headers=headers)
        assert made.status_code == 201, made.text
        url = made.json()["url"]
        token = url.rsplit("/", 1)[1]
        assert (await client.get(url)).status_code == 303
        assert (await client.get(url)).status_code == 410
        text = buffer.getvalue()
        lines = access_lines(buffer)
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("POST", "/api/v1/workspaces/{key}/portal-links", 201),
        ("GET", "/console/portal/{token}", 303),
        ("GET", "/console/portal/{token}", 410),
    ]
    assert token not in text


async def test_nor_when_the_database_cannot_answer(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, body, headers = await _link_request(db)

    async def lost(*args: object, **kwargs: object) -> None:
        raise DatabaseUnavailable("connection lost", retryable=False)

    async with logging_app(settings, portal_return_urls=ALLOW) as (client, buffer):
        # The module's logger may have cached an earlier test's configuration: one that writes here.
        monkeypatch.setattr(retry, "log", structlog.get_logger("provisio.db"))
        url = (await client.post(path, json=body, headers=headers)).json()["url"]
        token = url.rsplit("/", 1)[1]
        monkeypatch.setattr(portal_links, "open_link", lost)
        r = await client.get(url)
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        text = buffer.getvalue()
    [unavailable] = [
        line for line in map(json.loads, text.splitlines()) if line.get("event") == "http.unavailable"
    ]
    assert unavailable["route"] == "/console/portal/{token}"
    assert token not in text
