"""X-Request-Id: taken from a proxy when sane, generated otherwise, returned on every response."""

from __future__ import annotations

import re

import pytest

from provisio.request_id import accepted


@pytest.mark.parametrize(
    "path", ["/healthz", "/console/login", "/scim/v2/nope/Users", "/oauth/token", "/nothing"]
)
async def test_every_response_has_a_generated_id(client, path):
    response = await client.get(path)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_ids_differ_per_request(client):
    first = (await client.get("/healthz")).headers["x-request-id"]
    second = (await client.get("/healthz")).headers["x-request-id"]
    assert first != second


async def test_a_proxys_id_is_kept(client):
    response = await client.get("/healthz", headers={"X-Request-Id": "lb-42:abc"})
    assert response.headers["x-request-id"] == "lb-42:abc"


@pytest.mark.parametrize(
    "value", [b"", b"has space", b'quote"d', b"x" * 129, "caf\u00e9".encode(), b"a\x01b", b"a,b"]
)
def test_an_unusable_proxy_id_is_replaced(value):
    assert accepted(value) is None
