"""``POST /api/v1/workspaces/{key}/portal-links``: a single-use sign-in link into the console, for the
host application's *Configure SCIM* button (rules in ``provisio.domain.portal_links``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from provisio.api.auth import database, operator_key
from provisio.api.problems import PROBLEM, Problem
from provisio.api.schemas import Body
from provisio.config import Settings
from provisio.db.models import ApiKey
from provisio.domain import portal_links
from provisio.domain import workspaces as workspace_service
from provisio.domain.return_urls import MAX_LENGTH as RETURN_URL_MAX_LENGTH

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**PROBLEM, "description": "No API key, or one unknown or revoked."},
    404: {**PROBLEM, "description": "No workspace with that key."},
    422: {
        **PROBLEM,
        "description": "An invalid e-mail address, or a return_url the allow-list does not accept; "
        "`errors` names each field.",
    },
}

router = APIRouter(prefix="/api/v1", dependencies=[Depends(operator_key)], responses=ERRORS)
Key = Annotated[ApiKey, Depends(operator_key)]


class PortalLinkCreate(Body):
    email: str = Field(
        min_length=1, max_length=320, description="The person to sign in, as the host application knows them."
    )
    return_url: str | None = Field(
        None,
        max_length=RETURN_URL_MAX_LENGTH,
        description="Where the console's *Back to <host>* link leads; PROVISIO_PORTAL_RETURN_URLS must "
        "accept it.",
    )


class PortalLink(BaseModel):
    url: str = Field(description="Open it in the person's browser (a redirect): it works once.")
    expires_at: datetime = Field(description="Five minutes from now; unused, the link stops working then.")
    workspace: str = Field(description="The workspace's key.")
    email: str
    return_url: str | None


@router.post(
    "/workspaces/{key}/portal-links",
    status_code=201,
    response_model=PortalLink,
    tags=["admins"],
    summary="Make a sign-in link",
)
async def create_portal_link(request: Request, key: str, body: PortalLinkCreate, api_key: Key) -> PortalLink:
    """A single-use link (5 minutes) that signs the person in to the console as an admin of this
    workspace, making them one if they are not yet, and lands on its SCIM settings. Send the browser
    there at once; do not e-mail it. The session it starts reaches this workspace only."""
    settings: Settings = request.app.state.settings
    async with database(request).writing() as session:
        ws = await workspace_service.require_workspace(session, key)
        try:
            issued = await portal_links.create_link(
                session,
                ws,
                body.email,
                return_url=body.return_url,
                allowed=settings.portal_return_url_prefixes,
                api_key_id=api_key.id,
            )
        except portal_links.InvalidLinkRequest as exc:
            errors = [{"field": f, "in": "body", "detail": d} for f, d in exc.fields.items()]
            raise Problem(422, exc.detail, errors=errors) from None
    return PortalLink(
        url=portal_links.portal_url(settings.public_base, issued.token),
        expires_at=issued.expires_at,
        workspace=ws.key,
        email=issued.email,
        return_url=issued.return_url,
    )
