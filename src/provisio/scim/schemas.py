"""The attribute catalogue of every resource type served, derived from scim2-models' RFC 7643 schemas.

It is the single description of what provisio supports and stores: ``/Schemas`` is rendered from it,
and the filter translator, PATCH engine and serializer look attributes up in it (names are
case-insensitive, RFC 7643 §2.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from scim2_models import EnterpriseUser, User

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"

# Attributes every resource has (RFC 7643 §3.1); not part of any schema's attribute list.
COMMON_ATTRIBUTES = ("id", "externalId", "meta", "schemas")


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str  # string | boolean | decimal | integer | dateTime | reference | binary | complex
    multi_valued: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    required: bool = False
    schema: str = USER_SCHEMA
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    _subs: dict[str, Attribute] = field(default_factory=dict, compare=False, repr=False)

    def sub(self, name: str) -> Attribute | None:
        return self._subs.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"


@dataclass(frozen=True)
class ResourceSchema:
    """A resource type's core schema and its extensions, with case-insensitive attribute lookup."""

    name: str
    endpoint: str
    core_urn: str
    core: dict[str, Attribute]
    extensions: dict[str, dict[str, Attribute]]  # urn -> attributes
    documents: tuple[dict[str, Any], ...]

    def urns(self) -> list[str]:
        return [self.core_urn, *self.extensions]

    def extension_urn(self, name: str) -> str | None:
        """The canonically cased URN of a known extension, matched case-insensitively."""
        for urn in self.extensions:
            if urn.lower() == name.lower():
                return urn
        return None

    def attribute(self, name: str, urn: str | None = None) -> Attribute | None:
        """Look a top-level attribute up in the core schema (or in extension ``urn``)."""
        if urn is None or urn.lower() == self.core_urn.lower():
            return self.core.get(name.lower()) or COMMON.get(name.lower())
        ext = self.extension_urn(urn)
        return self.extensions[ext].get(name.lower()) if ext else None

    def split_urn(self, path: str) -> tuple[str | None, str]:
        """Split ``urn:…:User:manager.value`` into (canonical urn, "manager.value").

        A path that names an extension URN alone returns (urn, "").
        """
        low = path.lower()
        for urn in sorted(self.urns(), key=len, reverse=True):
            u = urn.lower()
            if low == u:
                return urn, ""
            if low.startswith(u + ":"):
                return urn, path[len(urn) + 1 :]
        return None, path


def _attr(doc: dict[str, Any], schema: str) -> Attribute:
    subs = tuple(_attr(s, schema) for s in doc.get("subAttributes") or ())
    a = Attribute(
        name=doc["name"],
        type=doc["type"],
        multi_valued=bool(doc.get("multiValued")),
        case_exact=bool(doc.get("caseExact")),
        mutability=doc.get("mutability", "readWrite"),
        returned=doc.get("returned", "default"),
        uniqueness=doc.get("uniqueness", "none"),
        required=bool(doc.get("required")),
        schema=schema,
        sub_attributes=subs,
        canonical_values=tuple(doc.get("canonicalValues") or ()),
    )
    a._subs.update({s.name.lower(): s for s in subs})
    return a


_META_SUBS = tuple(
    Attribute(name=n, type=t, case_exact=n != "resourceType", mutability="readOnly", schema="")
    for n, t in (
        ("resourceType", "string"),
        ("created", "dateTime"),
        ("lastModified", "dateTime"),
        ("location", "reference"),
        ("version", "string"),
    )
)
_meta = Attribute(name="meta", type="complex", mutability="readOnly", schema="", sub_attributes=_META_SUBS)
_meta._subs.update({s.name.lower(): s for s in _META_SUBS})

COMMON: dict[str, Attribute] = {
    "id": Attribute(
        name="id",
        type="string",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
        schema="",
    ),
    "externalid": Attribute(name="externalId", type="string", case_exact=True, schema=""),
    "meta": _meta,
    "schemas": Attribute(name="schemas", type="reference", multi_valued=True, case_exact=True, schema=""),
}


def _schema_document(model: Any, description: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = model.to_schema().model_dump(mode="json", exclude_none=True)
    if description:
        # scim2-models uses the class name; RFC 7643 §8.7.1 gives the descriptions.
        doc["description"] = description
    return doc


@cache
def user_schema() -> ResourceSchema:
    core_doc = _schema_document(User, "User Account")
    ext_doc = _schema_document(EnterpriseUser, "Enterprise User")
    return ResourceSchema(
        name="User",
        endpoint="/Users",
        core_urn=USER_SCHEMA,
        core={a["name"].lower(): _attr(a, USER_SCHEMA) for a in core_doc["attributes"]},
        extensions={
            ENTERPRISE_USER_SCHEMA: {
                a["name"].lower(): _attr(a, ENTERPRISE_USER_SCHEMA) for a in ext_doc["attributes"]
            }
        },
        documents=(core_doc, ext_doc),
    )
