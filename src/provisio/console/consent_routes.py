"""The consent page: the authorization endpoint (RFC 6749 §3.1) as a workspace admin meets it. The
console owns the screen (sign-in, session, CSRF, templates); ``provisio.oauth`` decides what the request
means and issues the code."""

from __future__ import annotations

from urllib.parse import quote

import structlog
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings
from provisio.console import csrf
from provisio.console.deps import LoginRequired, may_administer, request_path
from provisio.console.sessions import SignedIn, signed_in
from provisio.console.templating import render
from provisio.db.engine import Database
from provisio.oauth import consent
from provisio.oauth.bridge import OAuthTransaction, oauth_transaction
from provisio.oauth.grants import Grantor
from provisio.oauth.requests import StarletteOAuth2Request, read_authorization_request

log = structlog.get_logger("provisio.oauth")
router = APIRouter(include_in_schema=False)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _outcome_page(request: Request, outcome: consent.Outcome, who: SignedIn | None) -> Response:
    if isinstance(outcome, Response):
        return outcome
    if isinstance(outcome, consent.InvalidAuthorization):
        key = request.path_params.get("workspace_key")
        settings_url = f"/console/workspaces/{quote(key, safe='')}/settings/advanced" if key else "/console/"
        context = {"error": outcome, "who": who, "workspace_key": key, "settings_url": settings_url}
        return render(request, "oauth_error.html", context, 400)
    if isinstance(outcome, consent.NotAdmin):
        context = {"workspace_name": outcome.workspace_name, "who": who, "next": request_path(request)}
        return render(request, "consent_refused.html", context, 403)
    raise AssertionError(outcome)  # pragma: no cover


async def _checked(
    request: Request,
    transaction: OAuthTransaction,
    oauth_request: StarletteOAuth2Request,
    workspace_key: str | None,
    who: SignedIn | None,
) -> tuple[object, consent.ConsentRequest] | consent.Outcome:
    """A valid authorization request that ``who`` may answer (an admin of its workspace), or why not."""
    result = await transaction.run(lambda s: consent.validate(s, oauth_request, workspace_key))
    if not isinstance(result, tuple):
        return result
    if who is None:
        raise LoginRequired(request_path(request))
    workspace = result[1]
    if not await may_administer(transaction.session, who, workspace.workspace_id):
        return consent.NotAdmin(workspace.workspace_name)
    return result


async def _unreadable(request: Request, err: OAuth2Error) -> Response:
    """An authorization request too broken to trust any part of it: the error page, never a redirect."""
    failure = consent.InvalidAuthorization(err.error or "invalid_request", err.description or "")
    return _outcome_page(request, failure, await signed_in(request))


async def _authorize_get(request: Request, workspace_key: str | None) -> Response:
    try:
        oauth_request = read_authorization_request(request)
    except OAuth2Error as err:
        return await _unreadable(request, err)
    who = await signed_in(request)
    async with oauth_transaction(_db(request), _settings(request)) as transaction:
        result = await _checked(request, transaction, oauth_request, workspace_key, who)
    if not isinstance(result, tuple):
        return _outcome_page(request, result, who)
    context = {"consent": result[1], "who": who, "action": request_path(request)}
    return render(request, "consent.html", context)


async def _authorize_post(request: Request, workspace_key: str | None) -> Response:
    try:
        oauth_request = read_authorization_request(request)
    except OAuth2Error as err:
        return await _unreadable(request, err)
    who = await signed_in(request)
    if who is None:
        raise LoginRequired(request_path(request))
    try:
        form = await csrf.verify(request)  # bound to ``who``'s session
    except HTTPException as exc:  # a body the form parser gives up on (too many fields, broken multipart)
        return await _unreadable(request, InvalidRequestError(f"Unreadable form ({exc.status_code})."))
    allow = form.get("decision") == "allow"
    grantor = Grantor(id=who.admin_id, email=who.email)
    async with oauth_transaction(_db(request), _settings(request)) as transaction:
        result = await _checked(request, transaction, oauth_request, workspace_key, who)
        if isinstance(result, tuple):
            grant = result[0]
            result = await transaction.run(lambda s: consent.respond(s, oauth_request, grant, grantor, allow))
    if isinstance(result, Response):
        log.info("oauth.authorization", admin=who.admin_id, allowed=allow, status=result.status_code)
    return _outcome_page(request, result, who)


@router.get("/oauth/{workspace_key}/authorize")
async def authorize_workspace(request: Request, workspace_key: str) -> Response:
    return await _authorize_get(request, workspace_key)


@router.post("/oauth/{workspace_key}/authorize")
async def authorize_workspace_decision(request: Request, workspace_key: str) -> Response:
    return await _authorize_post(request, workspace_key)


@router.get("/oauth/authorize")
async def authorize(request: Request) -> Response:
    return await _authorize_get(request, None)


@router.post("/oauth/authorize")
async def authorize_decision(request: Request) -> Response:
    return await _authorize_post(request, None)
