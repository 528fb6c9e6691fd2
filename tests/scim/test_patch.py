"""SCIM PATCH (``provisio.scim.patch``) and value normalisation (``provisio.scim.values``).

Covers every example of RFC 7644 §3.5.2.1-3 (request bodies verbatim), the request shapes Microsoft
Entra and Okta send, every error case, and hypothesis properties (no exception but ScimError, input never
mutated, canonical output, idempotent replace).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scim2_models import Group

from provisio.scim import schemas as catalogue
from provisio.scim.errors import (
    INVALID_PATH,
    INVALID_SYNTAX,
    INVALID_VALUE,
    MUTABILITY,
    NO_TARGET,
    ScimError,
)
from provisio.scim.patch import PatchResult, apply_patch
from provisio.scim.schemas import (
    ENTERPRISE_USER_SCHEMA,
    PATCH_OP_SCHEMA,
    USER_SCHEMA,
    Attribute,
    ResourceSchema,
    user_schema,
)
from provisio.scim.values import normalise_document, validate_attribute_value

ENT = ENTERPRISE_USER_SCHEMA
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
BABS = "2819c223-7f76-453a-919d-413861904646"
JAMES = "08e1d05d-121c-4561-8b96-473d93df9210"
USER = user_schema()


def _group_schema() -> ResourceSchema:
    provided = getattr(catalogue, "group_schema", None)
    if provided is not None:
        schema: ResourceSchema = provided()
        return schema
    doc = catalogue._schema_document(Group)
    return ResourceSchema(
        name="Group",
        endpoint="/Groups",
        core_urn=GROUP_URN,
        core={a["name"].lower(): catalogue._attr(a, GROUP_URN) for a in doc["attributes"]},
        extensions={},
        documents=(doc,),
    )


GROUP = _group_schema()


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def patch(doc: dict[str, Any], *operations: dict[str, Any], schema: ResourceSchema = USER) -> PatchResult:
    before = copy.deepcopy(doc)
    result = apply_patch(doc, body(*operations), schema)
    assert doc == before, "apply_patch mutated its input"
    return result


def patched(
    doc: dict[str, Any], *operations: dict[str, Any], schema: ResourceSchema = USER
) -> dict[str, Any]:
    return patch(doc, *operations, schema=schema).document


def fails(
    doc: dict[str, Any], *operations: dict[str, Any], scim_type: str, schema: ResourceSchema = USER
) -> ScimError:
    before = copy.deepcopy(doc)
    with pytest.raises(ScimError) as info:
        apply_patch(doc, body(*operations), schema)
    assert doc == before
    assert info.value.status == 400
    assert info.value.scim_type == scim_type, info.value.detail
    return info.value


@pytest.fixture
def user() -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA, ENT],
        "id": BABS,
        "externalId": "bjensen",
        "meta": {
            "resourceType": "User",
            "created": "2011-08-01T18:29:49.793Z",
            "lastModified": "2011-08-01T18:29:49.793Z",
            "version": 'W/"f250dd84f0671c3"',
            "location": f"https://example.com/v2/Users/{BABS}",
        },
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "active": True,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "addresses": [
            {
                "type": "work",
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
                "primary": True,
            },
            {
                "type": "home",
                "streetAddress": "456 Hollywood Blvd",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
            },
        ],
        ENT: {
            "employeeNumber": "701984",
            "manager": {"value": JAMES, "displayName": "John Smith", "$ref": f"../Users/{JAMES}"},
        },
    }


@pytest.fixture
def bare_user() -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "id": "u1", "userName": "alice"}


@pytest.fixture
def group() -> dict[str, Any]:
    return {
        "schemas": [GROUP_URN],
        "id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce",
        "displayName": "Tour Guides",
        "members": [{"value": JAMES, "display": "James Smith"}],
    }


# --- RFC 7644 §3.5.2 examples, request bodies verbatim ---------------------------------------------

RFC_ADD_MEMBER = r"""
{ "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations":[
    {
     "op":"add",
     "path":"members",
     "value":[
      {
        "display": "Babs Jensen",
        "$ref":
"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
        "value": "2819c223-7f76-453a-919d-413861904646"
      }
     ]
    }
  ]
}"""

RFC_ADD_PATHLESS = r"""
{ "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations":[{
    "op":"add",
    "value":{
      "emails":[
        {
          "value":"babs@jensen.org",
          "type":"home"
        }
      ],
      "nickname":"Babs"
  }}]
}"""

RFC_REMOVE_ONE_MEMBER = r"""
{ "schemas":
   ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations":[{
    "op":"remove",
    "path":"members[value eq \"2819c223-7f76-...413861904646\"]"
  }]
}"""

RFC_REMOVE_ALL_MEMBERS = r"""
{ "schemas":
    ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations":[{
    "op":"remove","path":"members"
  }]
}"""

RFC_REMOVE_EMAIL = r"""
{ "schemas":
    ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{
    "op":"remove",
    "path":"emails[type eq \"work\" and value ew \"example.com\"]"
  }]
}"""

RFC_REMOVE_THEN_ADD_MEMBERS = r"""
{ "schemas":
    ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [
    {
      "op":"remove",
      "path":"members"
    },
    {
      "op":"add",
      "path":"members",
      "value":[
      {
        "display": "Babs Jensen",
        "$ref":
"https://example.com/v2/Users/2819c223...413861904646",
        "value": "2819c223-7f76-453a-919d-413861904646"
      },
      {
        "display": "James Smith",
        "$ref":
"https://example.com/v2/Users/08e1d05d...473d93df9210",
        "value": "08e1d05d-121c-4561-8b96-473d93df9210"
      }]
    }
  ]
}"""

RFC_REPLACE_MEMBERS = r"""
{ "schemas":
    ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{
    "op":"replace",
    "path":"members",
    "value":[
      {
        "display": "Babs Jensen",
        "$ref":
"https://example.com/v2/Users/2819c223...413861904646",
        "value": "2819c223...413861904646"
      },
      {
        "display": "James Smith",
        "$ref":
"https://example.com/v2/Users/08e1d05d...473d93df9210",
        "value": "08e1d05d...473d93df9210"
      }
    ]
  }]
}"""

RFC_REPLACE_WORK_ADDRESS = r"""
{ "schemas":
    ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{
    "op":"replace",
    "path":"addresses[type eq \"work\"]",
    "value":
    {
      "type": "work",
      "streetAddress": "911 Universal City Plaza",
      "locality": "Hollywood",
      "region": "CA",
      "postalCode": "91608",
      "country": "US",
      "formatted":
"911 Universal City Plaza\nHollywood, CA 91608 US",
      "primary": true
    }
  }]
}"""

RFC_REPLACE_STREET = r"""
{ "schemas":
    ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{
    "op":"replace",
    "path":"addresses[type eq \"work\"].streetAddress",
    "value":"1010 Broadway Ave"
  }]
}"""

RFC_REPLACE_PATHLESS = r"""
{ "schemas":
    ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [{
    "op":"replace",
    "value":{
      "emails":[
        {
          "value":"bjensen@example.com",
          "type":"work",
          "primary":true
        },
        {
          "value":"babs@jensen.org",
          "type":"home"
        }
      ],
      "nickname":"Babs"
    }
  }]
}"""


def rfc(text: str) -> dict[str, Any]:
    # The bodies are the RFC text as printed (its line breaks after "$ref": are plain JSON whitespace).
    parsed: dict[str, Any] = json.loads(text)
    return parsed


class TestRfcExamples:
    def test_add_member(self, group: dict[str, Any]) -> None:
        result = apply_patch(group, rfc(RFC_ADD_MEMBER), GROUP)
        assert result.changed
        assert result.document["members"] == [
            {"value": JAMES, "display": "James Smith"},
            {"display": "Babs Jensen", "$ref": f"https://example.com/v2/Users/{BABS}", "value": BABS},
        ]

    def test_add_member_twice_is_a_no_op(self, group: dict[str, Any]) -> None:
        once = apply_patch(group, rfc(RFC_ADD_MEMBER), GROUP).document
        again = apply_patch(once, rfc(RFC_ADD_MEMBER), GROUP)
        assert not again.changed and again.document == once

    def test_add_without_path(self, bare_user: dict[str, Any]) -> None:
        doc = apply_patch(bare_user, rfc(RFC_ADD_PATHLESS), USER).document
        assert doc["emails"] == [{"value": "babs@jensen.org", "type": "home"}]
        assert doc["nickName"] == "Babs" and "nickname" not in doc

    def test_add_without_path_appends_to_existing_emails(self, user: dict[str, Any]) -> None:
        user["emails"] = user["emails"][:1]
        doc = apply_patch(user, rfc(RFC_ADD_PATHLESS), USER).document
        assert [e["value"] for e in doc["emails"]] == ["bjensen@example.com", "babs@jensen.org"]

    def test_remove_one_member(self, group: dict[str, Any]) -> None:
        # The RFC abbreviates the id with "..."; the stored member carries the same abbreviated value.
        group["members"].append({"value": "2819c223-7f76-...413861904646", "display": "Babs Jensen"})
        doc = apply_patch(group, rfc(RFC_REMOVE_ONE_MEMBER), GROUP).document
        assert doc["members"] == [{"value": JAMES, "display": "James Smith"}]

    def test_remove_all_members(self, group: dict[str, Any]) -> None:
        result = apply_patch(group, rfc(RFC_REMOVE_ALL_MEMBERS), GROUP)
        assert "members" not in result.document and result.changed

    def test_remove_email_by_complex_filter(self, user: dict[str, Any]) -> None:
        doc = apply_patch(user, rfc(RFC_REMOVE_EMAIL), USER).document
        assert doc["emails"] == [{"value": "babs@jensen.org", "type": "home"}]

    def test_remove_then_add_members(self, group: dict[str, Any]) -> None:
        doc = apply_patch(group, rfc(RFC_REMOVE_THEN_ADD_MEMBERS), GROUP).document
        assert [m["value"] for m in doc["members"]] == [BABS, JAMES]
        assert doc["members"][1]["display"] == "James Smith"

    def test_replace_members(self, group: dict[str, Any]) -> None:
        doc = apply_patch(group, rfc(RFC_REPLACE_MEMBERS), GROUP).document
        assert [m["value"] for m in doc["members"]] == ["2819c223...413861904646", "08e1d05d...473d93df9210"]

    def test_replace_work_address(self, user: dict[str, Any]) -> None:
        doc = apply_patch(user, rfc(RFC_REPLACE_WORK_ADDRESS), USER).document
        work = doc["addresses"][0]
        assert work["streetAddress"] == "911 Universal City Plaza"
        assert work["formatted"] == "911 Universal City Plaza\nHollywood, CA 91608 US"
        assert work["country"] == "US" and work["primary"] is True
        assert doc["addresses"][1] == user["addresses"][1]

    def test_replace_work_street(self, user: dict[str, Any]) -> None:
        doc = apply_patch(user, rfc(RFC_REPLACE_STREET), USER).document
        assert doc["addresses"][0] == {**user["addresses"][0], "streetAddress": "1010 Broadway Ave"}
        assert doc["addresses"][1] == user["addresses"][1]

    def test_replace_work_street_without_work_address_is_no_target(self, user: dict[str, Any]) -> None:
        # RFC 7644 §3.5.2.3: a valuePath that matches nothing is noTarget. (Only "eq"-filters on a
        # sub-attribute create values - see TestEntra - and this one names streetAddress on "work".)
        user["addresses"] = user["addresses"][1:]
        with pytest.raises(ScimError):
            apply_patch(user, rfc(RFC_REPLACE_WORK_ADDRESS), USER)

    def test_replace_without_path(self, user: dict[str, Any]) -> None:
        user["emails"] = [{"value": "old@example.com", "type": "other"}]
        doc = apply_patch(user, rfc(RFC_REPLACE_PATHLESS), USER).document
        assert doc["emails"] == [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ]
        assert doc["nickName"] == "Babs"


# --- add / replace / remove semantics ----------------------------------------------------------------


class TestSemantics:
    def test_replace_single_valued(self, user: dict[str, Any]) -> None:
        assert (
            patched(user, {"op": "replace", "path": "displayName", "value": "Babs"})["displayName"] == "Babs"
        )

    def test_add_single_valued_replaces(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "add", "path": "userName", "value": "babs"})
        assert doc["userName"] == "babs"

    def test_replace_complex_merges_sub_attributes(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": "name", "value": {"givenName": "Babs"}})
        assert doc["name"] == {"familyName": "Jensen", "givenName": "Babs"}

    def test_add_complex_merges_sub_attributes(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "add", "path": "name", "value": {"middleName": "Jane"}})
        assert doc["name"] == {"familyName": "Jensen", "givenName": "Barbara", "middleName": "Jane"}

    def test_null_sub_attribute_in_complex_value_unassigns_it(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": "name", "value": {"givenName": None}})
        assert doc["name"] == {"familyName": "Jensen"}

    def test_sub_attribute_path(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": "name.givenName", "value": "Babs"})
        assert doc["name"] == {"familyName": "Jensen", "givenName": "Babs"}

    def test_sub_attribute_path_creates_parent(self, bare_user: dict[str, Any]) -> None:
        assert patched(bare_user, {"op": "add", "path": "name.givenName", "value": "A"})["name"] == {
            "givenName": "A"
        }

    def test_replace_multi_valued_replaces_whole_list(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": "emails", "value": [{"value": "x@y.z"}]})
        assert doc["emails"] == [{"value": "x@y.z"}]

    def test_add_multi_valued_appends_without_duplicates(self, user: dict[str, Any]) -> None:
        result = patch(
            user, {"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "home"}]}
        )
        assert not result.changed and result.document == user

    def test_add_present_value_merges_new_sub_attributes(self, user: dict[str, Any]) -> None:
        doc = patched(
            user,
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "BABS@jensen.org", "type": "home", "display": "Babs"}],
            },
        )
        assert len(doc["emails"]) == 2
        assert doc["emails"][1] == {"value": "BABS@jensen.org", "type": "home", "display": "Babs"}

    def test_add_same_value_with_other_type_is_a_new_value(self, user: dict[str, Any]) -> None:
        doc = patched(
            user, {"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "other"}]}
        )
        assert len(doc["emails"]) == 3

    def test_replace_with_null_unassigns(self, user: dict[str, Any]) -> None:
        doc = patched(
            user,
            {"op": "replace", "path": "displayName", "value": None},
            {"op": "replace", "path": "emails", "value": []},
        )
        assert "emails" not in doc and "displayName" not in doc

    def test_value_filter_with_sub_attribute(self, user: dict[str, Any]) -> None:
        doc = patched(
            user, {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"}
        )
        assert doc["emails"][0] == {"value": "new@example.com", "type": "work", "primary": True}

    def test_value_filter_replace_merges_into_matching_value(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": 'emails[type eq "home"]', "value": {"display": "Babs"}})
        assert doc["emails"][1] == {"value": "babs@jensen.org", "type": "home", "display": "Babs"}

    def test_value_filter_applies_to_every_match(self, user: dict[str, Any]) -> None:
        doc = patched(
            user, {"op": "replace", "path": 'addresses[locality eq "Hollywood"].country', "value": "US"}
        )
        assert [a["country"] for a in doc["addresses"]] == ["US", "US"]

    def test_sub_attribute_of_multi_valued_without_filter_sets_every_value(
        self, user: dict[str, Any]
    ) -> None:
        doc = patched(user, {"op": "replace", "path": "addresses.region", "value": "NY"})
        assert [a["region"] for a in doc["addresses"]] == ["NY", "NY"]

    def test_sub_attribute_of_empty_multi_valued_without_filter_is_no_target(
        self, bare_user: dict[str, Any]
    ) -> None:
        fails(bare_user, {"op": "replace", "path": "emails.type", "value": "work"}, scim_type=NO_TARGET)

    def test_replace_value_filter_without_match_is_no_target(self, user: dict[str, Any]) -> None:
        fails(
            user,
            {"op": "replace", "path": 'emails[type eq "other"]', "value": {"value": "o@x.y"}},
            scim_type=NO_TARGET,
        )

    def test_replace_non_eq_filter_without_match_is_no_target(self, user: dict[str, Any]) -> None:
        fails(
            user,
            {"op": "replace", "path": 'emails[value co "nowhere"].display', "value": "x"},
            scim_type=NO_TARGET,
        )

    def test_add_with_value_filter_and_no_match_adds_the_value(self, bare_user: dict[str, Any]) -> None:
        doc = patched(bare_user, {"op": "add", "path": 'emails[type eq "work"]', "value": {"value": "w@x.y"}})
        assert doc["emails"] == [{"type": "work", "value": "w@x.y"}]

    def test_remove_single_valued(self, user: dict[str, Any]) -> None:
        assert "externalId" not in patched(user, {"op": "remove", "path": "externalId"})

    def test_remove_sub_attribute(self, user: dict[str, Any]) -> None:
        assert patched(user, {"op": "remove", "path": "name.givenName"})["name"] == {"familyName": "Jensen"}

    def test_remove_last_sub_attribute_unassigns_the_attribute(self, user: dict[str, Any]) -> None:
        doc = patched(
            user, {"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}
        )
        assert "name" not in doc

    def test_remove_value_filtered_element(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "remove", "path": 'emails[type eq "work"]'})
        assert doc["emails"] == [{"value": "babs@jensen.org", "type": "home"}]

    def test_remove_last_element_unassigns(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "remove", "path": "emails[value pr]"})
        assert "emails" not in doc

    def test_remove_value_filtered_sub_attribute(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "remove", "path": 'emails[type eq "work"].primary'})
        assert doc["emails"][0] == {"value": "bjensen@example.com", "type": "work"}

    def test_remove_member(self, group: dict[str, Any]) -> None:
        doc = patched(group, {"op": "remove", "path": f'members[value eq "{JAMES}"]'}, schema=GROUP)
        assert "members" not in doc

    @pytest.mark.parametrize(
        "path",
        [
            "nickName",
            "name.middleName",
            'emails[type eq "other"]',
            'emails[type eq "other"].value',
            f"{ENT}:costCenter",
            f"{ENT}:manager.value",
            "x509Certificates",
        ],
    )
    def test_remove_of_absent_target_is_a_no_op(self, bare_user: dict[str, Any], path: str) -> None:
        result = patch(bare_user, {"op": "remove", "path": path})
        assert not result.changed and result.document == bare_user

    def test_remove_member_that_is_not_there_is_a_no_op(self, group: dict[str, Any]) -> None:
        result = patch(group, {"op": "remove", "path": 'members[value eq "gone"]'}, schema=GROUP)
        assert not result.changed

    def test_primary_true_clears_other_primaries(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "add", "path": "emails", "value": [{"value": "n@x.y", "primary": True}]})
        assert [e.get("primary") for e in doc["emails"]] == [False, None, True]

    def test_primary_true_through_filter(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": True})
        assert [e.get("primary") for e in doc["emails"]] == [False, True]

    def test_two_primaries_in_one_value_is_invalid(self, user: dict[str, Any]) -> None:
        fails(
            user,
            {
                "op": "replace",
                "path": "emails",
                "value": [{"value": "a@x.y", "primary": True}, {"value": "b@x.y", "primary": True}],
            },
            scim_type=INVALID_VALUE,
        )

    def test_primary_on_several_matches_is_invalid(self, user: dict[str, Any]) -> None:
        fails(
            user,
            {"op": "replace", "path": 'addresses[locality eq "Hollywood"].primary', "value": True},
            scim_type=INVALID_VALUE,
        )

    def test_changed_is_false_for_a_no_op(self, user: dict[str, Any]) -> None:
        result = patch(
            user,
            {"op": "replace", "path": "name.givenName", "value": "Barbara"},
            {"op": "replace", "value": {"active": True}},
        )
        assert not result.changed and result.document == user

    def test_input_is_not_mutated_and_result_is_a_copy(self, user: dict[str, Any]) -> None:
        result = patch(user, {"op": "replace", "path": "name.givenName", "value": "B"})
        result.document["emails"][0]["value"] = "changed"
        assert user["emails"][0]["value"] == "bjensen@example.com"

    def test_operations_apply_in_order(self, bare_user: dict[str, Any]) -> None:
        doc = patched(
            bare_user,
            {"op": "add", "path": "title", "value": "A"},
            {"op": "remove", "path": "title"},
            {"op": "add", "path": "title", "value": "B"},
        )
        assert doc["title"] == "B"

    def test_failure_is_atomic(self, user: dict[str, Any]) -> None:
        error = fails(
            user,
            {"op": "replace", "path": "title", "value": "ok"},
            {"op": "replace", "path": "bogus", "value": 1},
            scim_type=INVALID_PATH,
        )
        assert error.detail.startswith("Operations[1]: ")


class TestCaseAndUrns:
    def test_attribute_names_are_case_insensitive_and_stored_canonically(self, user: dict[str, Any]) -> None:
        doc = patched(
            user,
            {"op": "replace", "path": "username", "value": "b"},
            {"op": "replace", "path": "NAME.GIVENNAME", "value": "B"},
            {"op": "replace", "path": 'EMAILS[TYPE eq "work"].VALUE', "value": "w@x.y"},
            {"op": "add", "value": {"DisplayName": "Babs", "name": {"FAMILYNAME": "J"}}},
        )
        assert doc["userName"] == "b" and "username" not in doc
        assert doc["name"] == {"familyName": "J", "givenName": "B"}
        assert doc["emails"][0]["value"] == "w@x.y"
        assert doc["displayName"] == "Babs"

    def test_non_canonical_stored_key_is_replaced(self, bare_user: dict[str, Any]) -> None:
        bare_user["displayname"] = "old"
        doc = patched(bare_user, {"op": "replace", "path": "displayName", "value": "new"})
        assert doc["displayName"] == "new" and "displayname" not in doc

    def test_urn_qualified_core_attribute(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": f"{USER_SCHEMA}:name.givenName", "value": "B"})
        assert doc["name"]["givenName"] == "B"

    def test_extension_attribute(self, bare_user: dict[str, Any]) -> None:
        doc = patched(bare_user, {"op": "add", "path": f"{ENT}:employeeNumber", "value": "42"})
        assert doc[ENT] == {"employeeNumber": "42"}
        assert doc["schemas"] == [USER_SCHEMA, ENT]

    def test_extension_urn_is_case_insensitive(self, bare_user: dict[str, Any]) -> None:
        doc = patched(bare_user, {"op": "add", "path": f"{ENT.upper()}:EMPLOYEENUMBER", "value": "42"})
        assert doc[ENT] == {"employeeNumber": "42"}

    def test_extension_urn_as_path(self, bare_user: dict[str, Any]) -> None:
        doc = patched(
            bare_user, {"op": "add", "path": ENT, "value": {"department": "Tour", "costCenter": "4"}}
        )
        assert doc[ENT] == {"department": "Tour", "costCenter": "4"}

    def test_extension_object_in_pathless_value(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "value": {ENT: {"department": "Ops"}}})
        assert doc[ENT]["department"] == "Ops" and doc[ENT]["employeeNumber"] == "701984"

    def test_remove_whole_extension(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "remove", "path": ENT})
        assert ENT not in doc and doc["schemas"] == [USER_SCHEMA]

    def test_removing_last_extension_attribute_drops_the_extension(self, bare_user: dict[str, Any]) -> None:
        doc = patched(
            bare_user,
            {"op": "add", "path": f"{ENT}:division", "value": "X"},
            {"op": "remove", "path": f"{ENT}:division"},
        )
        assert doc == bare_user

    def test_manager_value_path(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "replace", "path": f"{ENT}:manager.value", "value": BABS})
        # A manager pointing elsewhere loses the $ref/displayName that described the old one.
        assert doc[ENT]["manager"] == {"value": BABS}

    def test_manager_same_value_keeps_display_name(self, user: dict[str, Any]) -> None:
        result = patch(user, {"op": "replace", "path": f"{ENT}:manager", "value": {"value": JAMES}})
        assert not result.changed

    def test_unknown_extension_urn_is_invalid_path(self, bare_user: dict[str, Any]) -> None:
        urn = "urn:ietf:params:scim:schemas:extension:custom:2.0:User"
        error = fails(bare_user, {"op": "add", "path": f"{urn}:badge", "value": "1"}, scim_type=INVALID_PATH)
        assert urn in error.detail
        error = fails(bare_user, {"op": "add", "value": {urn: {"badge": "1"}}}, scim_type=INVALID_PATH)
        assert urn in error.detail

    def test_unknown_extension_listed_in_schemas_is_stored_as_given(self, bare_user: dict[str, Any]) -> None:
        urn = "urn:example:custom:1.0:User"
        bare_user["schemas"] = [USER_SCHEMA, urn]
        doc = patched(
            bare_user,
            {"op": "add", "path": f"{urn}:badge", "value": {"n": 1}},
            {"op": "add", "value": {urn: {"floor": 3}}},
            {"op": "replace", "path": f"{urn}:badge.n", "value": 2},
        )
        assert doc[urn] == {"badge": {"n": 2}, "floor": 3}
        assert doc["schemas"] == [USER_SCHEMA, urn]
        doc = patched(doc, {"op": "remove", "path": f"{urn}:badge"}, {"op": "remove", "path": f"{urn}:floor"})
        assert urn not in doc and doc["schemas"] == [USER_SCHEMA, urn]

    def test_pathless_value_may_declare_an_extension(self, bare_user: dict[str, Any]) -> None:
        urn = "urn:example:custom:1.0:User"
        doc = patched(bare_user, {"op": "add", "value": {"schemas": [USER_SCHEMA, urn], urn: {"badge": "7"}}})
        assert doc[urn] == {"badge": "7"} and doc["schemas"] == [USER_SCHEMA, urn]


# --- Microsoft Entra ---------------------------------------------------------------------------------


class TestEntra:
    def test_update_user_multi_valued_properties(self, user: dict[str, Any]) -> None:
        # "Update User [Multi-valued properties]" from Microsoft's SCIM endpoint tutorial.
        doc = patched(
            user,
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        )
        assert doc["emails"][0]["value"] == "updatedEmail@microsoft.com"
        assert doc["name"]["familyName"] == "updatedFamilyName"

    def test_replace_work_email_when_user_has_none_adds_it(self, bare_user: dict[str, Any]) -> None:
        # RFC 7644 §3.5.2.3 would say noTarget; Entra and Okta send this for users without a work e-mail.
        doc = patched(bare_user, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "a@b.c"})
        assert doc["emails"] == [{"type": "work", "value": "a@b.c"}]
        again = patch(doc, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "a@b.c"})
        assert not again.changed

    def test_add_work_email_value_when_user_has_only_home(self, user: dict[str, Any]) -> None:
        user["emails"] = [{"value": "h@x.y", "type": "home"}]
        doc = patched(user, {"op": "Add", "path": 'emails[type eq "work"].value', "value": "w@x.y"})
        assert doc["emails"] == [{"value": "h@x.y", "type": "home"}, {"type": "work", "value": "w@x.y"}]

    def test_update_user_single_valued(self, user: dict[str, Any]) -> None:
        new = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
        assert patched(user, {"op": "Replace", "path": "userName", "value": new})["userName"] == new

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (False, False),
            ("False", False),
            ("false", False),
            ("FALSE", False),
            ("True", True),
            (" true ", True),
            ([{"value": "False"}], False),
        ],
    )
    def test_disable_user(self, user: dict[str, Any], value: Any, expected: bool) -> None:
        doc = patched(user, {"op": "Replace", "path": "active", "value": value})
        assert doc["active"] is expected

    def test_string_boolean_in_pathless_replace(self, user: dict[str, Any]) -> None:
        assert patched(user, {"op": "replace", "value": {"active": "False"}})["active"] is False

    def test_string_boolean_in_sub_attribute(self, bare_user: dict[str, Any]) -> None:
        doc = patched(
            bare_user,
            {
                "op": "Add",
                "path": "roles",
                "value": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}],
            },
        )
        assert doc["roles"] == [
            {"primary": True, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}
        ]

    def test_pathless_replace_with_full_path_keys(self, user: dict[str, Any]) -> None:
        # aadOptscim062020 behaviour: one path-less replace whose keys are paths.
        doc = patched(
            user,
            {
                "op": "replace",
                "value": {
                    "displayName": "Pvlo",
                    'emails[type eq "work"].value': "TestBcwqnm@test.microsoft.com",
                    "name.givenName": "Gtfd",
                    "name.familyName": "Pkqf",
                    "externalId": "Eqpj",
                    f"{ENT}:employeeNumber": "Eqpj",
                },
            },
        )
        assert doc["displayName"] == "Pvlo"
        assert doc["emails"][0] == {"value": "TestBcwqnm@test.microsoft.com", "type": "work", "primary": True}
        assert doc["name"] == {"givenName": "Gtfd", "familyName": "Pkqf"}
        assert doc["externalId"] == "Eqpj" and doc[ENT]["employeeNumber"] == "Eqpj"

    def test_pathless_replace_creates_missing_work_email(self, bare_user: dict[str, Any]) -> None:
        doc = patched(bare_user, {"op": "replace", "value": {'emails[type eq "work"].value': "a@b.c"}})
        assert doc["emails"] == [{"type": "work", "value": "a@b.c"}]

    def test_single_value_wrapped_in_list(self, bare_user: dict[str, Any]) -> None:
        # Without aadOptscim062020 Entra sends {"op":"Add","path":"nickName","value":[{"value":"Babs"}]}.
        assert (
            patched(bare_user, {"op": "Add", "path": "nickName", "value": [{"value": "Babs"}]})["nickName"]
            == "Babs"
        )

    @pytest.mark.parametrize(
        "value",
        [
            "26118915-6090-4610-87a4-49d0767f6b3e",
            {"value": "26118915-6090-4610-87a4-49d0767f6b3e"},
            [{"value": "26118915-6090-4610-87a4-49d0767f6b3e"}],
            ["26118915-6090-4610-87a4-49d0767f6b3e"],
        ],
    )
    def test_manager_shapes(self, bare_user: dict[str, Any], value: Any) -> None:
        doc = patched(bare_user, {"op": "Add", "path": f"{ENT}:manager", "value": value})
        assert doc[ENT] == {"manager": {"value": "26118915-6090-4610-87a4-49d0767f6b3e"}}
        assert doc["schemas"] == [USER_SCHEMA, ENT]

    @pytest.mark.parametrize("value", ["", None, {"value": ""}, {"value": None}, [], [{"value": ""}]])
    def test_manager_cleared(self, user: dict[str, Any], value: Any) -> None:
        doc = patched(user, {"op": "Replace", "path": f"{ENT}:manager", "value": value})
        assert "manager" not in doc[ENT]

    def test_remove_manager(self, user: dict[str, Any]) -> None:
        doc = patched(user, {"op": "Remove", "path": f"{ENT}:manager", "value": [{"value": JAMES}]})
        assert doc[ENT] == {"employeeNumber": "701984"}

    def test_add_members_with_null_ref(self, group: dict[str, Any]) -> None:
        doc = patched(
            group,
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}]},
            schema=GROUP,
        )
        assert doc["members"][-1] == {"value": "f648f8d5ea4e4cd38e9c"}

    def test_remove_members_by_value_list(self, group: dict[str, Any]) -> None:
        group["members"].append({"value": BABS})
        doc = patched(
            group,
            {
                "op": "Remove",
                "path": "members",
                "value": [{"$ref": None, "value": JAMES}, {"value": "not-a-member"}],
            },
            schema=GROUP,
        )
        assert doc["members"] == [{"value": BABS}]

    def test_remove_members_by_value_list_with_no_match_is_a_no_op(self, group: dict[str, Any]) -> None:
        assert not patch(
            group, {"op": "Remove", "path": "members", "value": [{"value": "x"}]}, schema=GROUP
        ).changed

    def test_add_member_as_bare_string(self, group: dict[str, Any]) -> None:
        doc = patched(group, {"op": "Add", "path": "members", "value": BABS}, schema=GROUP)
        assert doc["members"][-1] == {"value": BABS}
        doc = patched(group, {"op": "Add", "path": "members", "value": [BABS, JAMES]}, schema=GROUP)
        assert [m["value"] for m in doc["members"]] == [JAMES, BABS]

    def test_add_existing_member_with_type_is_not_a_duplicate(self, group: dict[str, Any]) -> None:
        doc = patched(
            group, {"op": "add", "path": "members", "value": [{"value": JAMES, "type": "User"}]}, schema=GROUP
        )
        assert doc["members"] == [{"value": JAMES, "display": "James Smith", "type": "User"}]

    def test_add_existing_member_is_a_no_op(self, group: dict[str, Any]) -> None:
        assert not patch(
            group, {"op": "Add", "path": "members", "value": [{"value": JAMES}]}, schema=GROUP
        ).changed

    def test_replace_group_display_name(self, group: dict[str, Any]) -> None:
        doc = patched(
            group, {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68"}, schema=GROUP
        )
        assert doc["displayName"] == "1879db59-3bdf-4490-ad68"

    def test_password_is_accepted_and_never_stored(self, user: dict[str, Any]) -> None:
        result = patch(
            user,
            {"op": "replace", "path": "password", "value": "t1meMa$heen"},
            {"op": "replace", "value": {"password": "x"}},
        )
        assert not result.changed and "password" not in result.document


# --- Okta ----------------------------------------------------------------------------------------------


class TestOkta:
    def test_deactivate(self, user: dict[str, Any]) -> None:
        result = patch(user, {"op": "replace", "value": {"active": False}})
        assert result.changed and result.document["active"] is False

    def test_group_rename_echoing_the_id(self, group: dict[str, Any]) -> None:
        doc = patched(
            group, {"op": "replace", "value": {"id": group["id"], "displayName": "Test SCIMv2"}}, schema=GROUP
        )
        assert doc["displayName"] == "Test SCIMv2"

    def test_group_rename_with_another_id_is_refused(self, group: dict[str, Any]) -> None:
        fails(
            group,
            {"op": "replace", "value": {"id": "other", "displayName": "x"}},
            scim_type=MUTABILITY,
            schema=GROUP,
        )

    def test_group_membership(self, group: dict[str, Any]) -> None:
        doc = patched(
            group,
            {
                "op": "add",
                "path": "members",
                "value": [{"value": "00u1f96ECLNVOKVMUSEA", "display": "test.user@okta.local"}],
            },
            {"op": "remove", "path": f'members[value eq "{JAMES}"]'},
            schema=GROUP,
        )
        assert doc["members"] == [{"value": "00u1f96ECLNVOKVMUSEA", "display": "test.user@okta.local"}]


# --- errors --------------------------------------------------------------------------------------------


class TestErrors:
    @pytest.mark.parametrize(
        "request_body",
        [
            None,
            [],
            "x",
            {"Operations": [{"op": "add", "path": "title", "value": "x"}]},
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "Operations": [{"op": "add", "path": "title", "value": "x"}],
            },
            {"schemas": PATCH_OP_SCHEMA, "Operations": [{"op": "add", "path": "title", "value": "x"}]},
            {"schemas": [PATCH_OP_SCHEMA]},
            {"schemas": [PATCH_OP_SCHEMA], "Operations": []},
            {"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}},
            {"schemas": [PATCH_OP_SCHEMA], "Operations": ["add"]},
            {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"path": "title", "value": "x"}]},
            {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "move", "path": "title", "value": "x"}]},
            {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": 1, "path": "title", "value": "x"}]},
        ],
    )
    def test_malformed_body_is_invalid_syntax(self, user: dict[str, Any], request_body: Any) -> None:
        with pytest.raises(ScimError) as info:
            apply_patch(user, request_body, USER)
        assert (info.value.status, info.value.scim_type) == (400, INVALID_SYNTAX)

    def test_body_keys_are_matched_case_insensitively(self, user: dict[str, Any]) -> None:
        doc = apply_patch(
            user,
            {
                "Schemas": [PATCH_OP_SCHEMA.upper()],
                "operations": [{"OP": "ADD", "Path": "title", "Value": "T"}],
            },
            USER,
        ).document
        assert doc["title"] == "T"

    def test_missing_value_is_invalid_value(self, user: dict[str, Any]) -> None:
        fails(user, {"op": "add", "path": "title"}, scim_type=INVALID_VALUE)

    def test_remove_without_path_is_no_target(self, user: dict[str, Any]) -> None:
        fails(user, {"op": "remove"}, scim_type=NO_TARGET)
        fails(user, {"op": "remove", "path": "  "}, scim_type=NO_TARGET)

    @pytest.mark.parametrize(
        "path",
        [
            "bogus",
            "name.bogus",
            'emails[type eq "work"].bogus',
            "members",
            f"{ENT}:bogus",
            f"{ENT}:manager.bogus",
            "urn:x:y:z:attr",
        ],
    )
    def test_unknown_attribute_is_invalid_path(self, user: dict[str, Any], path: str) -> None:
        error = fails(user, {"op": "replace", "path": path, "value": "x"}, scim_type=INVALID_PATH)
        assert "bogus" in error.detail or "members" in error.detail or "urn:x:y:z" in error.detail

    def test_unknown_attribute_in_pathless_value_is_invalid_path(self, user: dict[str, Any]) -> None:
        error = fails(user, {"op": "add", "value": {"favouriteColour": "red"}}, scim_type=INVALID_PATH)
        assert "favouriteColour" in error.detail

    @pytest.mark.parametrize(
        "path",
        [
            'emails[type eq "work"',
            'emails[type xx "work"]',
            "name..givenName",
            'displayName[value eq "x"]',
            "emails[primary gt true]",
            "1abc",
            USER_SCHEMA,
        ],
    )
    def test_malformed_path_is_invalid_path(self, user: dict[str, Any], path: str) -> None:
        fails(user, {"op": "replace", "path": path, "value": "x"}, scim_type=INVALID_PATH)

    def test_non_string_path_is_invalid_path(self, user: dict[str, Any]) -> None:
        fails(user, {"op": "replace", "path": 5, "value": "x"}, scim_type=INVALID_PATH)

    @pytest.mark.parametrize(
        "operation",
        [
            {"op": "replace", "path": "id", "value": "new-id"},
            {"op": "replace", "value": {"id": "new-id"}},
            {"op": "remove", "path": "id"},
            {"op": "replace", "path": "meta", "value": {"version": "x"}},
            {"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"},
            {"op": "remove", "path": "meta.created"},
            {"op": "add", "path": "groups", "value": [{"value": "g1"}]},
            {"op": "remove", "path": "groups"},
            {"op": "remove", "path": 'groups[value eq "g1"]'},
            {"op": "replace", "path": f"{ENT}:manager.displayName", "value": "Someone Else"},
            {"op": "remove", "path": f"{ENT}:manager.displayName"},
        ],
    )
    def test_read_only_is_mutability(self, user: dict[str, Any], operation: dict[str, Any]) -> None:
        error = fails(user, operation, scim_type=MUTABILITY)
        assert "readOnly" in error.detail

    def test_read_only_set_to_its_value_is_a_no_op(self, user: dict[str, Any]) -> None:
        result = patch(
            user,
            {"op": "replace", "path": "id", "value": BABS},
            {"op": "replace", "path": f"{ENT}:manager.displayName", "value": "John Smith"},
        )
        assert not result.changed

    @pytest.mark.parametrize(
        "operation",
        [
            {"op": "remove", "path": "userName"},
            {"op": "replace", "path": "userName", "value": None},
            {"op": "replace", "path": "userName", "value": ""},
            {"op": "replace", "value": {"userName": None}},
        ],
    )
    def test_removing_required_attribute_is_mutability(
        self, user: dict[str, Any], operation: dict[str, Any]
    ) -> None:
        # RFC 7644 §3.5.2: removing/unassigning a required attribute -> "mutability".
        fails(user, operation, scim_type=MUTABILITY)

    def test_required_attribute_of_group(self, group: dict[str, Any]) -> None:
        fails(group, {"op": "remove", "path": "displayName"}, scim_type=MUTABILITY, schema=GROUP)

    @pytest.mark.parametrize(
        ("operation", "named", "expected"),
        [
            ({"op": "replace", "path": "active", "value": "maybe"}, "active", "boolean"),
            ({"op": "replace", "path": "active", "value": 1}, "active", "boolean"),
            ({"op": "replace", "path": "userName", "value": 5}, "userName", "string"),
            ({"op": "replace", "path": "userName", "value": True}, "userName", "string"),
            ({"op": "replace", "path": "name", "value": "Babs"}, "name", "object"),
            ({"op": "replace", "path": "name", "value": {"givenName": 3}}, "name.givenName", "string"),
            ({"op": "replace", "path": "name", "value": {"nick": "x"}}, "nick", "sub-attribute"),
            ({"op": "replace", "path": "nickName", "value": ["a", "b"]}, "nickName", "single-valued"),
            ({"op": "replace", "path": "nickName", "value": {"a": 1}}, "nickName", "string"),
            ({"op": "add", "path": "emails", "value": [{"value": 5}]}, "emails.value", "string"),
            ({"op": "add", "path": "emails", "value": [None]}, "emails", "null"),
            ({"op": "add", "path": "emails", "value": [[{"value": "a"}]]}, "emails", "object"),
            (
                {"op": "add", "path": "x509Certificates", "value": [{"value": "not base64!"}]},
                "x509Certificates.value",
                "base64",
            ),
            (
                {"op": "replace", "path": 'emails[type eq "work"].primary', "value": "yes"},
                "primary",
                "boolean",
            ),
            ({"op": "replace", "path": f"{ENT}:manager", "value": 42}, "manager.value", "string"),
            ({"op": "replace", "path": f"{ENT}:employeeNumber", "value": 701984}, "employeeNumber", "string"),
            ({"op": "replace", "path": ENT, "value": "x"}, ENT, "object"),
            ({"op": "add", "value": "x"}, "add", "object"),
            ({"op": "add", "path": 'addresses[type eq "other"]', "value": "plain"}, "addresses", "object"),
        ],
    )
    def test_type_errors_are_invalid_value(
        self, user: dict[str, Any], operation: dict[str, Any], named: str, expected: str
    ) -> None:
        error = fails(user, operation, scim_type=INVALID_VALUE)
        assert named in error.detail and expected in error.detail, error.detail

    def test_immutable(self) -> None:
        code = Attribute(name="code", type="string", mutability="immutable")
        tags = Attribute(name="tags", type="string", multi_valued=True, mutability="immutable")
        schema = replace(USER, core={**USER.core, "code": code, "tags": tags})
        doc: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": "u"}
        doc = patched(
            doc,
            {"op": "add", "path": "code", "value": "A"},
            {"op": "add", "path": "tags", "value": ["x"]},
            schema=schema,
        )
        assert doc["code"] == "A" and doc["tags"] == ["x"]
        assert not patch(doc, {"op": "replace", "path": "code", "value": "A"}, schema=schema).changed
        fails(doc, {"op": "replace", "path": "code", "value": "B"}, scim_type=MUTABILITY, schema=schema)
        fails(doc, {"op": "remove", "path": "code"}, scim_type=MUTABILITY, schema=schema)
        fails(doc, {"op": "add", "path": "tags", "value": ["y"]}, scim_type=MUTABILITY, schema=schema)

    def test_immutable_member_value(self, group: dict[str, Any]) -> None:
        fails(
            group,
            {"op": "replace", "path": f'members[value eq "{JAMES}"].value', "value": "x"},
            scim_type=MUTABILITY,
            schema=GROUP,
        )
        doc = patched(
            group,
            {"op": "replace", "path": f'members[value eq "{JAMES}"].display', "value": "J"},
            schema=GROUP,
        )
        assert doc["members"] == [{"value": JAMES, "display": "J"}]


# --- values.py -------------------------------------------------------------------------------------------


TYPED = Attribute(
    name="typed",
    type="complex",
    sub_attributes=(
        Attribute(name="n", type="integer"),
        Attribute(name="d", type="decimal"),
        Attribute(name="t", type="dateTime"),
        Attribute(name="r", type="reference"),
        Attribute(name="b", type="binary"),
        Attribute(name="f", type="boolean"),
    ),
)
TYPED._subs.update({s.name.lower(): s for s in TYPED.sub_attributes})


class TestValues:
    def test_types_are_normalised(self) -> None:
        value = {
            "N": 3.0,
            "d": 2,
            "t": "2011-08-01T18:29:49.793Z",
            "r": "https://x",
            "b": "aGVsbG8=",
            "f": "TRUE",
        }
        assert validate_attribute_value(TYPED, value) == {
            "n": 3,
            "d": 2.0,
            "t": "2011-08-01T18:29:49.793Z",
            "r": "https://x",
            "b": "aGVsbG8=",
            "f": True,
        }

    @pytest.mark.parametrize(
        ("sub", "value", "expected"),
        [
            ("n", 1.5, "integer"),
            ("n", True, "integer"),
            ("n", "1", "integer"),
            ("d", "1.0", "decimal"),
            ("d", float("nan"), "decimal"),
            ("d", False, "decimal"),
            ("t", "2011-08-01", "dateTime"),
            ("t", "yesterday", "dateTime"),
            ("t", 5, "dateTime"),
            ("r", 5, "reference"),
            ("b", "@@", "base64"),
            ("f", "yes", "boolean"),
        ],
    )
    def test_type_errors(self, sub: str, value: Any, expected: str) -> None:
        with pytest.raises(ScimError) as info:
            validate_attribute_value(TYPED, {sub: value})
        assert info.value.scim_type == INVALID_VALUE
        assert f"typed.{sub}" in info.value.detail and expected in info.value.detail

    def test_multi_valued_needs_a_list(self) -> None:
        with pytest.raises(ScimError, match="multi-valued"):
            validate_attribute_value(USER.core["emails"], {"value": "a@b.c"})

    def test_unassigned_values_are_none(self) -> None:
        assert validate_attribute_value(USER.core["emails"], []) is None
        assert validate_attribute_value(USER.core["name"], {"givenName": None}) is None

    def test_read_only_sub_attributes_can_be_dropped(self) -> None:
        manager = USER.extensions[ENT]["manager"]
        value = {"value": "m", "displayName": "M"}
        assert validate_attribute_value(manager, value) == value
        assert validate_attribute_value(manager, value, drop_read_only=True) == {"value": "m"}

    def test_normalise_document(self) -> None:
        custom = "urn:example:custom:1.0:User"
        doc = normalise_document(
            {
                "schemas": [USER_SCHEMA.upper(), custom],
                "UserName": "bjensen",
                "ACTIVE": "False",
                "password": "secret",
                "name": {"GIVENNAME": "B", "familyName": None},
                "roles": [{"primary": "True", "value": "Admin"}],
                "emails": [],
                ENT.lower(): {"EmployeeNumber": "1", "manager": {"value": "m", "displayName": "M"}},
                custom: {"anything": [1, {"x": None}]},
                "meta": {"resourceType": "User"},
                "id": "1",
            },
            USER,
        )
        assert doc == {
            "schemas": [USER_SCHEMA, ENT, custom],
            "userName": "bjensen",
            "active": False,
            "name": {"givenName": "B"},
            "roles": [{"primary": True, "value": "Admin"}],
            ENT: {"employeeNumber": "1", "manager": {"value": "m", "displayName": "M"}},
            custom: {"anything": [1, {"x": None}]},
            "meta": {"resourceType": "User"},
            "id": "1",
        }

    def test_normalise_document_can_drop_read_only(self) -> None:
        doc = normalise_document(
            {
                "userName": "b",
                "id": "1",
                "meta": {"version": "x"},
                "groups": [{"value": "g"}],
                ENT: {"manager": {"value": "m", "displayName": "M"}},
            },
            USER,
            drop_read_only=True,
        )
        assert doc == {"schemas": [USER_SCHEMA, ENT], "userName": "b", ENT: {"manager": {"value": "m"}}}

    @pytest.mark.parametrize(
        ("doc", "scim_type", "named"),
        [
            ({"userName": "b", "favouriteColour": "red"}, INVALID_SYNTAX, "favouriteColour"),
            (
                {"userName": "b", "urn:example:custom:1.0:User": {"a": 1}},
                INVALID_SYNTAX,
                "urn:example:custom:1.0:User",
            ),
            ({"userName": "b", f"{ENT}": {"bogus": 1}}, INVALID_SYNTAX, "bogus"),
            ({"userName": "b", "username": "c"}, INVALID_SYNTAX, "userName"),
            ({"userName": "b", "schemas": "x"}, INVALID_SYNTAX, "schemas"),
            ({"userName": "b", ENT: "x"}, INVALID_VALUE, ENT),
            ({"userName": "b", "active": "nope"}, INVALID_VALUE, "active"),
            ({"displayName": "no user name"}, INVALID_VALUE, "userName"),
            ({"userName": None}, INVALID_VALUE, "userName"),
            ({"userName": ""}, INVALID_VALUE, "userName"),
            ([], INVALID_SYNTAX, "User"),
        ],
    )
    def test_normalise_document_errors(self, doc: Any, scim_type: str, named: str) -> None:
        with pytest.raises(ScimError) as info:
            normalise_document(doc, USER)
        assert info.value.scim_type == scim_type and named in info.value.detail


# --- properties ------------------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_email = st.fixed_dictionaries(
    {"value": _text},
    optional={
        "type": st.sampled_from(["work", "home", "other", "Work"]),
        "primary": st.booleans(),
        "display": _text,
    },
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemas": [USER_SCHEMA], "id": draw(_text), "userName": draw(_text.filter(bool))}
    optional = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "displayName": _text,
                "nickName": _text,
                "active": st.booleans(),
                "externalId": _text,
                "name": st.fixed_dictionaries({}, optional={"givenName": _text, "familyName": _text}),
                "emails": st.lists(_email, max_size=4),
                "addresses": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "type": st.sampled_from(["work", "home"]),
                            "locality": _text,
                            "country": _text,
                        },
                    ),
                    max_size=3,
                ),
                ENT: st.fixed_dictionaries(
                    {},
                    optional={
                        "employeeNumber": _text,
                        "manager": st.fixed_dictionaries(
                            {"value": _text.filter(bool)}, optional={"displayName": _text}
                        ),
                    },
                ),
                "meta": st.just(
                    {"resourceType": "User", "created": "2024-01-01T00:00:00Z", "version": 'W/"1"'}
                ),
            },
        )
    )
    doc.update(optional)
    for email_list in (doc.get("emails") or [],):
        seen = False
        for email in email_list:
            if email.get("primary") is True:
                email["primary"] = not seen and email["primary"]
                seen = True
    try:
        return normalise_document(doc, USER)
    except ScimError:
        assume(False)
        raise


_paths = st.sampled_from(
    [
        "displayName",
        "DISPLAYNAME",
        "nickName",
        "active",
        "externalId",
        "userName",
        "username",
        "title",
        "name",
        "name.givenName",
        "Name.FamilyName",
        "name.bogus",
        "emails",
        "emails.type",
        "emails.value",
        'emails[type eq "work"]',
        'emails[type eq "work"].value',
        'emails[TYPE eq "home"].primary',
        'emails[type eq "work" and value co "@"]',
        "emails[value pr].display",
        'emails[not (type eq "work")]',
        "addresses",
        'addresses[type eq "work"].locality',
        "roles",
        "x509Certificates",
        "password",
        "groups",
        "id",
        "meta",
        "meta.version",
        "schemas",
        "bogus",
        "emails[type eq",
        "urn:x:y:attr",
        ENT,
        f"{ENT}:employeeNumber",
        f"{ENT}:manager",
        f"{ENT}:manager.value",
        f"{ENT}:manager.displayName",
        f"{ENT.upper()}:department",
        f"{USER_SCHEMA}:title",
    ]
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_values = st.one_of(
    _text,
    st.booleans(),
    st.sampled_from(["True", "False", "false", "", None]),
    st.lists(_email, max_size=3),
    _email,
    st.fixed_dictionaries({}, optional={"givenName": _text}),
    st.lists(st.fixed_dictionaries({"value": _text}), min_size=1, max_size=1),
    st.dictionaries(
        st.sampled_from(
            [
                "displayName",
                "active",
                "name.givenName",
                'emails[type eq "work"].value',
                f"{ENT}:employeeNumber",
                ENT,
                "userName",
                "bogus",
            ]
        ),
        _text | st.booleans() | st.sampled_from(["False", None]),
        max_size=3,
    ),
    _json,
)
_ops = st.sampled_from(["add", "replace", "remove", "Add", "Replace", "Remove"])
_plain_email = st.fixed_dictionaries({"value": _text}, optional={"type": st.sampled_from(["work", "home"])})
# (path, value) pairs that are usually valid, so that sequences get past their first operation.
_valid_pairs = st.one_of(
    st.tuples(
        st.sampled_from(
            [
                "displayName",
                "nickName",
                "title",
                "name.givenName",
                "emails.display",
                'emails[type eq "work"].value',
                f"{ENT}:employeeNumber",
                f"{ENT}:manager",
                f"{ENT}:manager.value",
                'addresses[type eq "home"].locality',
            ]
        ),
        _text,
    ),
    st.tuples(
        st.sampled_from(["active", 'emails[type eq "home"].primary']),
        st.booleans() | st.sampled_from(["True", "False", "false"]),
    ),
    st.tuples(st.just("emails"), st.lists(_plain_email, max_size=3)),
    st.tuples(st.just("name"), st.fixed_dictionaries({}, optional={"givenName": _text, "familyName": _text})),
    st.tuples(
        st.none(),
        st.dictionaries(
            st.sampled_from(
                ["displayName", "name.familyName", 'emails[type eq "work"].value', f"{ENT}:department"]
            ),
            _text,
            max_size=3,
        ),
    ),
)


@st.composite
def valid_operations(draw: st.DrawFn, op: st.SearchStrategy[str] = _ops) -> dict[str, Any]:
    path, value = draw(_valid_pairs)
    operation: dict[str, Any] = {"op": draw(op), "value": value}
    if path is not None:
        operation["path"] = path
    elif operation["op"].lower() == "remove":
        operation["op"] = "replace"
    return operation


@st.composite
def operations(draw: st.DrawFn, op: st.SearchStrategy[str] = _ops) -> dict[str, Any]:
    operation: dict[str, Any] = {"op": draw(op)}
    if draw(st.integers(0, 9)) > 0:
        operation["path"] = draw(_paths)
    if operation["op"].lower() != "remove" or draw(st.booleans()):
        operation["value"] = draw(_values)
    return operation


def _assert_canonical(doc: dict[str, Any]) -> None:
    for key, value in doc.items():
        if key == "schemas":
            assert isinstance(value, list) and value[0] == USER_SCHEMA
            continue
        ext = USER.extensions.get(key)
        items = value.items() if ext is not None else [(key, value)]
        for name, item in items:
            attr = ext[name.lower()] if ext is not None else USER.attribute(name)
            assert attr is not None and attr.name == name, name
            assert validate_attribute_value(attr, item) == item, (name, item)
    assert "password" not in doc
    assert normalise_document(doc, USER) == doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), ops=st.lists(operations() | valid_operations(), min_size=1, max_size=6))
def test_property_only_scim_errors_no_mutation_canonical_result(
    doc: dict[str, Any], ops: list[dict[str, Any]]
) -> None:
    request = body(*ops)
    doc_before, request_before = copy.deepcopy(doc), copy.deepcopy(request)
    try:
        result = apply_patch(doc, request, USER)
    except ScimError as exc:
        assert exc.status == 400 and exc.scim_type
        return
    finally:
        assert doc == doc_before and request == request_before
    _assert_canonical(result.document)
    assert result.changed == (result.document != doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=documents(),
    op=st.one_of(
        operations(st.sampled_from(["replace", "Replace"])),
        valid_operations(st.sampled_from(["replace", "Replace"])),
    ),
)
def test_property_replace_is_idempotent(doc: dict[str, Any], op: dict[str, Any]) -> None:
    # Replacing whole filtered values (`emails[type eq "work"]`) can make them stop matching the filter,
    # after which the RFC makes the same replace fail with noTarget: not idempotent by definition.
    assume(not op.get("path", "").endswith("]"))
    try:
        first = apply_patch(doc, body(op), USER)
    except ScimError:
        assume(False)
        return
    second = apply_patch(first.document, body(op), USER)
    assert second.document == first.document
    assert not second.changed


def test_clearing_a_sub_attribute_of_no_values_changes_nothing() -> None:
    doc = {"schemas": [USER_SCHEMA], "userName": "0", "emails": [{"value": ""}]}
    first = apply_patch(doc, body({"op": "replace", "path": "emails.value", "value": None}), USER)
    again = apply_patch(first.document, body({"op": "replace", "path": "emails.value", "value": None}), USER)
    assert again.document == first.document and not again.changed
    with pytest.raises(ScimError) as refused:  # setting one on no values still has no target
        apply_patch(first.document, body({"op": "replace", "path": "emails.value", "value": "a@b.c"}), USER)
    assert refused.value.scim_type == "noTarget"
