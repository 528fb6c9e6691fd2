"""The 503 a client gets when the database cannot answer, in each surface's own form, whoever asks.

The answer is built when nothing about the request could be read from the database, not even who is
signed in: a browser with a session cookie gets the same page as one without.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from provisio.retry import unavailable_response
from provisio.surfaces import Surface, surface


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/scim/v2/acme/Users", Surface.SCIM),
        ("/scim", Surface.SCIM),
        ("/oauth/token", Surface.OAUTH_CLIENT),
        ("/oauth/revoke", Surface.OAUTH_CLIENT),
        ("/.well-known/oauth-authorization-server", Surface.OAUTH_CLIENT),
        ("/oauth/acme/authorize", Surface.PAGE),
        ("/oauth/authorize", Surface.PAGE),
        ("/console", Surface.PAGE),
        ("/console/workspaces/acme/members", Surface.PAGE),
        ("/consolefoo", Surface.OTHER),
        ("/scimx", Surface.OTHER),
        ("/api/v1/workspaces", Surface.API),
        ("/api/v1", Surface.API),
        ("/api/docs", Surface.OTHER),
        ("/healthz", Surface.OTHER),
    ],
)
def test_surface_of_a_path(path: str, expected: Surface) -> None:
    assert surface(path) is expected


def _scope(app: Any, path: str, cookie: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"cookie", cookie)] if cookie else [],
        "app": app,
        "state": {},
    }


@pytest.mark.parametrize("cookie", [b"", b"provisio_session=" + b"x" * 43])
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/scim/v2/acme/Users", "application/scim+json"),
        ("/oauth/token", "application/json"),
        ("/oauth/acme/authorize", "text/html"),
        ("/console/workspaces/acme/members", "text/html"),
        ("/healthz", "text/plain"),
        ("/api/v1/workspaces", "application/problem+json"),
    ],
)
def test_unavailable_answer(app: Any, path: str, content_type: str, cookie: bytes) -> None:
    response = unavailable_response(_scope(app, path, cookie))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"].startswith(content_type)
    body = bytes(response.body)
    if content_type == "application/scim+json":
        document = orjson.loads(body)
        assert document["status"] == "503" and document["detail"]
    elif content_type == "application/json":
        assert orjson.loads(body)["error"] == "temporarily_unavailable"
    elif content_type == "application/problem+json":
        document = orjson.loads(body)
        assert document["status"] == 503 and document["detail"]
    elif content_type == "text/html":
        assert b"Temporarily unavailable" in body
