"""The operator CLI for seats, domains and workspace settings (each with --json), the conformance setup it
enables, and the demo's verified example.com."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from provisio.app import create_app
from provisio.config import Settings
from tests.domain.dns_server import txt_server
from tests.domain.helpers import okta_user


def cli(db_url: str, *args: str, dns_port: int = 9) -> subprocess.CompletedProcess[str]:
    env = {
        "PROVISIO_DATABASE_URL": db_url,
        "PROVISIO_BASE_URL": "https://scim.example.net",
        "PROVISIO_DNS_NAMESERVERS": "127.0.0.1",
        "PROVISIO_DNS_PORT": str(dns_port),
        "PROVISIO_DNS_TIMEOUT_SECONDS": "2",
        "PATH": "",
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


def test_demo_workspace_has_a_verified_example_domain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    for _ in range(2):  # idempotent
        assert ok(cli(url, "demo", "--json"))["workspace"] == "demo"
    listed = ok(cli(url, "domain", "list", "demo", "--json"))
    assert [(d["domain"], d["verified"], d["verified_by"]) for d in listed["domains"]] == [
        ("example.com", True, "operator")
    ]
