"""OAuth HTTP endpoints that clients call: token, revocation and metadata. Thin: each reads the request,
runs Authlib through the bridge, and returns what comes back. The authorization endpoint is a page for
a person, so the console serves it (``provisio.console.consent_routes``), calling ``oauth.consent``."""

from __future__ import annotations

import structlog
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response

from provisio.config import Settings
from provisio.db.engine import Database
from provisio.oauth.bridge import with_server
from provisio.oauth.metadata import server_metadata
from provisio.oauth.requests import read_client_request
from provisio.oauth.server import error_response

log = structlog.get_logger("provisio.oauth")
router = APIRouter(include_in_schema=False)
OTHER_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE"]


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    try:
        oauth_request = await read_client_request(request)
    except OAuth2Error as err:
        return error_response(err)
    response: Response = await with_server(
        _db(request), _settings(request), lambda s: s.create_token_response(oauth_request)
    )
    log.info("oauth.token", grant_type=oauth_request.form.get("grant_type"), status=response.status_code)
    return response


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    try:
        oauth_request = await read_client_request(request)
    except OAuth2Error as err:
        return error_response(err)
    response: Response = await with_server(
        _db(request), _settings(request), lambda s: s.create_endpoint_response("revocation", oauth_request)
    )
    return response


@router.api_route("/oauth/token", methods=OTHER_METHODS)
@router.api_route("/oauth/revoke", methods=OTHER_METHODS)
async def not_post(request: Request) -> Response:
    """RFC 6749 §3.2 and RFC 7009 §2.1: POST only, refused in the protocol's own terms."""
    response = error_response(InvalidRequestError("Use POST.", status_code=405))
    response.headers["Allow"] = "POST"
    return response


@router.get("/.well-known/oauth-authorization-server")
async def metadata(request: Request) -> JSONResponse:
    return JSONResponse(
        server_metadata(_settings(request)), headers={"Cache-Control": "public, max-age=3600"}
    )
