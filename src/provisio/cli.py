"""The operator's command line: ``provisio serve | demo | db upgrade | workspace create | token create``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from provisio.config import get_settings
from provisio.db.engine import Database
from provisio.db.migrate import upgrade
from provisio.domain import tokens as token_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.errors import DomainError

app = typer.Typer(help="provisio: SCIM 2.0 provisioning for workspaces.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces (tenants).", no_args_is_help=True)
token_app = typer.Typer(help="Long-lived SCIM bearer tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(workspace_app, name="workspace")
app.add_typer(token_app, name="token")

T = TypeVar("T")
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database.from_url(get_settings().database_url, pool_size=2)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _emit(data: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else "\n".join(lines))


@db_app.command("upgrade")
def db_upgrade(as_json: bool = JSON_OPTION) -> None:
    """Create or migrate the database to the newest schema."""
    url = get_settings().database_url
    upgrade(url)
    _emit({"status": "ok"}, as_json, ["Database is up to date."])


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the SCIM API and console (the database must be migrated: `provisio db upgrade`)."""
    import uvicorn

    uvicorn.run("provisio.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False)


@workspace_app.command("create")
def workspace_create(
    name: str,
    key: str = typer.Option(None, help="URL-safe key used in the Tenant URL (default: from the name)."),
    seats: int = typer.Option(0, help="Purchased seats."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a workspace."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.create_workspace(session, name, key=key, seats=seats)
            return {"id": ws.id, "key": ws.key, "name": ws.name,
                    "tenant_url": get_settings().tenant_url(ws.key)}

    data = _run(work)
    _emit(data, as_json, [f"Created workspace {data['name']} ({data['key']})", f"Tenant URL: {data['tenant_url']}"])


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
            issued = await token_service.create_token(session, ws, label)
            return {"id": issued.id, "token": issued.token, "tenant_url": get_settings().tenant_url(ws.key)}

    data = _run(work)
    _emit(data, as_json, [f"Token: {data['token']}", f"Tenant URL: {data['tenant_url']}",
                          "The token is shown only now; store it in your identity provider."])


@token_app.command("revoke")
def token_revoke(workspace: str, token_id: str, as_json: bool = JSON_OPTION) -> None:
    """Revoke a bearer token by its id; it stops working at once."""

    async def work(db: Database) -> bool:
        async with db.writing() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            return await token_service.revoke_token(session, ws, token_id)

    revoked = _run(work)
    _emit({"revoked": revoked}, as_json, ["Revoked." if revoked else "No such live token."])
    if not revoked:
        raise typer.Exit(1)


@token_app.command("list")
def token_list(workspace: str, as_json: bool = JSON_OPTION) -> None:
    """List a workspace's bearer tokens (ids and labels; the tokens themselves are not stored)."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.reading() as session:
            ws = await workspace_service.require_workspace(session, workspace)
            return [
                {"id": t.id, "label": t.label, "created_at": t.created_at.isoformat(),
                 "revoked": t.revoked_at is not None}
                for t in await token_service.list_tokens(session, ws)
            ]

    rows = _run(work)
    _emit({"tokens": rows}, as_json,
          [f"{r['id']}  {'revoked' if r['revoked'] else 'live   '}  {r['label']}" for r in rows] or ["No tokens."])


DEMO_KEY = "demo"


@app.command()
def demo(as_json: bool = JSON_OPTION) -> None:
    """Migrate, make sure the demo workspace exists, and issue a fresh demo SCIM token."""
    settings = get_settings()
    upgrade(settings.database_url)

    async def work(db: Database) -> dict[str, Any]:
        async with db.writing() as session:
            ws = await workspace_service.get_workspace(session, DEMO_KEY)
            if ws is None:
                ws = await workspace_service.create_workspace(session, "Demo", key=DEMO_KEY, seats=25)
            issued = await token_service.create_token(session, ws, "demo")
            return {"workspace": ws.key, "tenant_url": settings.tenant_url(ws.key), "token": issued.token}

    data = _run(work)
    _emit(data, as_json, [
        "provisio demo is ready.",
        f"  Tenant URL (SCIM base): {data['tenant_url']}",
        f"  Bearer token:           {data['token']}",
        "  Try: curl -H 'Authorization: Bearer " + data["token"] + "' " + data["tenant_url"] + "/Users",
    ])
