"""``/api/v1``: thin routes over the domain services the console, the CLI and SCIM use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import ColumnElement, and_

from provisio.api import schemas
from provisio.api.auth import database, operator_key
from provisio.api.problems import PROBLEM
from provisio.config import Settings
from provisio.db.models import ApiKey
from provisio.db.models import Member as MemberRow
from provisio.db.models import Workspace as WorkspaceRow
from provisio.domain import api_keys
from provisio.domain import connection_status as connection_service
from provisio.domain import domains as domain_service
from provisio.domain import members as member_service
from provisio.domain import scim_settings as scim_settings_service
from provisio.domain import seats as seat_service
from provisio.domain import workspace_admins as workspace_admin_service
from provisio.domain import workspaces as workspace_service
from provisio.domain.scim_methods import ScimMethod
from provisio.scim.schemas import ENTERPRISE_USER_SCHEMA
from provisio.scim.serialize import user_resource

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "No API key, or one unknown or revoked."},
    404: {**PROBLEM, "description": "No workspace (or member, domain, admin) with that name."},
    422: {**PROBLEM, "description": "A field is invalid; `errors` names each one."},
}
REFUSALS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    400: {**PROBLEM, "description": "A rule refused the change; `detail` says which."},
    403: {**PROBLEM, "description": "A seat rule refused the change."},
    409: {
        **PROBLEM,
        "description": "The change conflicts with the current state: a duplicate, or the workspace is "
        "disabled (`reason`: `workspace_disabled`; enable it first).",
    },
}

router = APIRouter(prefix="/api/v1", dependencies=[Depends(operator_key)], responses=ERRORS)
Key = Annotated[ApiKey, Depends(operator_key)]
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _workspace(request: Request, ws: WorkspaceRow) -> schemas.Workspace:
    return schemas.Workspace(
        id=ws.id,
        key=ws.key,
        name=ws.name,
        tenant_url=_settings(request).tenant_url(ws.key),
        created_at=ws.created_at,
        scim_enabled=ws.scim_enabled,
        scim_method=ScimMethod(ws.scim_auth_method),
        allow_other_domains=ws.allow_other_domains,
        seats_purchased=ws.seats_purchased,
        members=ws.member_count,
        disabled=ws.disabled_at is not None,
        disabled_at=ws.disabled_at,
    )


# --- workspaces ---------------------------------------------------------------------------------------


@router.post(
    "/workspaces",
    status_code=201,
    response_model=schemas.Workspace,
    responses=REFUSALS,
    tags=["workspaces"],
    summary="Create a workspace",
)
async def create_workspace(
    request: Request, response: Response, body: schemas.WorkspaceCreate, key: Key
) -> schemas.Workspace:
    """A new workspace (a SCIM tenant) with SCIM off: it needs a verified domain first. Its seats are its
    first seat-ledger entry, bought by this API key."""
    async with database(request).writing() as session:
        ws = await workspace_service.create_workspace(
            session,
            body.name,
            key=body.key,
            seats=body.seats,
            actor=api_keys.actor(key),
            by=api_keys.event_actor(key),
        )
        if body.allow_other_domains:
            await domain_service.set_allow_other_domains(session, ws, True)
        data = _workspace(request, ws)
    response.headers["Location"] = f"{router.prefix}/workspaces/{data.key}"
    return data


@router.get(
    "/workspaces", response_model=schemas.WorkspacePage, tags=["workspaces"], summary="List workspaces"
)
async def list_workspaces(
    request: Request,
    after: Annotated[str, Query(max_length=63, description="The `next_cursor` of the previous page.")] = "",
    disabled: Annotated[
        bool | None, Query(description="Only disabled (true) or only enabled (false) workspaces.")
    ] = None,
    limit: Limit = 50,
) -> schemas.WorkspacePage:
    """Every workspace of the deployment, by key."""
    async with database(request).reading() as session:
        found = await workspace_service.list_workspaces(
            session, after=after, limit=limit + 1, disabled=disabled
        )
        items = [_workspace(request, ws) for ws in found[:limit]]
    return schemas.WorkspacePage(items=items, next_cursor=items[-1].key if len(found) > limit else None)


@router.get(
    "/workspaces/{key}", response_model=schemas.Workspace, tags=["workspaces"], summary="Read a workspace"
)
async def get_workspace(request: Request, key: str) -> schemas.Workspace:
    async with database(request).reading() as session:
        return _workspace(request, await workspace_service.require_workspace(session, key))


@router.patch(
    "/workspaces/{key}",
    response_model=schemas.Workspace,
    responses=REFUSALS,
    tags=["workspaces"],
    summary="Change a workspace",
)
async def update_workspace(request: Request, key: str, body: schemas.WorkspaceUpdate) -> schemas.Workspace:
    """Rename it, or change whether it accepts members whose e-mail is outside its verified domains."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        if body.name is not None:
            await workspace_service.rename(session, ws, body.name)
        if body.allow_other_domains is not None:
            await domain_service.set_allow_other_domains(session, ws, body.allow_other_domains)
        return _workspace(request, ws)


