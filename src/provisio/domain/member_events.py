"""What a member's host event says: the member as the host sees it, and which attributes a change moved.

Every member event (``member.created``, ``…updated``, ``…deactivated``, ``…reactivated``, ``…deleted``)
carries ``{"member": snapshot(...)}``; the changes of an existing member add ``"changed"``. Both are
built from the document already in memory, as plain JSON types, so an event costs no read.

``changed`` names top-level SCIM attributes as the document spells them (``emails``, ``title``,
``active``), except inside ``name`` (``name.givenName``) and the enterprise extension
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``), which are named per
sub-attribute; a multi-valued attribute (``emails``, ``phoneNumbers``) or the enterprise ``manager``
is named whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provisio.domain import host_events

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Attributes whose sub-attributes ``changed`` names one by one, and how each is prefixed.
_BY_SUB_ATTRIBUTE = {"name": "name.", ENTERPRISE_USER_SCHEMA: ENTERPRISE_USER_SCHEMA + ":"}


def _timestamp(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def snapshot(
    member_id: str,
    doc: dict[str, Any],
    *,
    active: bool,
    created_at: datetime,
    modified_at: datetime,
    version: int,
) -> dict[str, Any]:
    """The member as the host sees it: the attributes it usually needs, and ``scim``, the whole User
    document as the SCIM API serves it (without ``meta.location``, which depends on the URL it is
    reached at). ``active`` is the member's state (false once deleted, whatever the document says)."""
    schemas = [USER_SCHEMA]
    schemas += [u for u in doc.get("schemas", []) if u != USER_SCHEMA and u in doc]
    if ENTERPRISE_USER_SCHEMA in doc and ENTERPRISE_USER_SCHEMA not in schemas:
        schemas.append(ENTERPRISE_USER_SCHEMA)
    scim: dict[str, Any] = {**doc, "schemas": schemas, "id": member_id}
    scim["meta"] = {
        "resourceType": "User",
        "created": _timestamp(created_at),
        "lastModified": _timestamp(modified_at),
        "version": f'W/"{version}"',
    }
    emails = doc.get("emails")
    name = doc.get("name")
    enterprise = doc.get(ENTERPRISE_USER_SCHEMA)
    return {
        "id": member_id,
        "userName": doc.get("userName"),
        "emails": [e for e in emails if isinstance(e, dict)] if isinstance(emails, list) else [],
        "name": name if isinstance(name, dict) else None,
        "active": active,
        "externalId": doc.get("externalId"),
        "enterprise": enterprise if isinstance(enterprise, dict) else None,
        "scim": scim,
    }


def changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The attributes whose value differs between two documents, sorted (see the module's docstring)."""
    changed: list[str] = []
    for attribute in before.keys() | after.keys():
        old, new = before.get(attribute), after.get(attribute)
        if old == new:
            continue
        prefix = _BY_SUB_ATTRIBUTE.get(attribute)
        if prefix is not None and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            old_parts, new_parts = old or {}, new or {}
            subs = [s for s in old_parts.keys() | new_parts.keys() if old_parts.get(s) != new_parts.get(s)]
            # An empty object added or removed moves no sub-attribute: name the attribute itself.
            changed += [prefix + sub for sub in subs] if subs else [attribute]
        else:
            changed.append(attribute)
    return sorted(changed)


def change_type(was_active: bool, active: bool) -> str:
    """A change of ``active`` is told by its own type (it carries the other changes too)."""
    if was_active and not active:
        return host_events.MEMBER_DEACTIVATED
    if active and not was_active:
        return host_events.MEMBER_REACTIVATED
    return host_events.MEMBER_UPDATED
