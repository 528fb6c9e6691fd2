"""Fixtures for OAuth tests: a cookie-keeping "browser" on the ASGI app and an Authlib client factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

try:  # Authlib's client runs on httpx2 when it is installed, on httpx otherwise.
    import httpx2 as client_http
except ImportError:  # pragma: no cover
    import httpx as client_http  # type: ignore[no-redef]

from tests.conftest import BASE_URL


@pytest.fixture(autouse=True)
def _authlib_http_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client library refuses plain http; the test server is http://provisio.test over ASGI.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
async def browser(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A person's browser: keeps cookies, never follows redirects (the tests look at each hop)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


OAuthClientFactory = Callable[..., AsyncOAuth2Client]


@pytest.fixture
async def oauth_client(app: object) -> AsyncIterator[OAuthClientFactory]:
    """Make Authlib OAuth 2.0 clients (what Okta and Entra are, as far as we can tell) on the ASGI app."""
    made: list[AsyncOAuth2Client] = []

    def make(client_id: str, client_secret: str, **kwargs: object) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            client_id=client_id,
            client_secret=client_secret,
            transport=client_http.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url=BASE_URL,
            **kwargs,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