@router.post(
    "/workspaces/{key}/disable",
    response_model=schemas.Workspace,
    tags=["workspaces"],
    summary="Disable a workspace",
)
async def disable_workspace(request: Request, key: str) -> schemas.Workspace:
    """For a customer suspended or gone: its identity provider's SCIM requests are refused (403) and its
    OAuth clients get no new token or code, while its console admins can still sign in and read. Nothing
    about it can be changed (409) until it is enabled again; its members, settings and credentials are
    kept, SCIM's on/off switch included. Disabling a disabled workspace changes nothing (not even
    `disabled_at`)."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        await workspace_service.disable_workspace(session, ws)
        return _workspace(request, ws)


@router.post(
    "/workspaces/{key}/enable",
    response_model=schemas.Workspace,
    tags=["workspaces"],
    summary="Enable a disabled workspace",
)
async def enable_workspace(request: Request, key: str) -> schemas.Workspace:
    """Undo `…/disable`: the workspace works as it did before, with the same credentials. Enabling an
    enabled workspace changes nothing."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        await workspace_service.enable_workspace(session, ws)
        return _workspace(request, ws)


# --- members ------------------------------------------------------------------------------------------


def _member(request: Request, ws_key: str, row: MemberRow) -> schemas.Member:
    location = f"{_settings(request).tenant_url(ws_key)}/Users/{row.id}"
    doc = user_resource(row, location)
    emails = doc.get("emails")
    name = doc.get("name")
    enterprise = doc.get(ENTERPRISE_USER_SCHEMA)
    return schemas.Member(
        id=row.id,
        userName=row.user_name,
        externalId=row.external_id,
        active=row.active,
        emails=[e for e in emails if isinstance(e, dict)] if isinstance(emails, list) else [],
        name=name if isinstance(name, dict) else None,
        enterprise=enterprise if isinstance(enterprise, dict) else None,
        scim=doc,
    )


@router.get(
    "/workspaces/{key}/members",
    response_model=schemas.MemberPage,
    tags=["members"],
    summary="List a workspace's members",
)
async def list_members(
    request: Request,
    key: str,
    email: Annotated[str, Query(max_length=320, description="Exactly this primary e-mail (any case).")] = "",
    user_name: Annotated[str, Query(max_length=512, description="Exactly this userName (any case).")] = "",
    active: Annotated[bool | None, Query(description="Only active (true) or deactivated (false).")] = None,
    after: Annotated[str, Query(max_length=64, description="The `next_cursor` of the previous page.")] = "",
    limit: Limit = 50,
) -> schemas.MemberPage:
    """The members SCIM can see (members removed by the identity provider are not listed), by id."""
    conditions: list[ColumnElement[bool]] = []
    if email:
        conditions.append(MemberRow.email_lower == email.strip().lower())
    if user_name:
        conditions.append(MemberRow.user_name_lower == user_name.lower())
    if active is not None:
        conditions.append(MemberRow.active.is_(active))
    async with database(request).reading() as session:
        ws = await workspace_service.require_workspace(session, key)
        page = await member_service.list_members(
            session,
            ws,
            where=and_(*conditions) if conditions else None,
            order_by=[member_service.BY_ID],
            offset=0,
            limit=limit + 1,
            keyset=MemberRow.id > after if after else None,
        )
        rows = page.members[:limit]
        items = [_member(request, ws.key, row) for row in rows]
    return schemas.MemberPage(items=items, next_cursor=rows[-1].id if len(page.members) > limit else None)


@router.get(
    "/workspaces/{key}/members/{member_id}",
    response_model=schemas.Member,
    tags=["members"],
    summary="Read a member",
)
async def get_member(request: Request, key: str, member_id: str) -> schemas.Member:
    async with database(request).reading() as session:
        ws = await workspace_service.require_workspace(session, key)
        return _member(request, ws.key, await member_service.get_member(session, ws, member_id[:64]))


