"""The SCIM HTTP API, one tenant per workspace: ``/scim/v2/{workspace}/…``.

Handlers stay thin: read the request, call a domain service, serialise. Every failure leaves as a SCIM
Error (RFC 7644 §3.12) through ``ScimRoute``; state changes and failures land in the provisioning log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.db.models import Member, Workspace
from provisio.domain import members as member_service
from provisio.domain.errors import DomainError
from provisio.domain.events import record_event
from provisio.scim import discovery
from provisio.scim.auth import Unauthorized, authenticate
from provisio.scim.errors import (
    INVALID_SYNTAX,
    INVALID_VALUE,
    ScimError,
)
from provisio.scim.listing import (
    Cursor,
    ListParams,
    after_cursor,
    decode_cursor,
    encode_cursor,
    filter_clause,
    order_by,
    parse_params,
    sort_key,
)
from provisio.scim.patch import apply_patch
from provisio.scim.responses import ScimResponse, error_response, from_domain
from provisio.scim.schemas import LIST_RESPONSE_SCHEMA, SEARCH_REQUEST_SCHEMA, user_schema
from provisio.scim.serialize import Projection, etag, scim_datetime, user_resource
from provisio.scim.values import normalise_document

log = structlog.get_logger("provisio.scim")


class ScimRoute(APIRoute):
    """Turns every exception a SCIM handler raises into a SCIM Error response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthorized as exc:
                return error_response(exc, {"WWW-Authenticate": exc.challenge})
            except MethodNotAllowed as exc:
                return error_response(exc, {"Allow": exc.allow})
            except ScimError as exc:
                return error_response(exc)
            except DomainError as exc:
                return error_response(from_domain(exc))
            except RequestValidationError as exc:
                return error_response(ScimError(400, _validation_detail(exc), INVALID_VALUE))
            except Exception:
                log.exception("scim.internal_error", path=request.url.path, method=request.method)
                return error_response(
                    ScimError(
                        500, "The server failed to handle this request; it has been logged. Retry later."
                    )
                )

        return scim_handler


INTERNAL_ERROR = ScimError(500, "The server failed to handle this request; it has been logged. Retry later.")


class MethodNotAllowed(ScimError):
    def __init__(self, detail: str, allow: str) -> None:
        super().__init__(405, detail)
        self.allow = allow


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "header", "path", "body"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "Invalid request: " + "; ".join(parts)


router = APIRouter(prefix="/scim/v2/{workspace_key}", route_class=ScimRoute)


@dataclass
class ScimContext:
    db: Database
    settings: Settings
    workspace: Workspace
    base: str  # the Tenant URL
    actor: str

    def location(self, member_id: str) -> str:
        return f"{self.base}/Users/{member_id}"


async def scim_context(
    request: Request,
    workspace_key: str,
    authorization: str | None = Header(default=None),
) -> ScimContext:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    caller = await authenticate(db, workspace_key, authorization)
    return ScimContext(
        db=db,
        settings=settings,
        workspace=caller.workspace,
        base=settings.tenant_url(caller.workspace.key),
        actor=caller.actor,
    )


