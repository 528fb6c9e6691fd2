"""``provisio workspace disable`` and ``enable``: what the host application's API does, from the command
line, with the same refusals of every other command that would change a disabled workspace."""

from __future__ import annotations

import httpx

from provisio.db.engine import Database
from tests.domain.helpers import okta_user
from tests.domain.test_cli import cli, fails, ok, unique_key


async def test_disable_refuses_changes_and_enable_restores(
    database_url: str, client: httpx.AsyncClient, db: Database
) -> None:
    key = unique_key("churned")
    ok(cli(database_url, "workspace", "create", "Churned Co", "--key", key, "--seats", "5", "--json"))
    ok(cli(database_url, "domain", "add", key, f"{key}.test", "--verified", "--json"))
    token = ok(cli(database_url, "scim", "configure", key, "--method", "bearer", "--json"))["token"]
    headers = {"Authorization": f"Bearer {token}"}

    disabled = ok(cli(database_url, "workspace", "disable", key, "--json"))
    assert disabled["key"] == key and disabled["disabled"] is True and disabled["changed"] is True
    assert disabled["disabled_at"]
    again = ok(cli(database_url, "workspace", "disable", key, "--json"))
    assert again["changed"] is False and again["disabled_at"] == disabled["disabled_at"]
    human = cli(database_url, "workspace", "disable", key)
    assert human.returncode == 0 and "already disabled" in human.stdout

    # (The API's and the console's tests go through every service; these are the CLI's own paths.)
    for args in (
        ("workspace", "update", key, "--name", "Renamed"),
        ("seats", "set", key, "--purchased", "9"),
        ("domain", "verify", key, f"{key}.test"),
        ("scim", "configure", key, "--method", "client_credentials"),
    ):
        assert "is disabled" in fails(cli(database_url, *args, "--json"), "conflict"), args
    r = await client.post(f"/scim/v2/{key}/Users", json=okta_user(f"ada@{key}.test"), headers=headers)
    assert r.status_code == 403

    enabled = ok(cli(database_url, "workspace", "enable", key, "--json"))
    assert (enabled["disabled"], enabled["disabled_at"], enabled["changed"]) == (False, None, True)
    assert ok(cli(database_url, "workspace", "enable", key, "--json"))["changed"] is False
    r = await client.post(f"/scim/v2/{key}/Users", json=okta_user(f"ada@{key}.test"), headers=headers)
    assert r.status_code == 201, r.text  # the same token, SCIM still on
    renamed = ok(cli(database_url, "workspace", "update", key, "--name", "Renamed", "--json"))
    assert renamed["name"] == "Renamed"
    unknown = cli(database_url, "workspace", "disable", f"nope-{key}", "--json")
    assert "No workspace" in fails(unknown, "not_found")