# --- seats --------------------------------------------------------------------------------------------


async def _seats(session: Any, ws: WorkspaceRow) -> schemas.Seats:
    use = await seat_service.usage(session, ws)
    return schemas.Seats(
        purchased=use.purchased,
        used=use.used,
        free=use.free,
        auto_charge=use.auto_charge,
        max_seats=use.max_seats,
    )


@router.get("/workspaces/{key}/seats", response_model=schemas.Seats, tags=["seats"], summary="Seat use")
async def get_seats(request: Request, key: str) -> schemas.Seats:
    async with database(request).reading() as session:
        return await _seats(session, await workspace_service.require_workspace(session, key))


@router.post(
    "/workspaces/{key}/seats/purchases",
    status_code=201,
    response_model=schemas.Seats,
    responses=REFUSALS,
    tags=["seats"],
    summary="Buy seats",
)
async def buy_seats(request: Request, key: str, body: schemas.SeatPurchase, api_key: Key) -> schemas.Seats:
    """Buy seats by hand (never limited by the auto-charge maximum); the ledger names this API key."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        await seat_service.buy_seats(
            session,
            ws,
            body.quantity,
            actor=api_keys.actor(api_key),
            by=api_keys.event_actor(api_key),
            reason=body.reason,
        )
        return await _seats(session, await seat_service.lock_workspace(session, ws.id))


@router.patch(
    "/workspaces/{key}/seats",
    response_model=schemas.Seats,
    responses=REFUSALS,
    tags=["seats"],
    summary="Change license auto-charge",
)
async def update_seats(request: Request, key: str, body: schemas.SeatsUpdate) -> schemas.Seats:
    """`auto_charge` and `max_seats` (null: no limit); a field left out keeps its value."""
    async with database(request).writing() as session:
        found = await workspace_service.require_workspace(session, key)
        ws = await seat_service.lock_workspace(session, found.id)
        fields = body.model_fields_set
        await scim_settings_service.set_license(
            session,
            ws,
            auto_charge=ws.license_auto_charge if body.auto_charge is None else body.auto_charge,
            max_seats=body.max_seats if "max_seats" in fields else ws.license_max_seats,
        )
        return await _seats(session, ws)


# --- domains ------------------------------------------------------------------------------------------


def _domain(entry: Any) -> schemas.Domain:
    return schemas.Domain(
        domain=entry.domain,
        verified=entry.verified_at is not None,
        verified_by=entry.verified_by,
        verified_at=entry.verified_at,
        txt_record=domain_service.txt_record(entry),
        last_error=entry.last_error,
    )


@router.get(
    "/workspaces/{key}/domains", response_model=list[schemas.Domain], tags=["domains"], summary="List domains"
)
async def list_domains(request: Request, key: str) -> list[schemas.Domain]:
    async with database(request).reading() as session:
        ws = await workspace_service.require_workspace(session, key)
        return [_domain(e) for e in await domain_service.list_domains(session, ws.id)]


@router.post(
    "/workspaces/{key}/domains",
    status_code=201,
    response_model=schemas.Domain,
    responses=REFUSALS,
    tags=["domains"],
    summary="Add a domain",
)
async def add_domain(request: Request, key: str, body: schemas.DomainCreate) -> schemas.Domain:
    """Claim an e-mail domain; publish its `txt_record` and verify it, or pass `verified: true` (the
    operator's override)."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        return _domain(
            await domain_service.add_domain(session, ws, body.domain, operator_verified=body.verified)
        )


@router.post(
    "/workspaces/{key}/domains/{domain}/verify",
    response_model=schemas.Domain,
    responses=REFUSALS,
    tags=["domains"],
    summary="Verify a domain by DNS",
)
async def verify_domain(request: Request, key: str, domain: str) -> schemas.Domain:
    """Look the TXT record up; the answer says whether the domain is now verified (and `last_error` why
    not)."""
    db = database(request)
    async with db.reading() as session:  # an unknown domain is refused before any DNS lookup
        await domain_service.domain_to_verify(
            session, await workspace_service.require_workspace(session, key), domain
        )
    check = await domain_service.check_txt(_settings(request), domain)  # outside any transaction
    async with db.writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        return _domain(await domain_service.record_check(session, ws, domain, check))


