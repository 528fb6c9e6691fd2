"""Operator API keys on every ``/api/v1`` request: ``Authorization: Bearer <key>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from provisio.api.problems import Problem
from provisio.db.engine import Database
from provisio.db.models import ApiKey, utcnow
from provisio.domain import api_keys

# Declared for the OpenAPI document (the "Authorize" button of /api/docs); checked below, so that a
# refusal is a problem document rather than the framework's 403.
bearer = HTTPBearer(auto_error=False, description="An operator API key: `provisio apikey create NAME`.")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="provisio"'}


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def operator_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiKey:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Problem(
            401,
            "Send an operator API key as Authorization: Bearer <key> "
            "(make one with `provisio apikey create NAME`).",
            CHALLENGE,
        )
    db = database(request)
    async with db.reading() as session:
        key = await api_keys.find_live_key(session, credentials.credentials)
    if key is None:
        raise Problem(
            401,
            "The API key is not valid: it is unknown or has been revoked.",
            {"WWW-Authenticate": 'Bearer realm="provisio", error="invalid_token"'},
        )
    now = utcnow()
    if api_keys.use_is_stale(key, now):
        async with db.writing() as session:
            await api_keys.note_use(session, key.id, now)
    request.state.api_key_actor = api_keys.actor(key)
    return key
