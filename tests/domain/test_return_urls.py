"""The allow-list of sign-in links' return URLs (PROVISIO_PORTAL_RETURN_URLS): parsed URLs compared part
by part, never as string prefixes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from provisio.config import Settings
from provisio.domain.errors import DomainError, Kind
from provisio.domain.return_urls import check_return_url, display_host, parse_allowed

ALLOWED = parse_allowed(
    "https://app.example.com, https://admin.example.org/settings/, http://127.0.0.1:5555, http://localhost"
)


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/anything/at/all?tab=scim#top",
        "https://APP.Example.com/x",  # hosts are case-insensitive
        "https://app.example.com:443/x",  # the default port, written out
        "https://admin.example.org/settings",
        "https://admin.example.org/settings/",
        "https://admin.example.org/settings/scim?x=1",
        "http://127.0.0.1:5555/back",
        "http://localhost/",
    ],
)
def test_accepted(url: str) -> None:
    assert check_return_url(url, ALLOWED) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com.evil.com/",  # a longer host is another host
        "https://evil.com/https://app.example.com",
        "https://app.example.com@evil.com/",  # a user name: refused outright
        "https://evil.com#@app.example.com",
        "https://app.example.com:8443/",  # another port
        "http://app.example.com/",  # another scheme
        "https://sub.app.example.com/",
        "https://admin.example.org/settings-old",  # a path prefix ends at a segment
        "https://admin.example.org/",
        "https://admin.example.org/Settings/scim",  # paths are case-sensitive
        "https://admin.example.org/settings/../admin",  # a browser would ask for /admin
        "https://admin.example.org/settings/%2e%2E/admin",
        "https://app.example.com\\@evil.com/",  # backslash, which browsers read as /
        "https://app.example.com/ x",
        "https://app.example.com/\u00e9",
        "javascript:alert(1)",
        "//app.example.com/",
        "https:app.example.com",
        "ftp://app.example.com/",
        "http://127.0.0.1:5556/",
        "http://127.0.0.1:99999/",
        "",
        "https://app.example.com/" + "a" * 2000,
        "https://[::1/settings",  # an unclosed bracket
        "https://[app.example.com]/settings",  # brackets hold an IPv6 address only
        "https://[::1]x/",
    ],
)
def test_refused(url: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_return_url(url, ALLOWED)
    assert refused.value.kind is Kind.INVALID
    assert "return_url" in refused.value.detail


def test_an_empty_list_accepts_nothing() -> None:
    assert parse_allowed("") == () == parse_allowed(" , ")
    with pytest.raises(DomainError) as refused:
        check_return_url("https://app.example.com/", ())
    assert "PROVISIO_PORTAL_RETURN_URLS" in refused.value.detail


@pytest.mark.parametrize(
    "entry",
    [
        "http://app.example.com",  # plain http off loopback
        "app.example.com",
        "https://app.example.com/?tab=x",
        "https://app.example.com/#x",
        "https://user@app.example.com",
        "https://app.example.com/a/../b",
        "https://",
        "https://[::1/settings",
        "https://[app.example.com]",
    ],
)
def test_a_bad_entry_stops_the_configuration(entry: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(portal_return_urls=f"https://ok.example.com, {entry}")
    assert "PROVISIO_PORTAL_RETURN_URLS" in str(refused.value)


def test_entries_are_normalised() -> None:
    settings = Settings(portal_return_urls="HTTPS://App.Example.com:443/a/, http://[::1]:8080")
    assert [str(e) for e in settings.portal_return_url_prefixes] == [
        "https://app.example.com/a",
        "http://[::1]:8080",
    ]
    assert check_return_url("http://[::1]:8080/x", settings.portal_return_url_prefixes)


def test_display_host() -> None:
    assert display_host("https://app.example.com/settings?x=1") == "app.example.com"
    assert display_host("http://127.0.0.1:5555/") == "127.0.0.1:5555"
