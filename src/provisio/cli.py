"""The operator's command line: ``provisio serve | worker | demo | db upgrade | workspace create | …``."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from provisio.config import get_settings
from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain import admins as admin_service
from provisio.domain import api_keys as api_key_service
from provisio.domain import domains as domain_service
from provisio.domain import host_events, member_buckets, provisioning_log
from provisio.domain import redirect_uris as redirect_service
from provisio.domain import scim_credentials as credential_service
from provisio.domain import scim_settings as scim_settings_service
from provisio.domain import seats as seat_service
from provisio.domain import tokens as token_service
from provisio.domain import workspace_admins as workspace_admin_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError, Kind
from provisio.domain.host_events import CLI_ACTOR
from provisio.domain.scim_methods import ScimMethod
from provisio.domain.workspace_state import ensure_changeable

app = typer.Typer(help="provisio: SCIM 2.0 provisioning for workspaces.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
token_app = typer.Typer(help="Long-lived SCIM bearer tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(workspace_app, name="workspace")
app.add_typer(token_app, name="token")
scim_app = typer.Typer(help="SCIM provisioning settings of a workspace.", no_args_is_help=True)
app.add_typer(scim_app, name="scim")

T = TypeVar("T")
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


USAGE = "usage"  # the error code of a command line the CLI cannot run (exit status 2)


def _fail(code: str, message: str, as_json: bool, status: int = 1, **data: Any) -> NoReturn:
    """Every error of every command ends here: with --json, ``{"error": {"code", "message"}}`` (and any
    ``data``) on stdout, so automation reads one document; without, the message on stderr."""
    if as_json:
        typer.echo(json.dumps({**data, "error": {"code": code, "message": message}}, indent=2))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(status)


def _run(work: Callable[[Database], Awaitable[T]], as_json: bool) -> T:
    async def main() -> T:
        db = Database.from_url(get_settings().database_url, pool_size=2)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        _fail(exc.kind.value, exc.detail, as_json)


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else "\n".join(lines))


@db_app.command("upgrade")
def db_upgrade(as_json: bool = JSON_OPTION) -> None:
    """Create or migrate the database to the newest schema."""
    url = get_settings().database_url
    upgrade(url)
    _emit({"status": "ok"}, as_json, ["Database is up to date."])


@db_app.command("recount")
def db_recount(as_json: bool = JSON_OPTION) -> None:
    """Rebuild the kept member counts (list totals, offset-page buckets) from the member rows."""

    async def work(db: Database) -> list[str]:
        async with db.writing() as session:
            return await member_buckets.recount(session)

    wrong = _run(work, as_json)
    lines = [f"Corrected the counts of {len(wrong)} workspace(s)." if wrong else "Every count was right."]
    _emit({"corrected_workspaces": wrong}, as_json, lines)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the SCIM API and console (the database must be migrated: `provisio db upgrade`)."""
    from provisio.app import secret_key_problem
    from provisio.serving import run_server

    problem = secret_key_problem(get_settings(), workers)
    if problem:
        typer.echo(f"Error: {problem}", err=True)
        raise typer.Exit(1)
    run_server(host=host, port=port, workers=workers, announce=typer.echo)


