"""Pure helpers behind the settings page."""

from __future__ import annotations

import pytest

from provisio.domain.errors import DomainError
from provisio.domain.okta_callback import okta_callback_from_admin_url
from provisio.domain.redirect_uris import validate_redirect_uri


@pytest.mark.parametrize(
    ("admin_url", "callback"),
    [
        (
            "https://acme-admin.okta.com/admin/app/acme_readai_1/instance/0oa1/#tab-general",
            "https://system-admin.okta.com/admin/app/cpc/acme_readai_1/oauth/callback",
        ),
        (
            "https://acme-admin.okta-emea.com/admin/app/readai/instance/0oa2",
            "https://system-admin.okta-emea.com/admin/app/cpc/readai/oauth/callback",
        ),
        (
            " https://dev-1-admin.oktapreview.com/admin/app/dev-1_app_2/instance/0oa3/ ",
            "https://system-admin.oktapreview.com/admin/app/cpc/dev-1_app_2/oauth/callback",
        ),
    ],
)
def test_okta_callback(admin_url: str, callback: str) -> None:
    assert okta_callback_from_admin_url(admin_url) == callback


@pytest.mark.parametrize(
    "bad",
    [
        "https://evil.example/admin/app/x/instance/y",
        "http://acme-admin.okta.com/admin/app/x/instance/y",
        "https://acme-admin.okta.com/admin/apps/active",
        "https://acme-admin.okta.com.evil.example/admin/app/x/instance/y",
        "",
    ],
)
def test_okta_callback_refuses_other_urls(bad: str) -> None:
    with pytest.raises(DomainError):
        okta_callback_from_admin_url(bad)


@pytest.mark.parametrize(
    "good", ["https://a.example/cb", "http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]:9/cb"]
)
def test_redirect_uris_accepted(good: str) -> None:
    assert validate_redirect_uri(f" {good} ") == good


@pytest.mark.parametrize(
    "bad",
    [
        "http://a.example/cb",
        "https://a.example/cb#x",
        "https://*.example/cb",
        "ftp://a.example",
        "https://u:p@a.example/",
    ],
)
def test_redirect_uris_refused(bad: str) -> None:
    with pytest.raises(DomainError):
        validate_redirect_uri(bad)
