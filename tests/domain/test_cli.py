"""The operator CLI for seats, domains and workspace settings (each with --json), the conformance setup it
enables, and the demo's verified example.com."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from provisio.app import create_app
from provisio.config import Settings
from provisio.db.engine import Database
from provisio.domain import seats as seat_service
from provisio.domain import workspaces as workspace_service
from tests.domain.dns_server import txt_server
from tests.domain.helpers import okta_user

# The package under test, whichever copy the interpreter would otherwise import.
SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(db_url: str, *args: str, dns_port: int = 9) -> subprocess.CompletedProcess[str]:
    env = {
        "PROVISIO_DATABASE_URL": db_url,
        "PROVISIO_BASE_URL": "https://scim.example.net",
        "PROVISIO_DNS_NAMESERVERS": "127.0.0.1",
        "PROVISIO_DNS_PORT": str(dns_port),
        "PROVISIO_DNS_TIMEOUT_SECONDS": "2",
        "PATH": "",
        "PYTHONPATH": SRC,
    }
    return subprocess.run(
        [sys.executable, "-m", "provisio.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_seats_domains_and_workspace_update(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ok(cli(url, "db", "upgrade", "--json"))
    ok(cli(url, "workspace", "create", "Acme", "--key", "acme", "--seats", "2", "--json"))

    seats = ok(
        cli(url, "seats", "set", "acme", "--purchased", "5", "--auto-charge", "--max-seats", "8", "--json")
    )
    assert seats == {"workspace": "acme", "purchased": 5, "used": 0, "auto_charge": True, "max_seats": 8}
    seats = ok(cli(url, "seats", "set", "acme", "--no-max-seats", "--no-auto-charge", "--json"))
    assert (seats["purchased"], seats["auto_charge"], seats["max_seats"]) == (5, False, None)
    assert cli(url, "seats", "set", "acme", "--purchased", "-1").returncode == 1
    assert cli(url, "seats", "set", "nope", "--purchased", "1").returncode == 1

    with txt_server() as dns:
        added = ok(cli(url, "domain", "add", "acme", "Corp.Test", "--json"))
        assert added["domain"] == "corp.test" and added["verified"] is False
        assert added["txt_record"].startswith("provisio-verification=")
        # Not published yet: exit 1, the reason says what to publish.
        missing = cli(url, "domain", "verify", "acme", "corp.test", "--json", dns_port=dns.port)
        assert missing.returncode == 1 and added["txt_record"] in json.loads(missing.stdout)["last_error"]
        dns.set_txt("corp.test", added["txt_record"])
        verified = ok(cli(url, "domain", "verify", "acme", "corp.test", "--json", dns_port=dns.port))
        assert verified["verified"] is True and verified["verified_by"] == "dns"

    forced = ok(cli(url, "domain", "add", "acme", "other.test", "--verified", "--json"))
    assert forced["verified"] is True and forced["verified_by"] == "operator"
    listed = ok(cli(url, "domain", "list", "acme", "--json"))
    assert [(d["domain"], d["verified_by"]) for d in listed["domains"]] == [
        ("corp.test", "dns"),
        ("other.test", "operator"),
    ]
    assert ok(cli(url, "domain", "remove", "acme", "other.test", "--json")) == {"removed": "other.test"}
    # The last verified domain stays while SCIM is on.
    ok(cli(url, "scim", "configure", "acme", "--method", "bearer", "--json"))
    last = cli(url, "domain", "remove", "acme", "corp.test")
    assert last.returncode == 1 and "only verified domain" in last.stderr

    updated = ok(
        cli(url, "workspace", "update", "acme", "--name", "Acme Corp", "--allow-other-domains", "--json")
    )
    assert updated == {"key": "acme", "name": "Acme Corp", "allow_other_domains": True}
    updated = ok(cli(url, "workspace", "update", "acme", "--no-allow-other-domains", "--json"))
    assert updated["allow_other_domains"] is False and updated["name"] == "Acme Corp"


async def test_conformance_setup_through_the_cli(tmp_path: Path) -> None:
    """What .ci/conformance does: a throwaway workspace, seats, a verified domain, other domains allowed."""
    url = f"sqlite:///{tmp_path / 'conf.db'}"
    ok(cli(url, "db", "upgrade", "--json"))
    ok(cli(url, "workspace", "create", "Conformance", "--key", "conf", "--seats", "1000", "--json"))
    ok(cli(url, "domain", "add", "conf", "example.com", "--verified", "--json"))
    ok(cli(url, "workspace", "update", "conf", "--allow-other-domains", "--json"))
    ok(cli(url, "scim", "configure", "conf", "--method", "bearer", "--json"))
    token = ok(cli(url, "token", "create", "conf", "--json"))["token"]

    app = create_app(
        Settings(database_url=url, base_url="http://provisio.test", secret_key="x", log_level="WARNING")
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://provisio.test") as client:
            h = {"Authorization": f"Bearer {token}"}
            for email in ("ada@example.com", "bjensen@contoso.com", "x@random-domain.org"):
                r = await client.post("/scim/v2/conf/Users", json=okta_user(email), headers=h)
                assert r.status_code == 201, r.text


async def test_demo_workspace_has_a_verified_example_domain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    for _ in range(2):  # idempotent
        demo = ok(cli(url, "demo", "--json"))
        assert demo["workspace"] == "demo"
    listed = ok(cli(url, "domain", "list", "demo", "--json"))
    assert [(d["domain"], d["verified"], d["verified_by"]) for d in listed["domains"]] == [
        ("example.com", True, "operator")
    ]
    # SCIM is on (it has its verified domain) and the token printed last works, for writes too.
    app = create_app(Settings(database_url=url, base_url="http://provisio.test", secret_key="x"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://provisio.test") as client:
            h = {"Authorization": f"Bearer {demo['token']}"}
            assert (await client.get("/scim/v2/demo/Users", headers=h)).status_code == 200
            r = await client.post("/scim/v2/demo/Users", json=okta_user("ada@example.com"), headers=h)
            assert r.status_code == 201, r.text


def fails(result: subprocess.CompletedProcess[str], code: str, status: int = 1) -> str:
    """A --json failure: one JSON error document on stdout and a non-zero exit status; its message."""
    assert result.returncode == status, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == code, error
    return str(error["message"])


def unique_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_scim_is_on_only_with_a_verified_domain(
    database_url: str, client: httpx.AsyncClient, db: Database
) -> None:
    key = unique_key("beta")
    created = ok(cli(database_url, "workspace", "create", "Beta Co", "--key", key, "--seats", "5", "--json"))
    assert created["scim_enabled"] is False
    # Neither a token nor SCIM itself before a domain is verified; the message names the fix.
    for args in (("token", "create", key), ("scim", "configure", key, "--method", "bearer")):
        message = fails(cli(database_url, *args, "--json"), "invalid")
        assert "needs a verified domain" in message and f"provisio domain add {key}" in message
    # Without --json: the same message on stderr, nothing on stdout.
    human = cli(database_url, "token", "create", key)
    assert human.returncode == 1 and human.stdout == "" and "needs a verified domain" in human.stderr

    domain = f"{key}.test"
    ok(cli(database_url, "domain", "add", key, domain, "--verified", "--json"))
    message = fails(cli(database_url, "token", "create", key, "--json"), "invalid")
    assert "off" in message and f"provisio scim configure {key} --method bearer" in message
    configured = ok(cli(database_url, "scim", "configure", key, "--method", "bearer", "--json"))
    assert configured["enabled"] is True
    token = ok(cli(database_url, "token", "create", key, "--label", "okta", "--json"))["token"]
    h = {"Authorization": f"Bearer {token}"}
    r = await client.post(f"/scim/v2/{key}/Users", json=okta_user(f"ada@{domain}"), headers=h)
    assert r.status_code == 201, r.text

    # The last verified domain cannot go while SCIM is on; the refusal names both ways out.
    message = fails(cli(database_url, "domain", "remove", key, domain, "--json"), "invalid")
    assert "only verified domain" in message and "turn SCIM off" in message


async def test_seats_refuse_less_than_in_use_and_the_ledger_names_who(
    database_url: str, client: httpx.AsyncClient, db: Database
) -> None:
    key = unique_key("seats")
    ok(cli(database_url, "workspace", "create", "Seats Co", "--key", key, "--seats", "1", "--json"))
    ok(cli(database_url, "domain", "add", key, f"{key}.test", "--verified", "--json"))
    token = ok(cli(database_url, "scim", "configure", key, "--method", "bearer", "--json"))["token"]
    h = {"Authorization": f"Bearer {token}"}
    r = await client.post(f"/scim/v2/{key}/Users", json=okta_user(f"ada@{key}.test"), headers=h)
    assert r.status_code == 201, r.text

    message = fails(cli(database_url, "seats", "set", key, "--purchased", "0", "--json"), "invalid")
    assert "1 active members" in message and "cannot go below 1" in message
    assert (
        ok(cli(database_url, "seats", "set", key, "--purchased", "3", "--auto-charge", "--json"))["used"] == 1
    )
    ok(cli(database_url, "seats", "set", key, "--purchased", "1", "--json"))  # down to what is used: fine
    r = await client.post(f"/scim/v2/{key}/Users", json=okta_user(f"bob@{key}.test"), headers=h)
    assert r.status_code == 201, r.text

    async with db.reading() as session:
        ws = await workspace_service.require_workspace(session, key)
        ledger = list(reversed(await seat_service.ledger(session, ws.id)))
    assert [(e.delta, e.seats_after, e.kind, e.actor) for e in ledger] == [
        (1, 1, "purchase", "operator (CLI)"),  # the initial purchase of workspace create --seats 1
        (2, 3, "operator", "operator (CLI)"),
        (-2, 1, "operator", "operator (CLI)"),
        (1, 2, "auto_charge", "bearer token Workspace settings"),  # one seat for one user
    ]


def test_json_errors_revoke_reasons_and_the_key_chosen(database_url: str) -> None:
    name = f"Acme {uuid.uuid4().hex[:8]}"
    first = ok(cli(database_url, "workspace", "create", name, "--json"))
    assert "notice" not in first
    second = ok(cli(database_url, "workspace", "create", name, "--json"))
    assert second["key"] != first["key"] and second["key"].startswith(first["key"] + "-")
    assert (
        second["notice"]
        == f"The key {first['key']!r} is taken, so this workspace's key is {second['key']!r}."
    )
    human = cli(database_url, "workspace", "create", name)
    assert human.returncode == 0 and f"The key {first['key']!r} is taken" in human.stdout

    key = first["key"]
    assert "already exists" in fails(
        cli(database_url, "workspace", "create", name, "--key", key, "--json"), "conflict"
    )
    assert f"No workspace with key 'nope-{key}'" in fails(
        cli(database_url, "token", "list", f"nope-{key}", "--json"), "not_found"
    )
    # Errors of the command line itself: JSON too with --json (exit status 2), usage text without.
    assert "Missing argument" in fails(cli(database_url, "token", "revoke", key, "--json"), "usage", 2)
    assert "No such option" in fails(cli(database_url, "seats", "set", key, "--bogus", "--json"), "usage", 2)
    assert "together" in fails(
        cli(database_url, "workspace", "create", "X", "--admin-email", "a@b.test", "--json"), "usage", 2
    )
    assert "not both" in fails(
        cli(database_url, "seats", "set", key, "--max-seats", "3", "--no-max-seats", "--json"), "usage", 2
    )
    plain = cli(database_url, "token", "revoke", key)
    assert plain.returncode == 2 and plain.stdout == "" and "Missing argument" in plain.stderr

    ok(cli(database_url, "domain", "add", key, f"{key}.test", "--verified", "--json"))
    ok(cli(database_url, "scim", "configure", key, "--method", "bearer", "--json"))
    token_id = ok(cli(database_url, "token", "create", key, "--json"))["id"]
    assert ok(cli(database_url, "token", "revoke", key, token_id, "--json")) == {
        "revoked": True,
        "id": token_id,
    }
    assert "already revoked" in fails(
        cli(database_url, "token", "revoke", key, token_id, "--json"), "conflict"
    )
    unknown = fails(cli(database_url, "token", "revoke", key, "no-such-id", "--json"), "not_found")
    assert "no token 'no-such-id'" in unknown and f"provisio token list {key}" in unknown
    # Another workspace's token is unknown here, not "revoked".
    other = ok(cli(database_url, "workspace", "create", f"Other {uuid.uuid4().hex[:8]}", "--json"))["key"]
    fails(cli(database_url, "token", "revoke", other, token_id, "--json"), "not_found")