@workspace_app.command("create")
def workspace_create(
    name: str,
    key: str = typer.Option(None, help="URL-safe key used in the Tenant URL (default: from the name)."),
    seats: int = typer.Option(0, help="Purchased seats."),
    admin_email: str = typer.Option(None, help="E-mail of the workspace admin who signs in to the console."),
    admin_password: str = typer.Option(
        None, help="That admin's password (an existing admin's password is reset to it)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a workspace (and, with --admin-email/--admin-password, its console admin)."""
    if (admin_email is None) != (admin_password is None):
        _fail(USAGE, "give --admin-email and --admin-password together.", as_json, 2)

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.create_workspace(
                session, name, key=key, seats=seats, actor=seat_service.OPERATOR_CLI
            )
            data: dict[str, Any] = {
                "id": ws.id,
                "key": ws.key,
                "name": ws.name,
                "tenant_url": get_settings().tenant_url(ws.key),
                "scim_enabled": ws.scim_enabled,
            }
            wanted = workspace_service.slugify(name)
            if key is None and ws.key != wanted:
                data["notice"] = f"The key {wanted!r} is taken, so this workspace's key is {ws.key!r}."
            if admin_email is not None and admin_password is not None:
                admin = await admin_service.ensure_admin(
                    session, ws, admin_email, admin_password, added_by=seat_service.OPERATOR_CLI
                )
                data["admin_email"] = admin.email
                data["console_url"] = get_settings().console_url
            return data

    data = _run(work, as_json)
    lines = [f"Created workspace {data['name']} ({data['key']})", f"Tenant URL: {data['tenant_url']}"]
    if "notice" in data:
        lines.append(data["notice"])
    if "admin_email" in data:
        lines.append(f"Admin {data['admin_email']} can sign in at {data['console_url']}")
    lines.append(
        f"SCIM is off until the workspace has a verified domain: provisio domain add {data['key']} DOMAIN, "
        f"then provisio scim configure {data['key']} --method …"
    )
    _emit(data, as_json, lines)


@scim_app.command("configure")
def scim_configure(
    workspace: str = typer.Argument(..., help="Workspace key."),
    method: ScimMethod = typer.Option(..., help="How the identity provider authenticates."),
    redirect_uri: list[str] = typer.Option(
        None, "--redirect-uri", help="Redirect URI to allow (authorization_code; repeatable)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Enable SCIM with METHOD and issue fresh credentials (previous ones stop working at once)."""

    async def work(db: Database) -> dict[str, Any]:
        settings = get_settings()
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            if redirect_uri and method is not ScimMethod.AUTHORIZATION_CODE:
                raise DomainError(Kind.INVALID, "--redirect-uri applies only to --method authorization_code.")
            await scim_settings_service.set_method(session, ws, method)
            await scim_settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
            known = await redirect_service.list_redirect_uris(session, ws.id)
            for uri in redirect_uri or []:
                if redirect_service.validate_redirect_uri(uri) not in known:
                    known.append(await redirect_service.add_redirect_uri(session, ws, uri))
            issued = await credential_service.generate_credentials(session, ws)
            urls = scim_settings_service.scim_urls(settings, ws.key)
            data: dict[str, Any] = {"workspace": ws.key, "method": method.value, "enabled": True}
            if issued.token is not None:
                data["token"] = issued.token
            else:
                data["client_id"] = issued.client_id
                data["client_secret"] = issued.client_secret
            data.update(
                authorization_url=urls.authorization_url,
                tenant_url=urls.tenant_url,
                token_url=urls.token_url,
                redirect_uris=known,
            )
            return data

    data = _run(work, as_json)
    labels = {
        "client_id": "Client ID",
        "client_secret": "Client Secret",
        "token": "Bearer token",
        "authorization_url": "Authorization URL",
        "tenant_url": "Tenant URL",
        "token_url": "Token URL",
    }
    lines = [f"SCIM is on for {data['workspace']} with {method.label}."]
    lines += [f"  {label + ':':<19}{data[name]}" for name, label in labels.items() if name in data]
    lines += [f"  Redirect URI:      {uri}" for uri in data["redirect_uris"]]
    lines.append("The secret is shown only now; store it in your identity provider.")
    _emit(data, as_json, lines)


@token_app.command("create")
def token_create(
    workspace: str = typer.Argument(..., help="Workspace key."),
    label: str = typer.Option("", help="A note on who uses the token."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a long-lived SCIM bearer token (shown once; only its hash is stored)."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            issued = await credential_service.issue_bearer_token(session, ws, label)
            return {"id": issued.id, "token": issued.token, "tenant_url": get_settings().tenant_url(ws.key)}

    data = _run(work, as_json)
    _emit(
        data,
        as_json,
        [
            f"Token: {data['token']}",
            f"Tenant URL: {data['tenant_url']}",
            "The token is shown only now; store it in your identity provider.",
        ],
    )


@token_app.command("revoke")
def token_revoke(workspace: str, token_id: str, as_json: bool = JSON_OPTION) -> None:
    """Revoke a bearer token by its id; it stops working at once."""

    async def work(db: Database) -> None:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            if not await token_service.revoke_token(session, ws, token_id):
                raise await token_service.why_not_revoked(session, ws, token_id)

    _run(work, as_json)
    _emit(
        {"revoked": True, "id": token_id}, as_json, [f"Revoked token {token_id}; it stops working at once."]
    )


@token_app.command("list")
def token_list(workspace: str, as_json: bool = JSON_OPTION) -> None:
    """List a workspace's bearer tokens (ids and labels; the tokens themselves are not stored)."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            return [
                {
                    "id": t.id,
                    "label": t.label,
                    "created_at": t.created_at.isoformat(),
                    "revoked": t.revoked_at is not None,
                }
                for t in await token_service.list_tokens(session, ws)
            ]

    rows = _run(work, as_json)
    _emit(
        {"tokens": rows},
        as_json,
        [f"{r['id']}  {'revoked' if r['revoked'] else 'live   '}  {r['label']}" for r in rows]
        or ["No tokens."],
    )


# --- the provisioning log ------------------------------------------------------------------------------


def _event_data(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "last_at": e.last_at.isoformat() if e.last_at else None,
        "repeats": e.repeats,
        "operation": e.action,
        "outcome": e.outcome,
        "status": e.status,
        "scim_type": e.scim_type,
        "member_id": e.member_id,
        "user_name": e.user_name,
        "actor": e.actor,
        "credential": e.credential,
        "detail": e.detail,
        "request_id": e.request_id,
        "duration_ms": e.duration_ms,
    }


def _event_line(d: dict[str, Any]) -> str:
    repeats = f" x{d['repeats']}" if d["repeats"] > 1 else ""
    who = d["user_name"] or d["member_id"] or "-"
    detail = f"  {d['detail']}" if d["detail"] else ""
    return (
        f"{d['at'][:19]}  {d['operation']:<10} {d['outcome']:<7} {d['status']}{repeats:<6} {who:<30} "
        f"{d['actor']}  {d['request_id'] or '-'}{detail}"
    )


@app.command("log")
def log_show(
    workspace: str,
    outcome: str = typer.Option("", "--outcome", help="success or failure."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="How many events, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A workspace's provisioning log, newest first: SCIM changes and failures."""

    async def work(db: Database) -> list[dict[str, Any]]:
        filters = provisioning_log.LogFilter.parse(outcome=outcome)
        async with db.reading() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            found = await provisioning_log.page(session, ws.id, filters, limit=limit)
        return [_event_data(e) for e in found.events]

    rows = _run(work, as_json)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo("\n".join(_event_line(r) for r in rows) if rows else "No events.")


@app.command("log-prune")
def log_prune(
    days: int | None = typer.Option(
        None, "--days", min=1, help="Keep this many days (default: PROVISIO_LOG_RETENTION_DAYS)."
    ),
    outbox_days: int | None = typer.Option(
        None,
        "--outbox-days",
        min=1,
        help="Keep sent and given-up notifications this many days (default: PROVISIO_OUTBOX_RETENTION_DAYS).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete provisioning-log events older than the retention, and sent or given-up notifications older
    than the outbox's, in small batches (safe while serving)."""
    from provisio.notify import outbox

    settings = get_settings()
    retention = days or settings.log_retention_days
    outbox_retention = outbox_days or settings.outbox_retention_days

    async def work(db: Database) -> tuple[int, int]:
        return await provisioning_log.prune(db, retention), await outbox.prune(db, outbox_retention)

    deleted, outbox_deleted = _run(work, as_json)
    _emit(
        {
            "deleted": deleted,
            "retention_days": retention,
            "outbox_deleted": outbox_deleted,
            "outbox_retention_days": outbox_retention,
        },
        as_json,
        [
            f"Deleted {deleted} events older than {retention} days.",
            f"Deleted {outbox_deleted} sent or given-up notifications older than {outbox_retention} days.",
        ],
    )


# --- seats, verified domains and workspace settings ---------------------------------------------------

seats_app = typer.Typer(help="Purchased seats and license auto-charge.", no_args_is_help=True)
domain_app = typer.Typer(help="Verified e-mail domains of a workspace.", no_args_is_help=True)
app.add_typer(seats_app, name="seats")
app.add_typer(domain_app, name="domain")


def _seat_data(ws: Any, used: int) -> dict[str, Any]:
    return {
        "workspace": ws.key,
        "purchased": ws.seats_purchased,
        "used": used,
        "auto_charge": ws.license_auto_charge,
        "max_seats": ws.license_max_seats,
    }


@seats_app.command("set")
def seats_set(
    workspace: str = typer.Argument(..., help="Workspace key."),
    purchased: int = typer.Option(None, "--purchased", help="Purchased seat count (recorded in the ledger)."),
    auto_charge: bool = typer.Option(
        None, "--auto-charge/--no-auto-charge", help="Buy a seat automatically when provisioning needs one."
    ),
    max_seats: int = typer.Option(None, "--max-seats", help="The most seats auto-charge may reach."),
    no_max_seats: bool = typer.Option(False, "--no-max-seats", help="Let auto-charge buy without a limit."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Set a workspace's purchased seats and license auto-charge; prints the seat use."""
    if max_seats is not None and no_max_seats:
        _fail(USAGE, "give --max-seats or --no-max-seats, not both.", as_json, 2)

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await seat_service.lock_workspace(
                session, (await workspace_service.require_workspace(session, workspace)).id
            )
            if purchased is not None:
                await seat_service.set_purchased(
                    session, ws, purchased, actor=seat_service.OPERATOR_CLI, by=CLI_ACTOR
                )
            if auto_charge is not None or max_seats is not None or no_max_seats:
                await scim_settings_service.set_license(
                    session,
                    ws,
                    auto_charge=ws.license_auto_charge if auto_charge is None else auto_charge,
                    max_seats=None
                    if no_max_seats
                    else (ws.license_max_seats if max_seats is None else max_seats),
                )
            return _seat_data(ws, await seat_service.used_seats(session, ws.id))

    data = _run(work, as_json)
    limit = "no limit" if data["max_seats"] is None else f"up to {data['max_seats']} seats"
    charge = f"on ({limit})" if data["auto_charge"] else "off"
    _emit(
        data,
        as_json,
        [f"{data['workspace']}: {data['used']} of {data['purchased']} seats used; auto-charge {charge}."],
    )


def _domain_data(entry: Any) -> dict[str, Any]:
    return {
        "domain": entry.domain,
        "verified": entry.verified_at is not None,
        "verified_by": entry.verified_by,
        "verified_at": entry.verified_at.isoformat() if entry.verified_at else None,
        "txt_record": domain_service.txt_record(entry),
        "last_error": entry.last_error,
    }


def _domain_line(d: dict[str, Any]) -> str:
    if d["verified"]:
        return f"{d['domain']}  verified ({d['verified_by']})"
    return f"{d['domain']}  not verified: publish TXT {d['txt_record']!r} on {d['domain']}"


@domain_app.command("add")
def domain_add(
    workspace: str = typer.Argument(..., help="Workspace key."),
    domain: str = typer.Argument(..., help="E-mail domain, e.g. example.com."),
    verified: bool = typer.Option(
        False, "--verified", help="Operator override: mark it verified without DNS (recorded as such)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Claim a domain for a workspace and print the TXT record that verifies it."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            entry = await domain_service.add_domain(session, ws, domain, operator_verified=verified)
            return {"workspace": ws.key, **_domain_data(entry)}

    data = _run(work, as_json)
    lines = [_domain_line(data)]
    if not data["verified"]:
        lines.append(f"Then run: provisio domain verify {data['workspace']} {data['domain']}")
    _emit(data, as_json, lines)


@domain_app.command("verify")
def domain_verify(
    workspace: str = typer.Argument(..., help="Workspace key."),
    domain: str = typer.Argument(..., help="The domain to check."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Look up the domain's TXT record (PROVISIO_DNS_NAMESERVERS, else the system resolver)."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.reading() as session:  # refused before any DNS lookup when it could not be recorded
            ws = await workspace_service.require_workspace(session, workspace)
            await domain_service.domain_to_verify(session, ws, domain)
        check = await domain_service.check_txt(get_settings(), domain)  # outside any transaction
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            entry = await domain_service.record_check(session, ws, domain, check)
            return {"workspace": ws.key, **_domain_data(entry)}

    data = _run(work, as_json)
    if not data["verified"]:
        if not as_json:
            typer.echo(_domain_line(data))
        _fail("not_verified", data["last_error"] or f"{data['domain']} is not verified.", as_json, **data)
    _emit(data, as_json, [_domain_line(data)])


@domain_app.command("list")
def domain_list(
    workspace: str = typer.Argument(..., help="Workspace key."), as_json: bool = JSON_OPTION
) -> None:
    """List a workspace's domains and their verification state."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            return [_domain_data(e) for e in await domain_service.list_domains(session, ws.id)]

    rows = _run(work, as_json)
    _emit({"domains": rows}, as_json, [_domain_line(r) for r in rows] or ["No domains."])


@domain_app.command("remove")
def domain_remove(
    workspace: str = typer.Argument(..., help="Workspace key."),
    domain: str = typer.Argument(..., help="The domain to remove."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove a domain (the last verified one cannot go while SCIM is on)."""

    async def work(db: Database) -> str:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            entry = await domain_service.get_domain(session, ws, domain)
            name = entry.domain
            await domain_service.remove_domain(session, ws, name)
            return name

    name = _run(work, as_json)
    _emit({"removed": name}, as_json, [f"Removed {name}."])


@workspace_app.command("update")
def workspace_update(
    workspace: str = typer.Argument(..., help="Workspace key."),
    name: str = typer.Option(None, "--name", help="New display name."),
    allow_other_domains: bool = typer.Option(
        None,
        "--allow-other-domains/--no-allow-other-domains",
        help="Accept members whose e-mail is outside the verified domains.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Rename a workspace or change whether it accepts members from unverified domains."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            ensure_changeable(ws)
            if name is not None:
                if not name.strip():
                    raise DomainError(Kind.INVALID, "A workspace needs a name.")
                ws.name = name.strip()
            if allow_other_domains is not None:
                ws.allow_other_domains = allow_other_domains
            await session.flush()
            return {"key": ws.key, "name": ws.name, "allow_other_domains": ws.allow_other_domains}

    data = _run(work, as_json)
    other = "accepts" if data["allow_other_domains"] else "refuses"
    _emit(data, as_json, [f"{data['name']} ({data['key']}) {other} members from other domains."])


def _switch_workspace(workspace: str, disable: bool, as_json: bool) -> None:
    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            switch = workspace_service.disable_workspace if disable else workspace_service.enable_workspace
            changed = await switch(session, ws)
            return {
                "key": ws.key,
                "name": ws.name,
                "disabled": ws.disabled_at is not None,
                "disabled_at": ws.disabled_at.isoformat() if ws.disabled_at else None,
                "changed": changed,
            }

    data = _run(work, as_json)
    if disable:
        line = (
            f"Disabled {data['name']} ({data['key']}): its SCIM requests and new OAuth tokens are refused "
            f"and nothing about it can be changed; `provisio workspace enable {data['key']}` undoes it."
            if data["changed"]
            else f"{data['name']} ({data['key']}) is already disabled, since {data['disabled_at']}."
        )
    else:
        line = (
            f"Enabled {data['name']} ({data['key']}): it works as it did before it was disabled."
            if data["changed"]
            else f"{data['name']} ({data['key']}) is not disabled."
        )
    _emit(data, as_json, [line])


@workspace_app.command("disable")
def workspace_disable(
    workspace: str = typer.Argument(..., help="Workspace key."), as_json: bool = JSON_OPTION
) -> None:
    """Disable a workspace (a customer suspended or gone): SCIM and new OAuth tokens are refused and
    nothing about it can be changed, but everything is kept until it is enabled again."""
    _switch_workspace(workspace, True, as_json)


@workspace_app.command("enable")
def workspace_enable(
    workspace: str = typer.Argument(..., help="Workspace key."), as_json: bool = JSON_OPTION
) -> None:
    """Enable a disabled workspace: it works again as it did before."""
    _switch_workspace(workspace, False, as_json)


# --- console admins of a workspace ---------------------------------------------------------------------

admin_app = typer.Typer(help="Console admins of a workspace.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


@admin_app.command("add")
def admin_add(
    workspace: str = typer.Argument(..., help="Workspace key."),
    email: str = typer.Argument(..., help="E-mail address of the admin."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make EMAIL an admin of a workspace; a new account gets a one-time set-password link (72 hours),
    printed and e-mailed to it."""

    from provisio.notify import invites

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            invited = await invites.add_admin(
                session, get_settings(), ws, email, actor=seat_service.OPERATOR_CLI
            )
            added = invited.added
            data: dict[str, Any] = {
                "workspace": ws.key,
                "email": added.email,
                "created": added.created,
                "granted": invited.shown_url is None,
                "password_set": added.has_password,
                "link_mailed": invited.mailed,
            }
            if invited.shown_url is not None:
                data["set_password_url"] = invited.shown_url
            return data

    data = _run(work, as_json)
    if data["password_set"]:
        lines = [
            f"Granted {data['workspace']} to {data['email']}, an existing account: they sign in with "
            "their password."
        ]
    elif data["granted"]:
        lines = [
            f"Granted {data['workspace']} to {data['email']}, an existing account of another workspace "
            "without a password yet: a new set-password link was e-mailed to them (not shown here)."
        ]
    else:
        lines = [
            f"Added {data['email']} as an admin of {data['workspace']}.",
            "Set-password link (also e-mailed to them; works once, for 72 hours): "
            + data["set_password_url"],
        ]
    _emit(data, as_json, lines)


@admin_app.command("remove")
def admin_remove(
    workspace: str = typer.Argument(..., help="Workspace key."),
    email: str = typer.Argument(..., help="E-mail address of the admin."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Take a workspace from one of its admins (the last admin cannot be removed)."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            admin = await workspace_admin_service.workspace_admin(session, ws.id, email=email)
            removed = await workspace_admin_service.remove_admin(session, ws, admin.id)
            return {"workspace": ws.key, "removed": removed}

    data = _run(work, as_json)
    _emit(data, as_json, [f"Removed {data['removed']} from the admins of {data['workspace']}."])


@admin_app.command("list")
def admin_list(
    workspace: str = typer.Argument(..., help="Workspace key."), as_json: bool = JSON_OPTION
) -> None:
    """List a workspace's admins: since when, who added them, whether they have set a password."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            return [
                {
                    "email": a.email,
                    "since": a.since.isoformat(),
                    "added_by": a.added_by,
                    "password_set": a.has_password,
                }
                for a in await workspace_admin_service.list_admins(session, ws.id)
            ]

    rows = _run(work, as_json)
    lines = [
        f"{r['email']}  since {r['since'][:16].replace('T', ' ')}  "
        f"{'password set' if r['password_set'] else 'password not set yet'}  "
        f"added by {r['added_by'] or 'not recorded'}"
        for r in rows
    ]
    _emit({"admins": rows}, as_json, lines or ["No admins."])


# --- operator API keys of the management API ----------------------------------------------------------

apikey_app = typer.Typer(help="Operator API keys of the management API (/api/v1).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")


def _key_data(k: Any) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "created_at": k.created_at.isoformat(),
        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
        "revoked": k.revoked_at is not None,
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
    }


@apikey_app.command("create")
def apikey_create(
    name: str = typer.Argument(..., help="Who uses the key."), as_json: bool = JSON_OPTION
) -> None:
    """Make an API key (shown once; only its hash is stored)."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            issued = await api_key_service.create_key(session, name)
            return {"key": issued.key, "id": issued.id, "name": issued.name}

    data = _run(work, as_json)
    _emit(
        data,
        as_json,
        [
            f"API key {data['id']} ({data['name']}): {data['key']}",
            "The key is shown only now; send it as: Authorization: Bearer <key>",
        ],
    )


@apikey_app.command("list")
def apikey_list(as_json: bool = JSON_OPTION) -> None:
    """List the API keys (ids, names, the first characters of each; the keys themselves are not stored)."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as session:
            return [_key_data(k) for k in await api_key_service.list_keys(session)]

    rows = _run(work, as_json)
    lines = [
        f"{r['id']}  {'revoked' if r['revoked'] else 'live   '}  {r['prefix']}…  {r['name']}  "
        f"last used {r['last_used_at'][:16].replace('T', ' ') if r['last_used_at'] else 'never'}"
        for r in rows
    ]
    _emit({"keys": rows}, as_json, lines or ["No API keys."])


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: int = typer.Argument(..., help="The key's id."), as_json: bool = JSON_OPTION
) -> None:
    """Revoke an API key; it stops working at once."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            return _key_data(await api_key_service.revoke_key(session, key_id))

    data = _run(work, as_json)
    _emit(data, as_json, [f"Revoked API key {data['id']} ({data['name']}); it stops working at once."])


DEMO_KEY = "demo"
DEMO_DOMAIN = "example.com"


async def _ensure_demo_domain(session: Any, ws: Any) -> None:
    """The demo workspace owns example.com (operator-verified), so the README's users provision."""
    known = {d.domain: d for d in await domain_service.list_domains(session, ws.id)}
    if DEMO_DOMAIN not in known:
        try:
            await domain_service.add_domain(session, ws, DEMO_DOMAIN, operator_verified=True)
        except DomainError:  # verified by another workspace of this installation: leave it there
            return


DEMO_ADMIN_EMAIL = "admin@demo.example"


@app.command()
def demo(as_json: bool = JSON_OPTION) -> None:
    """Migrate; ensure the demo workspace and its admin; print the console sign-in and a SCIM token."""
    settings = get_settings()
    upgrade(settings.database_url)

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.get_workspace(session, DEMO_KEY)
            if ws is None:
                ws = await workspace_service.create_workspace(
                    session, "Demo", key=DEMO_KEY, seats=25, actor=seat_service.OPERATOR_CLI
                )
            await _ensure_demo_domain(session, ws)
            # Needs the domain just ensured.
            await scim_settings_service.set_enabled(session, ws, True, by=CLI_ACTOR)
            password = secrets.token_urlsafe(12)  # fresh on every run; printed below
            await admin_service.ensure_admin(
                session, ws, DEMO_ADMIN_EMAIL, password, added_by=seat_service.OPERATOR_CLI
            )
            data: dict[str, Any] = {
                "workspace": ws.key,
                "tenant_url": settings.tenant_url(ws.key),
                "console_url": settings.console_url,
                "admin_email": DEMO_ADMIN_EMAIL,
                "admin_password": password,
                "scim_method": ws.scim_auth_method,
            }
            if ws.scim_auth_method == ScimMethod.BEARER.value:
                data["token"] = (await credential_service.issue_bearer_token(session, ws, "demo")).token
            return data

    data = _run(work, as_json)
    lines = [
        "provisio demo is ready.",
        f"  Console:                {data['console_url']}",
        f"  Admin e-mail:           {data['admin_email']}",
        f"  Admin password:         {data['admin_password']}",
        f"  Tenant URL (SCIM base): {data['tenant_url']}",
    ]
    if "token" in data:
        lines += [
            f"  Bearer token:           {data['token']}",
            "  Try: curl -H 'Authorization: Bearer " + data["token"] + "' " + data["tenant_url"] + "/Users",
        ]
    else:
        lines.append(f"  SCIM method:            {data['scim_method']} (see the console)")
    data["mail"] = (
        {"smtp_host": settings.smtp_host, "smtp_port": settings.smtp_port}
        if settings.smtp_host
        else {"mail_dir": str(Path(settings.mail_dir).resolve())}
    )
    lines.append(f"  E-mail:                 {_mail_route(settings)}")
    _emit(data, as_json, lines)


# --- notifications: the outbox worker and a test e-mail ---------------------------------------------

notify_app = typer.Typer(help="Notifications (e-mail).", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


def _mail_route(settings: Any) -> str:
    if settings.smtp_host:
        return f"SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_tls})"
    return f"the log and .eml files in {Path(settings.mail_dir).resolve()} (PROVISIO_SMTP_HOST is not set)"


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit."),
) -> None:
    """Deliver the outbox (e-mail and webhooks) until stopped (SIGTERM/Ctrl-C); for deployments that run
    it apart from `provisio serve` (then set PROVISIO_OUTBOX_WORKER=false for the servers)."""
    from provisio.db.migrate import NotMigrated, check_current
    from provisio.logging import configure_logging
    from provisio.notify.worker import OutboxWorker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def main() -> None:
        db = Database.from_url(settings.database_url, pool_size=2)
        try:
            try:
                await check_current(db, settings.database_url)
                async with db.reading() as session:
                    await host_events.check_clock(session)
            except (NotMigrated, host_events.EventClockBehind) as exc:
                typer.echo(f"Error: {exc}", err=True)
                raise typer.Exit(1) from exc
            outbox_worker = OutboxWorker(db, settings)
            if once:
                try:
                    while (
                        await outbox_worker.run_once() >= settings.outbox_batch_size
                        or outbox_worker.left_due()
                    ):
                        pass
                finally:
                    await outbox_worker.close()
                typer.echo(f"Delivered {outbox_worker.sent}, failed {outbox_worker.failed}.")
                return
            typer.echo(f"provisio worker {outbox_worker.worker_id}: mail goes to {_mail_route(settings)}")
            loop = asyncio.get_running_loop()
            stopping = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stopping.set)
            outbox_worker.start()
            await stopping.wait()
            await outbox_worker.stop()
        finally:
            await db.dispose()

    asyncio.run(main())


@notify_app.command("test")
def notify_test(workspace: str, as_json: bool = JSON_OPTION) -> None:
    """Enqueue a test e-mail to those who get the workspace's failure e-mails (the worker delivers it)."""
    from provisio.notify.checks import enqueue_test_mail

    settings = get_settings()

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            mail = await enqueue_test_mail(session, ws, settings)
        return {"workspace": ws.key, "outbox_id": mail.outbox_id, "recipients": mail.recipients}

    data = _run(work, as_json)
    count = len(data["recipients"])
    lines = [
        f"Enqueued a test e-mail to {count} recipient{'s' if count != 1 else ''} of {data['workspace']}'s "
        "failure e-mails: " + ", ".join(data["recipients"]),
        f"The outbox worker delivers it through {_mail_route(settings)}.",
    ]
    _emit({**data, "recipient_count": count}, as_json, lines)


def _is_usage_error(exc: BaseException) -> bool:
    """A command line the parser refused (Typer raises its own copy of click's ``UsageError``)."""
    return any(cls.__name__ == "UsageError" for cls in type(exc).__mro__) and hasattr(exc, "format_message")


def main() -> None:
    """The ``provisio`` command: the Typer app, with command-line errors (an unknown option, a missing
    argument) answered as a JSON error too when ``--json`` is on the command line."""
    if "--json" not in sys.argv[1:]:
        app()
        return
    try:
        status = app(standalone_mode=False)
    except Exception as exc:
        if not _is_usage_error(exc) or type(exc).__name__ == "NoArgsIsHelpError":
            raise
        message = exc.format_message()  # type: ignore[attr-defined]
        typer.echo(json.dumps({"error": {"code": USAGE, "message": message}}, indent=2))
        sys.exit(2)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
