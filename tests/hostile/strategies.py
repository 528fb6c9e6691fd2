"""Hypothesis strategies for hostile HTTP input: what an attacker or a broken client may send.

Values lean towards the inputs that have broken servers before: non-ASCII digits, quotes and
backslashes, control characters, huge numbers, wrong JSON types where a string or a list belongs,
and SCIM paths and filters that are almost right.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

# Characters that have tripped parsers: quotes, escapes, separators, non-ASCII digits, a BOM, a
# right-to-left mark, surrogates' neighbours, and plain letters so that near-valid input is common.
_TRICKY = "\"\\'*%/,;:=()[]{}<>.@ \t²\u0661\u0663\u07c0ÿ\ufeff\u200f\uffff\U0001d7d8é"
# No lone surrogates: no client can encode them; invalid UTF-8 arrives through ``raw_queries`` instead.
tricky_text = st.text(
    alphabet=st.sampled_from(_TRICKY) | st.characters(exclude_categories=("Cs",)), max_size=40
)
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, 1, -1, 2**31, 2**63])

# Header values as raw bytes: HTTP allows obs-text (0x80-0xFF), which arrives decoded as latin-1.
header_bytes = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").strip())

json_scalars = st.none() | st.booleans() | numbers | st.floats(allow_nan=False, allow_infinity=False)
json_scalars = json_scalars | tricky_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12,
)

attribute_paths = (
    st.sampled_from(
        [
            "userName",
            "name",
            "name.givenName",
            "name.familyName",
            "displayName",
            "emails",
            "emails.value",
            "emails.type",
            'emails[type eq "work"]',
            'emails[type eq "work"].value',
            "emails[primary eq true].value",
            "active",
            "externalId",
            "id",
            "meta.created",
            "meta.lastModified",
            "phoneNumbers",
            'addresses[type eq "work"].postalCode',
            f"{ENTERPRISE}:manager",
            f"{ENTERPRISE}:employeeNumber",
            f"{CORE}:userName",
            "groups",
            "password",
            "x509Certificates",
            "[]",
            "emails[",
            'emails[value eq "]',
            "",
        ]
    )
    | tricky_text
)


@st.composite
def filters(draw: st.DrawFn) -> str:
    """Filter expressions: mostly grammatical (any operator, any value type), sometimes broken."""
    path = draw(attribute_paths)
    op = draw(st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "xx"]))
    value = draw(
        st.sampled_from(['"x"', "true", "false", "null", "1", "-1.5e3", "99999999999999999999999", '"'])
        | tricky_text.map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"')
        | tricky_text
    )
    expr = f"{path} pr" if op == "pr" else f"{path} {op} {value}"
    shape = draw(st.integers(0, 5))
    if shape == 1:
        expr = f"not ({expr})"
    elif shape == 2:
        expr = f"{expr} and {draw(attribute_paths)} pr"
    elif shape == 3:
        expr = f"emails[{expr}]"
    elif shape == 4:
        expr = "(" * draw(st.integers(1, 60)) + expr
    return expr


list_params = st.dictionaries(
    st.sampled_from(
        ["filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes", "cursor"]
    )
    | tricky_text,
    filters() | tricky_text | numbers.map(str) | attribute_paths,
    max_size=5,
)


def _typed(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A good value most of the time, else any JSON value in its place."""
    return st.one_of(good, good, json_values)


user_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "schemas": _typed(st.just([CORE])),
            "userName": _typed(st.emails().map(str.lower)),
            "name": _typed(
                st.fixed_dictionaries({}, optional={"givenName": tricky_text, "familyName": json_values})
            ),
            "emails": _typed(
                st.lists(
                    st.fixed_dictionaries(
                        {"value": _typed(st.emails())},
                        optional={"type": json_values, "primary": json_values, "display": json_values},
                    ),
                    max_size=3,
                )
            ),
            "active": _typed(st.booleans() | st.sampled_from(["True", "False", "true", "false", "yes"])),
            "externalId": _typed(tricky_text),
            "displayName": _typed(tricky_text),
            "id": json_values,
            "meta": json_values,
            "groups": json_values,
            "password": json_values,
            ENTERPRISE: _typed(
                st.dictionaries(st.sampled_from(["manager", "employeeNumber", "x"]), json_values)
            ),
            "phoneNumbers": json_values,
            "x509Certificates": json_values,
        },
    )
    | json_values
)


def _operation(okta: bool) -> st.SearchStrategy[dict[str, Any]]:
    ops = ["add", "replace", "remove"] if okta else ["Add", "Replace", "Remove"]
    value = (
        json_values
        | user_bodies
        | st.sampled_from([True, False, "True", "False"])
        | st.fixed_dictionaries({"active": st.sampled_from([False, "False", 0])})
    )
    return st.fixed_dictionaries(
        {"op": _typed(st.sampled_from(ops))},
        optional={"path": _typed(attribute_paths), "value": value},
    )


patch_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "schemas": _typed(st.just([PATCH_OP])),
            "Operations": _typed(st.lists(_operation(okta=True) | _operation(okta=False), max_size=4)),
        }
    ),
    json_values,
)

search_bodies = st.one_of(
    st.fixed_dictionaries(
        {"schemas": _typed(st.just([SEARCH]))},
        optional={
            "filter": _typed(filters()),
            "startIndex": json_values,
            "count": json_values,
            "sortBy": _typed(attribute_paths),
            "sortOrder": json_values,
            "attributes": _typed(st.lists(attribute_paths, max_size=3)),
            "excludedAttributes": json_values,
            "cursor": json_values,
        },
    ),
    json_values,
)

# A path segment as a client would send it: percent-encoded, so "*", "%", "/" and non-ASCII arrive;
# sometimes raw percent-escapes of bytes that are not UTF-8.
segments = (tricky_text | st.sampled_from(["*", ".search", "..", ".", "%", "%2F", "Users", "Me"])).map(
    lambda s: quote(s, safe="")
) | st.sampled_from(["%FF", "%ED%A0%80", "%C0%AF", "%E2%82", "%", "%zz"])

# A whole query string as bytes: known parameters with percent-escaped arbitrary bytes as values.
raw_queries = st.lists(
    st.tuples(
        st.sampled_from(
            [b"filter", b"startIndex", b"count", b"sortBy", b"sortOrder", b"attributes", b"cursor"]
        ),
        st.binary(max_size=30).map(lambda b: quote(b, safe="").encode())
        | st.sampled_from([b"%FF", b"%", b"%E2"]),
    ),
    max_size=4,
).map(lambda pairs: b"&".join(k + b"=" + v for k, v in pairs))