@router.delete(
    "/workspaces/{key}/domains/{domain}",
    status_code=204,
    responses=REFUSALS,
    tags=["domains"],
    summary="Remove a domain",
)
async def remove_domain(request: Request, key: str, domain: str) -> Response:
    """The last verified domain cannot go while SCIM is on."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        await domain_service.remove_domain(session, ws, domain)
    return Response(status_code=204)


# --- console admins -----------------------------------------------------------------------------------


@router.get(
    "/workspaces/{key}/admins", response_model=list[schemas.Admin], tags=["admins"], summary="List admins"
)
async def list_admins(request: Request, key: str) -> list[schemas.Admin]:
    async with database(request).reading() as session:
        ws = await workspace_service.require_workspace(session, key)
        return [
            schemas.Admin(email=a.email, since=a.since, added_by=a.added_by, password_set=a.has_password)
            for a in await workspace_admin_service.list_admins(session, ws.id)
        ]


@router.post(
    "/workspaces/{key}/admins",
    status_code=201,
    response_model=schemas.AddedAdmin,
    responses=REFUSALS,
    tags=["admins"],
    summary="Add an admin",
)
async def add_admin(
    request: Request, key: str, body: schemas.AdminCreate, api_key: Key
) -> schemas.AddedAdmin:
    """Make the address an admin of the workspace's console; an account without a password gets a
    one-time set-password link (72 hours), returned only now."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        added = await workspace_admin_service.add_admin(
            session, ws, body.email, actor=api_keys.actor(api_key)
        )
    url = (
        workspace_admin_service.set_password_url(_settings(request).public_base, added.token)
        if added.token is not None
        else None
    )
    return schemas.AddedAdmin(email=added.email, created=added.created, set_password_url=url)


@router.delete(
    "/workspaces/{key}/admins/{email}",
    status_code=204,
    responses=REFUSALS,
    tags=["admins"],
    summary="Remove an admin",
)
async def remove_admin(request: Request, key: str, email: str) -> Response:
    """The last admin of a workspace cannot be removed."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        admin = await workspace_admin_service.workspace_admin(session, ws.id, email=email)
        await workspace_admin_service.remove_admin(session, ws, admin.id)
    return Response(status_code=204)


# --- SCIM provisioning --------------------------------------------------------------------------------


def _logged(entry: connection_service.LoggedRequest | None) -> schemas.LoggedRequest | None:
    if entry is None:
        return None
    return schemas.LoggedRequest(
        at=entry.at, operation=entry.action, status=entry.status, detail=entry.detail
    )


async def _scim(request: Request, session: Any, ws: WorkspaceRow) -> schemas.Scim:
    urls = scim_settings_service.scim_urls(_settings(request), ws.key)
    status = await connection_service.connection_status(session, ws)
    return schemas.Scim(
        enabled=ws.scim_enabled,
        method=ScimMethod(ws.scim_auth_method),
        tenant_url=urls.tenant_url,
        token_url=urls.token_url,
        authorization_url=urls.authorization_url,
        connection=schemas.Connection(
            connected=status.connected,
            last_success=_logged(status.last_success),
            last_failure=_logged(status.last_failure),
            requests_24h=status.requests_24h,
            failures_24h=status.failures_24h,
            idp=status.idp,
            credential_last_used=status.credential_last_used,
        ),
    )


@router.get("/workspaces/{key}/scim", response_model=schemas.Scim, tags=["scim"], summary="SCIM status")
async def get_scim(request: Request, key: str) -> schemas.Scim:
    """Whether SCIM is on, how identity providers authenticate, the URLs they need, and the connection
    status the console shows."""
    async with database(request).reading() as session:
        return await _scim(request, session, await workspace_service.require_workspace(session, key))


@router.patch(
    "/workspaces/{key}/scim",
    response_model=schemas.Scim,
    responses=REFUSALS,
    tags=["scim"],
    summary="Change SCIM",
)
async def update_scim(request: Request, key: str, body: schemas.ScimUpdate, api_key: Key) -> schemas.Scim:
    """Turn SCIM on (it needs a verified domain) or off, or switch the authentication method (the previous
    method's credentials stop working at once; issue new ones in the console or with
    `provisio scim configure`)."""
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        if body.method is not None:
            await scim_settings_service.set_method(session, ws, body.method)
        if body.enabled is not None:
            await scim_settings_service.set_enabled(
                session, ws, body.enabled, by=api_keys.event_actor(api_key)
            )
        return await _scim(request, session, ws)