async def read_json(request: Request, max_bytes: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    if not body.strip():
        raise ScimError(400, "The request has no body: send a JSON document.", INVALID_SYNTAX)
    if b"\\u0000" in body:
        # JSON allows an escaped NUL, but no stored text can hold one (PostgreSQL refuses it).
        raise ScimError(
            400, "The request contains a NUL character (\\u0000), which no value may contain.", INVALID_VALUE
        )
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise ScimError(400, f"The request body is not valid JSON: {exc}.", INVALID_SYNTAX) from None


def _too_large(max_bytes: int) -> ScimError:
    return ScimError(413, f"The request body is larger than this server accepts ({max_bytes} bytes).")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object.", INVALID_SYNTAX)
    return body


def _if_match(header: str | None) -> list[int] | None:
    """Versions named by If-Match (``*`` or absent: any)."""
    if header is None or header.strip() == "*":
        return None
    versions = []
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        if tag.isdigit():
            versions.append(int(tag))
    return versions


def _resource_response(
    ctx: ScimContext,
    member: Member,
    request: Request,
    status: int = 200,
    projection: Projection | None = None,
) -> Response:
    resource = user_resource(member, ctx.location(member.id))
    if projection is None:
        projection = Projection.parse(
            user_schema(),
            request.query_params.get("attributes"),
            request.query_params.get("excludedAttributes"),
        )
    headers = {"ETag": etag(member.version), "Location": ctx.location(member.id)}
    return ScimResponse(projection.apply(user_schema(), resource), status_code=status, headers=headers)


async def _write(
    ctx: ScimContext,
    action: str,
    operation: Callable[[Any], Awaitable[Member | None]],
    *,
    status: int,
    user_name: str | None = None,
    member_id: str | None = None,
) -> Member | None:
    """Run ``operation`` in one write transaction and log the outcome. A failure rolls everything back
    and is logged in a transaction of its own, so the IdP's error is in the provisioning log too."""
    try:
        async with ctx.db.writing() as session:
            member = await operation(session)
            await record_event(
                session,
                workspace_id=ctx.workspace.id,
                actor=ctx.actor,
                action=action,
                outcome="success",
                status=status,
                member_id=member.id if member else member_id,
                user_name=member.user_name if member else user_name,
            )
            return member
    except (ScimError, DomainError) as exc:
        error = exc if isinstance(exc, ScimError) else from_domain(exc)
        await _log_failure(ctx, action, user_name, member_id, error)
        raise
    except Exception:
        await _log_failure(ctx, action, user_name, member_id, INTERNAL_ERROR)
        raise


async def _log_failure(
    ctx: ScimContext, action: str, user_name: str | None, member_id: str | None, error: ScimError
) -> None:
    log.info(
        "scim.failure", workspace=ctx.workspace.key, action=action, status=error.status, detail=error.detail
    )
    async with ctx.db.writing() as session:
        await record_event(
            session,
            workspace_id=ctx.workspace.id,
            actor=ctx.actor,
            action=action,
            outcome="failure",
            status=error.status,
            member_id=member_id,
            user_name=user_name,
            detail=error.detail,
        )


def _user_document(body: Any) -> dict[str, Any]:
    # readOnly attributes (id, meta, groups) in a request body are ignored (RFC 7644 §3.3, §3.5.1).
    doc = normalise_document(_object(body), user_schema(), drop_read_only=True)
    if not isinstance(doc.get("userName"), str) or not doc["userName"].strip():
        raise ScimError(400, "userName is required: it is the user's unique identifier.", INVALID_VALUE)
    return doc


# --- discovery ---------------------------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
async def service_provider_config(ctx: ScimContext = Depends(scim_context)) -> Response:
    return ScimResponse(discovery.service_provider_config(ctx.settings, ctx.base))


def _list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@router.get("/ResourceTypes")
async def resource_types(ctx: ScimContext = Depends(scim_context)) -> Response:
    return ScimResponse(_list_response(discovery.resource_types(ctx.base)))


@router.get("/ResourceTypes/{type_id}")
async def resource_type(type_id: str, ctx: ScimContext = Depends(scim_context)) -> Response:
    for rt in discovery.resource_types(ctx.base):
        if rt["id"] == type_id:
            return ScimResponse(rt)
    raise ScimError(404, f"No resource type {type_id!r}: this server serves User.")


@router.get("/Schemas")
async def schemas(ctx: ScimContext = Depends(scim_context)) -> Response:
    return ScimResponse(_list_response(discovery.schemas(ctx.base)))


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, ctx: ScimContext = Depends(scim_context)) -> Response:
    for doc in discovery.schemas(ctx.base):
        if doc["id"] == schema_id:
            return ScimResponse(doc)
    raise ScimError(404, f"No schema {schema_id!r}.")


