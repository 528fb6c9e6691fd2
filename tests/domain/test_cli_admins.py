"""``provisio admin add | remove | list`` (each with --json), and a password reset by ``provisio demo``
ending the console sessions signed in with the old password."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from provisio.app import create_app
from provisio.config import Settings
from tests.domain.test_cli import cli, fails, ok
from tests.oauth.helpers import csrf_token

PASSWORD = "correct horse battery staple"
BASE = "http://provisio.test"


def console(url: str) -> object:
    return create_app(Settings(database_url=url, base_url=BASE, secret_key="x", log_level="WARNING"))


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text), "next": ""},
    )


async def test_admin_add_list_and_remove(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'admins.db'}"
    ok(cli(url, "db", "upgrade", "--json"))
    owner = "it@acme.example"
    ok(
        cli(url, "workspace", "create", "Acme", "--key", "acme", "--admin-email", owner,
            "--admin-password", PASSWORD, "--json")
    )  # fmt: skip
    ok(cli(url, "workspace", "create", "Beta", "--key", "beta", "--admin-email", "ops@beta.example",
           "--admin-password", PASSWORD, "--json"))  # fmt: skip

    added = ok(cli(url, "admin", "add", "acme", "Grace@Acme.example", "--json"))
    assert added["workspace"] == "acme" and added["email"] == "Grace@Acme.example"
    assert added["created"] is True and added["granted"] is False and added["link_mailed"] is True
    link = added["set_password_url"]
    assert re.fullmatch(r"https://scim\.example\.net/console/set-password/[A-Za-z0-9_-]{40,}", link)
    # An existing account (the admin of beta) is granted, with no link.
    granted = ok(cli(url, "admin", "add", "acme", "ops@beta.example", "--json"))
    assert granted == {
        "workspace": "acme",
        "email": "ops@beta.example",
        "created": False,
        "granted": True,
        "password_set": True,
        "link_mailed": False,
    }
    human = cli(url, "admin", "add", "beta", owner)
    assert human.returncode == 0 and "existing account" in human.stdout and "set-password" not in human.stdout
    again = cli(url, "admin", "add", "acme", "grace@acme.example")  # not signed up yet: a new link
    assert again.returncode == 0 and "/console/set-password/" in again.stdout
    assert link.rsplit("/", 1)[1] not in again.stdout
    # Invited by acme, added by beta: no link is printed for beta (it would open acme too), one is mailed.
    by_beta = ok(cli(url, "admin", "add", "beta", "grace@acme.example", "--json"))
    assert by_beta["granted"] is True and by_beta["link_mailed"] is True and by_beta["password_set"] is False
    assert "set_password_url" not in by_beta
    human = cli(url, "admin", "add", "acme", "grace@acme.example")
    assert human.returncode == 0 and "/console/set-password/" not in human.stdout
    assert "e-mailed to them (not shown here)" in human.stdout
    ok(cli(url, "admin", "remove", "beta", "grace@acme.example", "--json"))

    listed = ok(cli(url, "admin", "list", "acme", "--json"))["admins"]
    assert [(a["email"], a["password_set"], a["added_by"]) for a in listed] == [
        (owner, True, "operator (CLI)"),
        ("Grace@Acme.example", False, "operator (CLI)"),
        ("ops@beta.example", True, "operator (CLI)"),
    ]
    assert all(a["since"] for a in listed)
    plain = cli(url, "admin", "list", "acme")
    assert plain.returncode == 0 and "password not set yet" in plain.stdout and owner in plain.stdout

    assert ok(cli(url, "admin", "remove", "acme", "GRACE@acme.example", "--json")) == {
        "workspace": "acme",
        "removed": "Grace@Acme.example",
    }
    assert (
        ok(cli(url, "admin", "remove", "acme", "ops@beta.example", "--json"))["removed"] == "ops@beta.example"
    )
    last = fails(cli(url, "admin", "remove", "acme", owner, "--json"), "conflict")
    assert last == f"{owner} is the last admin of Acme and cannot be removed: add another admin first."
    plain_error = cli(url, "admin", "remove", "acme", owner)
    assert plain_error.returncode == 1 and "last admin" in plain_error.stderr and plain_error.stdout == ""
    assert "is not an admin" in fails(
        cli(url, "admin", "remove", "acme", "nobody@acme.example", "--json"), "not_found"
    )
    assert "No workspace with key 'nope'" in fails(cli(url, "admin", "list", "nope", "--json"), "not_found")
    assert "not an e-mail address" in fails(cli(url, "admin", "add", "acme", "nope", "--json"), "invalid")
    assert "Missing argument" in fails(cli(url, "admin", "add", "acme", "--json"), "usage", 2)
    assert [a["email"] for a in ok(cli(url, "admin", "list", "acme", "--json"))["admins"]] == [owner]


async def test_the_printed_link_sets_a_password_that_signs_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'link.db'}"
    ok(cli(url, "db", "upgrade", "--json"))
    ok(cli(url, "workspace", "create", "Acme", "--key", "acme", "--admin-email", "it@acme.example",
           "--admin-password", PASSWORD, "--json"))  # fmt: skip
    link = ok(cli(url, "admin", "add", "acme", "new@acme.example", "--json"))["set_password_url"]
    path = link.removeprefix("https://scim.example.net")
    app = console(url)
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
            form = await browser.get(path)
            assert form.status_code == 200
            data = {"csrf_token": csrf_token(form.text), "password": PASSWORD, "confirmation": PASSWORD}
            assert (await browser.post(path, data=data)).status_code == 303
            assert (await sign_in(browser, "new@acme.example", PASSWORD)).status_code == 303
            assert (await browser.get("/console/workspaces/acme/admins")).status_code == 200
    listed = ok(cli(url, "admin", "list", "acme", "--json"))["admins"]
    assert [a["password_set"] for a in listed] == [True, True]


async def test_demo_resetting_the_password_signs_out_the_old_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    first = ok(cli(url, "demo", "--json"))
    app = console(url)
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
            signed = await sign_in(browser, first["admin_email"], first["admin_password"])
            assert signed.status_code == 303
            page = "/console/workspaces/demo/settings/advanced"
            assert (await browser.get(page)).status_code == 200
            old_cookie = browser.cookies.get("provisio_session")
            assert old_cookie

            second = ok(cli(url, "demo", "--json"))  # a fresh password for the demo admin
            assert second["admin_password"] != first["admin_password"]

            refused = await browser.get(page)  # the same cookie as before
            assert browser.cookies.get("provisio_session") == old_cookie
            assert refused.status_code == 303 and refused.headers["location"].startswith("/console/login")
            assert (await sign_in(browser, first["admin_email"], first["admin_password"])).status_code == 401
            assert (
                await sign_in(browser, second["admin_email"], second["admin_password"])
            ).status_code == 303
            assert (await browser.get(page)).status_code == 200


def test_admin_commands_are_listed_in_help(tmp_path: Path) -> None:
    result = cli(f"sqlite:///{tmp_path / 'help.db'}", "admin", "--help")
    assert result.returncode == 0
    for command in ("add", "remove", "list"):
        assert re.search(rf"\b{command}\b", result.stdout)
