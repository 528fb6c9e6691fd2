"""The operator CLI (`--json` output), what `provisio serve` prints, and the refusal to serve an
un-migrated database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.migrate import NotMigrated, upgrade
from tests.live_server import free_port

# The package under test, whichever copy the interpreter would otherwise import.
SRC = str(Path(__file__).resolve().parent.parent / "src")


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisio.cli", *args],
        env={
            "PROVISIO_DATABASE_URL": db_url,
            "PROVISIO_BASE_URL": "https://scim.example.net",
            "PATH": "",
            "PYTHONPATH": SRC,
        },
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

    # SCIM is off until a domain is verified; then `scim configure` turns it on.
    assert cli(url, "domain", "add", "acme-inc", "acme.test", "--verified", "--json").returncode == 0
    assert cli(url, "scim", "configure", "acme-inc", "--method", "bearer", "--json").returncode == 0
    issued = cli(url, "token", "create", "acme-inc", "--json")
    assert issued.returncode == 0, issued.stderr
    tok = json.loads(issued.stdout)
    assert tok["token"].startswith("pvs_") and tok["tenant_url"] == ws["tenant_url"]

    listed = json.loads(cli(url, "token", "list", "acme-inc", "--json").stdout)
    assert [t["id"] for t in listed["tokens"]][-1] == tok["id"]
    assert tok["token"] not in json.dumps(listed)  # only hashes are stored
    assert json.loads(cli(url, "token", "revoke", "acme-inc", tok["id"], "--json").stdout) == {
        "revoked": True,
        "id": tok["id"],
    }

    recount = cli(url, "db", "recount", "--json")
    assert recount.returncode == 0, recount.stderr
    assert json.loads(recount.stdout) == {"corrected_workspaces": []}

    dup = cli(url, "workspace", "create", "Acme Inc", "--key", "acme-inc", "--json")
    # With --json an error is JSON on stdout too, with a non-zero exit status.
    assert dup.returncode == 1 and "already exists" in json.loads(dup.stdout)["error"]["message"]
    missing = cli(url, "token", "create", "nope", "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout) == {
        "error": {"code": "not_found", "message": "No workspace with key 'nope'."}
    }


async def test_server_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", secret_key="x"))
    with pytest.raises(NotMigrated, match="provisio db upgrade"):
        async with app.router.lifespan_context(app):
            pass


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "provisio_http_requests_total" in metrics.text


def test_upgrade_turns_scim_off_where_no_domain_is_verified(tmp_path: Path) -> None:
    """Workspaces made before SCIM needed a verified domain had it on; the upgrade makes them agree.
    Rows as the schema before that upgrade stored them (plain SQL: the models are newer)."""
    import sqlite3

    path = tmp_path / "old.db"
    upgrade(f"sqlite:///{path}", "0009")
    with sqlite3.connect(path) as conn:
        for key in ("bare", "claimed", "verified"):
            conn.execute(
                "INSERT INTO workspaces (id, key, name, created_at) VALUES (?, ?, ?, '2026-01-01 00:00:00')",
                (key, key, key),
            )
        for ws, verified_at in (("claimed", None), ("verified", "2026-01-01 00:00:00")):
            conn.execute(
                "INSERT INTO workspace_domains (id, workspace_id, domain, verification_code, created_at, "
                "verified_at) VALUES (?, ?, ?, 'c', '2026-01-01 00:00:00', ?)",
                (ws, ws, f"{ws}.test", verified_at),
            )
        assert conn.execute("SELECT count(*) FROM workspaces WHERE scim_enabled").fetchone() == (3,)
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        states = dict(conn.execute("SELECT key, scim_enabled FROM workspaces").fetchall())
    assert states == {"bare": 0, "claimed": 0, "verified": 1}


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_prints_one_line_and_root_leads_to_the_console(tmp_path: Path, workers: int) -> None:
    """`provisio serve` says where it listens, in one line on stdout, and nothing else (no uvicorn
    start-up lines, no Alembic lines from the schema check), with the default log level."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    upgrade(url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIO_")}
    env |= {"PROVISIO_DATABASE_URL": url, "PROVISIO_SECRET_KEY": "serve-test-secret"}
    command = [sys.executable, "-m", "provisio.cli", "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "provisio did not start in time"
            time.sleep(0.1)
        root = httpx.get(f"{base}/", timeout=5.0)
        assert root.status_code == 303 and root.headers["location"] == "/console/"
        assert httpx.head(f"{base}/", timeout=5.0).status_code == 303
        assert httpx.get(f"{base}/", timeout=5.0, follow_redirects=True).url.path == "/console/login"
    finally:
        process.terminate()
        out, err = process.communicate(timeout=20)
    assert out == f"provisio listening on {base}\n", (out, err)
    for chatter in ("Context impl", "alembic", "Uvicorn running", "Started server process", "startup"):
        assert chatter not in err, err