# --- Users -------------------------------------------------------------------------------------------


async def _list(ctx: ScimContext, params: ListParams) -> Response:
    schema = user_schema()
    projection = Projection.parse(schema, params.attributes, params.excluded_attributes)
    where = filter_clause(params, schema, ctx.db.dialect)
    key = sort_key(schema, params.sort_by)
    secret = ctx.settings.secret_key.encode()
    body: dict[str, Any] = {"schemas": [LIST_RESPONSE_SCHEMA]}
    cursor = decode_cursor(secret, params, params.cursor) if params.cursor else None
    async with ctx.db.reading() as session:
        page = await member_service.list_members(
            session,
            ctx.workspace,
            where=where,
            order_by=order_by(key, params.descending),
            # Index pagination skips rows; cursor pagination starts after the cursor's row and reads one
            # row more than it returns, to know whether there is a next page.
            offset=params.start_index - 1 if params.cursor is None else 0,
            limit=params.count if params.cursor is None else params.count + 1,
            keyset=after_cursor(key, params.descending, cursor) if cursor else None,
            key=key,
            columns=member_service.RESOURCE_COLUMNS,
        )
    members = page.members[: params.count]
    body["totalResults"] = page.total
    body["itemsPerPage"] = len(members)
    if params.cursor is None:
        body["startIndex"] = params.start_index
    elif len(page.members) > params.count and members:
        last = Cursor(page.keys[len(members) - 1], members[-1].id)
        body["nextCursor"] = encode_cursor(secret, params, last, ctx.settings.scim_cursor_ttl_seconds)
    body["Resources"] = [projection.apply(schema, user_resource(m, ctx.location(m.id))) for m in members]
    return ScimResponse(body)


@router.get("/Users")
async def list_users(request: Request, ctx: ScimContext = Depends(scim_context)) -> Response:
    params = parse_params(dict(request.query_params), ctx.settings.scim_max_results)
    return await _list(ctx, params)


@router.post("/Users/.search")
async def search_users(request: Request, ctx: ScimContext = Depends(scim_context)) -> Response:
    body = _object(await read_json(request, ctx.settings.scim_max_request_bytes))
    if SEARCH_REQUEST_SCHEMA not in body.get("schemas", []):
        raise ScimError(
            400, f"A search request must list the schema {SEARCH_REQUEST_SCHEMA}.", INVALID_SYNTAX
        )
    params = parse_params({k: v for k, v in body.items() if k != "schemas"}, ctx.settings.scim_max_results)
    return await _list(ctx, params)


@router.post("/Users")
async def create_user(request: Request, ctx: ScimContext = Depends(scim_context)) -> Response:
    body = await read_json(request, ctx.settings.scim_max_request_bytes)
    user_name = body.get("userName") if isinstance(body, dict) else None

    async def create(session: Any) -> Member:
        return await member_service.create_member(
            session, ctx.workspace, _user_document(body), actor=ctx.actor
        )

    member = await _write(
        ctx, "create", create, status=201, user_name=user_name if isinstance(user_name, str) else None
    )
    assert member is not None
    return _resource_response(ctx, member, request, status=201)


@router.get("/Users/{member_id}")
async def get_user(
    member_id: str,
    request: Request,
    ctx: ScimContext = Depends(scim_context),
    if_none_match: str | None = Header(default=None),
) -> Response:
    async with ctx.db.reading() as session:
        member = await member_service.get_member(session, ctx.workspace, member_id)
    if if_none_match and member.version in (_if_match(if_none_match) or []):
        return Response(status_code=304, headers={"ETag": etag(member.version)})
    return _resource_response(ctx, member, request)


