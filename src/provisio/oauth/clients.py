"""The OAuth client Authlib sees: a workspace's live client with the workspace's redirect URIs."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError, UnauthorizedClientError
from sqlalchemy import select
from sqlalchemy.orm import Session

from provisio.db.models import OAuthClient, Workspace, utcnow
from provisio.domain.hashing import hash_secret, secret_matches
from provisio.domain.redirect_uris import redirect_uris_query
from provisio.domain.scim_methods import ScimMethod

SCIM_SCOPE = "scim"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# Compared with the presented secret in place of a missing one, so every check costs the same work.
UNUSED_HASH = hash_secret("no secret has this hash")
GRANT_TYPES = {
    ScimMethod.AUTHORIZATION_CODE.value: frozenset({"authorization_code", "refresh_token"}),
    ScimMethod.CLIENT_CREDENTIALS.value: frozenset({"client_credentials"}),
}


@dataclass(frozen=True)
class Client(ClientMixin):
    pk: str
    client_id: str
    secret_hash: str
    grant_method: str
    workspace_id: str
    workspace_key: str
    workspace_name: str
    redirect_uris: tuple[str, ...]
    scim_enabled: bool = True
    disabled: bool = False  # the workspace is disabled (``domain.workspaces``): no codes, no tokens
    # The secret a regeneration replaced, while its rotation window lasts (None otherwise).
    previous_secret_hash: str | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only unambiguous: with several registered URIs the client must say which one (RFC 6749 §3.1.2.3).
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        # One scope exists: full SCIM access to this workspace. Okta sends the scope its admin typed, or
        # none; requested values are not rejected but the granted scope is always "scim" (RFC 6749 §3.3).
        return SCIM_SCOPE

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_accepted(client_secret, self.secret_hash, self.previous_secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.grant_method == ScimMethod.AUTHORIZATION_CODE.value

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES.get(self.grant_method, frozenset())


def secret_accepted(secret: str, secret_hash: str, previous_hash: str | None) -> bool:
    """The current secret, or the previous one inside its rotation window. Both comparisons always run,
    so the answer takes as long whichever secret matched, and whether a window is open."""
    current = secret_matches(secret, secret_hash)
    previous = secret_matches(secret, previous_hash or UNUSED_HASH)
    return current or (previous_hash is not None and previous)


SCIM_OFF = (
    "SCIM provisioning is turned off for this workspace. A workspace admin can turn it on in Workspace "
    "settings > Advanced > SCIM."
)


def load_client(session: Session, client_id: str, *, with_redirect_uris: bool = True) -> Client | None:
    """The live client, whether or not its workspace has SCIM turned on: callers check ``scim_enabled``
    only once the client has authenticated (``require_enabled``), so the setting is not revealed to
    anyone who merely knows a client ID. Client authentication needs no redirect URIs, and without them
    finding a client is one query, as long as finding none."""
    row = session.execute(
        select(OAuthClient, Workspace)
        .join(Workspace, Workspace.id == OAuthClient.workspace_id)
        .where(OAuthClient.client_id == client_id, OAuthClient.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    client, workspace = row
    if workspace.scim_auth_method != client.grant_method:
        return None
    uris = session.execute(redirect_uris_query(workspace.id)).scalars() if with_redirect_uris else ()
    expires_at = client.previous_secret_expires_at
    previous_open = expires_at is not None and expires_at > utcnow()
    return Client(
        pk=client.id,
        client_id=client.client_id,
        secret_hash=client.secret_hash,
        grant_method=client.grant_method,
        workspace_id=workspace.id,
        workspace_key=workspace.key,
        workspace_name=workspace.name,
        redirect_uris=tuple(uris),
        scim_enabled=workspace.scim_enabled,
        disabled=workspace.disabled_at is not None,
        previous_secret_hash=client.previous_secret_hash if previous_open else None,
    )


# RFC 6749 §5.2 and §4.1.2.1 allow no quotes or non-ASCII characters in an error description.
WORKSPACE_DISABLED = (
    "This workspace is disabled, so no tokens or authorization codes are issued for it. The client "
    "credentials are valid: provisioning resumes when the workspace is enabled again."
)


def require_enabled(client: Client) -> Client:
    if not client.scim_enabled:
        raise InvalidClientError(status_code=401, description=SCIM_OFF)
    return client


def require_not_disabled(client: Client) -> Client:
    """A disabled workspace's client gets no token. ``unauthorized_client`` (400, RFC 6749 §5.2: "the
    authenticated client is not authorized to use this authorization grant type"), not
    ``invalid_client``: its authentication succeeded, and an identity provider told ``invalid_client``
    asks its admin for a new secret, which would not help. Its refresh token is left as it is, so the
    identity provider refreshes again once the workspace is enabled."""
    if client.disabled:
        raise UnauthorizedClientError(description=WORKSPACE_DISABLED)
    return client
