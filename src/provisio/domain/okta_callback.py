"""Okta's SCIM OAuth callback, derived from the Okta admin URL of the app instance (guide, Step 2).

``https://{org}-admin.{env}.com/admin/app/{appName}/instance/{id}/#tab-general`` gives
``https://system-admin.{env}.com/admin/app/cpc/{appName}/oauth/callback``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from provisio.domain.errors import DomainError, Kind

OKTA_ENVIRONMENTS = ("okta.com", "okta-emea.com", "oktapreview.com", "okta-gov.com", "okta.mil")
_APP_PATH = re.compile(r"^/admin/app/(?P<app>[A-Za-z0-9_.~-]+)/instance/[^/]+")


def okta_callback_from_admin_url(admin_url: str) -> str:
    try:
        parts = urlsplit(admin_url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        host, parts = "", urlsplit("")
    environment = next((env for env in OKTA_ENVIRONMENTS if host.endswith("." + env)), None)
    match = _APP_PATH.match(parts.path)
    if parts.scheme != "https" or environment is None or match is None:
        raise DomainError(
            Kind.INVALID,
            "That is not an Okta admin URL of an app instance. Open your app in the Okta Admin Console and "
            "copy the address, e.g. https://acme-admin.okta.com/admin/app/acme_app_1/instance/0oa1…/#tab-general",
        )
    return f"https://system-admin.{environment}/admin/app/cpc/{match['app']}/oauth/callback"