@router.put("/Users/{member_id}")
async def replace_user(
    member_id: str,
    request: Request,
    ctx: ScimContext = Depends(scim_context),
    if_match: str | None = Header(default=None),
) -> Response:
    body = await read_json(request, ctx.settings.scim_max_request_bytes)
    user_name = body.get("userName") if isinstance(body, dict) else None

    async def replace(session: Any) -> Member:
        member = await member_service.get_member(session, ctx.workspace, member_id, lock=True)
        member_service.check_version(member, _if_match(if_match))
        doc = _user_document(body)
        # PUT replaces what the client may write; readOnly and immutable attributes stay the server's.
        if member.external_id and doc.get("externalId") is None:
            doc["externalId"] = member.external_id
        await member_service.replace_member(session, ctx.workspace, member, doc, actor=ctx.actor)
        return member

    action = _activity_action(body)
    member = await _write(
        ctx,
        action,
        replace,
        status=200,
        user_name=user_name if isinstance(user_name, str) else None,
        member_id=member_id,
    )
    assert member is not None
    return _resource_response(ctx, member, request)


def _activity_action(body: Any) -> str:
    if isinstance(body, dict) and body.get("active") in (False, "False", "false"):
        return "deactivate"
    return "update"


@router.patch("/Users/{member_id}")
async def patch_user(
    member_id: str,
    request: Request,
    ctx: ScimContext = Depends(scim_context),
    if_match: str | None = Header(default=None),
) -> Response:
    body = _object(await read_json(request, ctx.settings.scim_max_request_bytes))

    async def patch(session: Any) -> Member:
        member = await member_service.get_member(session, ctx.workspace, member_id, lock=True)
        member_service.check_version(member, _if_match(if_match))
        result = apply_patch(member.doc, body, user_schema())
        if result.changed:
            await member_service.replace_member(
                session, ctx.workspace, member, _user_document(result.document), actor=ctx.actor
            )
        return member

    member = await _write(ctx, "patch", patch, status=200, member_id=member_id)
    assert member is not None
    return _resource_response(ctx, member, request)


@router.delete("/Users/{member_id}")
async def delete_user(
    member_id: str,
    ctx: ScimContext = Depends(scim_context),
    if_match: str | None = Header(default=None),
) -> Response:
    async def delete(session: Any) -> Member:
        member = await member_service.get_member(session, ctx.workspace, member_id, lock=True)
        member_service.check_version(member, _if_match(if_match))
        await member_service.delete_member(session, ctx.workspace, member)
        return member

    await _write(ctx, "delete", delete, status=204, member_id=member_id)
    return Response(status_code=204)


@router.post("/.search")
async def search_root(request: Request, ctx: ScimContext = Depends(scim_context)) -> Response:
    """Root-level search (RFC 7644 §3.4.3): this server's only resource type is User."""
    return await search_users(request, ctx)


# Endpoints that exist, with the methods they allow (for 405 answers).
_ALLOWED = {
    "serviceproviderconfig": "GET",
    "resourcetypes": "GET",
    "schemas": "GET",
    "users": "GET, POST",
}


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unknown(rest: str, request: Request, ctx: ScimContext = Depends(scim_context)) -> Response:
    parts = [p for p in rest.split("/") if p]
    head = parts[0].lower() if parts else ""
    if head in _ALLOWED:
        allowed = _ALLOWED[head]
        if head == "users" and len(parts) == 2:
            allowed = "GET, PUT, PATCH, DELETE"
        known = len(parts) <= (2 if head in ("users", "resourcetypes", "schemas") else 1)
        if known and request.method not in allowed.split(", "):
            raise MethodNotAllowed(f"{request.method} is not allowed on /{rest}: use {allowed}.", allowed)
    if head == "groups":
        raise ScimError(404, "Groups are not supported by this server: provision users only.")
    raise ScimError(
        404,
        f"No SCIM endpoint /{rest}: this server serves /Users, /Schemas, /ResourceTypes and "
        "/ServiceProviderConfig.",
    )


__all__ = ["router", "scim_datetime"]
