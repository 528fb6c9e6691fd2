"""``provisio apikey create | list | revoke`` as the operator runs them, and the key they print."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from provisio.app import create_app
from provisio.config import Settings
from tests.domain.test_cli import cli, ok


async def test_apikey_create_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ok(cli(url, "db", "upgrade", "--json"))
    created = ok(cli(url, "apikey", "create", "Billing service", "--json"))
    assert set(created) == {"key", "id", "name"}
    assert created["name"] == "Billing service" and created["key"].startswith("pvk_")
    plain = cli(url, "apikey", "create", "Second")
    assert plain.returncode == 0 and "shown only now" in plain.stdout

    listed = ok(cli(url, "apikey", "list", "--json"))["keys"]
    assert [k["name"] for k in listed] == ["Billing service", "Second"]
    first = listed[0]
    assert created["key"].startswith(first["prefix"]) and first["prefix"] != created["key"]
    assert (first["revoked"], first["last_used_at"]) == (False, None)
    assert created["key"] not in json.dumps(listed)

    app = create_app(Settings(database_url=url, base_url="https://scim.example.net", secret_key="s"))
    headers = {"Authorization": f"Bearer {created['key']}"}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        assert (await client.get("/api/v1/workspaces", headers=headers)).status_code == 200
        assert ok(cli(url, "apikey", "list", "--json"))["keys"][0]["last_used_at"] is not None
        revoked = ok(cli(url, "apikey", "revoke", str(created["id"]), "--json"))
        assert (revoked["id"], revoked["revoked"]) == (created["id"], True)
        assert (await client.get("/api/v1/workspaces", headers=headers)).status_code == 401

    assert "revoked" in cli(url, "apikey", "list").stdout
    missing = cli(url, "apikey", "revoke", "999", "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"
    blank = cli(url, "apikey", "create", "  ", "--json")
    assert blank.returncode == 1 and json.loads(blank.stdout)["error"]["code"] == "invalid"
