"""The operator CLI (`--json` output) and the refusal to serve an un-migrated database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.migrate import NotMigrated


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisio.cli", *args],
        env={"PROVISIO_DATABASE_URL": db_url, "PROVISIO_BASE_URL": "https://scim.example.net", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_workspace_and_token_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert cli(url, "db", "upgrade", "--json").returncode == 0
    made = cli(url, "workspace", "create", "Acme Inc", "--seats", "5", "--json")
    assert made.returncode == 0, made.stderr
    ws = json.loads(made.stdout)
    assert ws["key"] == "acme-inc" and ws["tenant_url"] == "https://scim.example.net/scim/v2/acme-inc"
    assert set(ws) >= {"id", "key", "tenant_url"}

    issued = cli(url, "token", "create", "acme-inc", "--json")
    assert issued.returncode == 0, issued.stderr
    tok = json.loads(issued.stdout)
    assert tok["token"].startswith("pvs_") and tok["tenant_url"] == ws["tenant_url"]

    listed = json.loads(cli(url, "token", "list", "acme-inc", "--json").stdout)
    assert [t["id"] for t in listed["tokens"]] == [tok["id"]]
    assert tok["token"] not in json.dumps(listed)  # only hashes are stored
    assert json.loads(cli(url, "token", "revoke", "acme-inc", tok["id"], "--json").stdout) == {
        "revoked": True
    }

    recount = cli(url, "db", "recount", "--json")
    assert recount.returncode == 0, recount.stderr
    assert json.loads(recount.stdout) == {"corrected_workspaces": []}

    dup = cli(url, "workspace", "create", "Acme Inc", "--key", "acme-inc", "--json")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    missing = cli(url, "token", "create", "nope", "--json")
    assert missing.returncode == 1 and "No workspace" in missing.stderr


async def test_server_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", secret_key="x"))
    with pytest.raises(NotMigrated, match="provisio db upgrade"):
        async with app.router.lifespan_context(app):
            pass


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "provisio_http_requests_total" in metrics.text
