"""RFC 8414 metadata."""

from __future__ import annotations

import httpx
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from provisio.config import Settings
from provisio.oauth.metadata import server_metadata


async def test_metadata_endpoint(client: httpx.AsyncClient) -> None:
    r = await client.get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    doc = r.json()
    assert doc["issuer"] == "http://provisio.test"
    assert doc["token_endpoint"] == "http://provisio.test/oauth/token"
    assert doc["revocation_endpoint"] == "http://provisio.test/oauth/revoke"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}


def test_metadata_is_valid_for_an_https_deployment() -> None:
    settings = Settings(base_url="https://provisio.example.com/", secret_key="x")
    metadata = AuthorizationServerMetadata(server_metadata(settings))
    metadata.validate()
    assert metadata["issuer"] == "https://provisio.example.com"
    assert settings.secure_cookies
