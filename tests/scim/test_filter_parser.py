from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisio.scim.errors import INVALID_FILTER, INVALID_PATH, ScimError
from provisio.scim.filter_ast import (
    And,
    AttrPath,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
)
from provisio.scim.filter_parser import MAX_DEPTH, MAX_LENGTH, parse_filter, parse_patch_path

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
TS = "2011-05-13T04:42:34Z"


def p(attr: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(attr, sub, urn)


EMPLOYEE = Compare(p("userType"), "eq", "Employee")
EMAILS_OR = Or(Compare(p("emails"), "co", "example.com"), Compare(p("emails", "value"), "co", "example.org"))
WORK_EXAMPLE = ValuePath(
    p("emails"), And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@example.com"))
)

# RFC 7644 §3.4.2.2, Figure 2, verbatim (the RFC wraps two of them over lines; whitespace is free).
RFC_EXAMPLES = [
    ('userName eq "bjensen"', Compare(p("userName"), "eq", "bjensen")),
    ('name.familyName co "O\'Malley"', Compare(p("name", "familyName"), "co", "O'Malley")),
    ('userName sw "J"', Compare(p("userName"), "sw", "J")),
    (f'{CORE}:userName sw "J"', Compare(p("userName", urn=CORE), "sw", "J")),
    ("title pr", Present(p("title"))),
    (f'meta.lastModified gt "{TS}"', Compare(p("meta", "lastModified"), "gt", TS)),
    (f'meta.lastModified ge "{TS}"', Compare(p("meta", "lastModified"), "ge", TS)),
    (f'meta.lastModified lt "{TS}"', Compare(p("meta", "lastModified"), "lt", TS)),
    (f'meta.lastModified le "{TS}"', Compare(p("meta", "lastModified"), "le", TS)),
    ('title pr and userType eq "Employee"', And(Present(p("title")), EMPLOYEE)),
    ('title pr or userType eq "Intern"', Or(Present(p("title")), Compare(p("userType"), "eq", "Intern"))),
    (
        '\n schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"',
        Compare(p("schemas"), "eq", ENT),
    ),
    (
        'userType eq "Employee" and (emails co "example.com" or\n  emails.value co "example.org")',
        And(EMPLOYEE, EMAILS_OR),
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or\n  emails.value co "example.org")',
        And(Compare(p("userType"), "ne", "Employee"), Not(EMAILS_OR)),
    ),
    (
        'userType eq "Employee" and (emails.type eq "work")',
        And(EMPLOYEE, Compare(p("emails", "type"), "eq", "work")),
    ),
    (
        'userType eq "Employee" and emails[type eq "work" and\n  value co "@example.com"]',
        And(EMPLOYEE, WORK_EXAMPLE),
    ),
    (
        'emails[type eq "work" and value co "@example.com"] or\n'
        '  ims[type eq "xmpp" and value co "@foo.com"]',
        Or(
            WORK_EXAMPLE,
            ValuePath(p("ims"), And(Compare(p("type"), "eq", "xmpp"), Compare(p("value"), "co", "@foo.com"))),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES, ids=[t for t, _ in RFC_EXAMPLES])
def test_rfc_examples(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


def test_keywords_are_case_insensitive() -> None:
    assert parse_filter('Username Eq "john"') == Compare(p("Username"), "eq", "john")
    assert parse_filter("a PR AND NOT (b Pr) oR c pr") == Or(
        And(Present(p("a")), Not(Present(p("b")))), Present(p("c"))
    )
    assert parse_filter("active eq TRUE") == Compare(p("active"), "eq", True)
    assert parse_filter("x eq NULL") == Compare(p("x"), "eq", None)


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (Present(p(n)) for n in "abc")
    assert parse_filter("a pr or b pr and c pr") == Or(a, And(b, c))
    assert parse_filter("a pr and b pr or c pr") == Or(And(a, b), c)
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(a, b), c)
    assert parse_filter("a pr and b pr and c pr") == And(And(a, b), c)
    assert parse_filter("not (a pr) and b pr") == And(Not(a), b)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('x eq "a\\"b\\\\c\\u00e9\\n"', 'a"b\\cé\n'),
        ('x eq "\\ud83d\\ude00"', "\U0001f600"),
        ("x eq 42", 42),
        ("x eq -0", 0),
        ("x eq 1.5", 1.5),
        ("x eq 2e3", 2000.0),
        ("x eq -1.25E-2", -0.0125),
        ("x eq true", True),
        ("x eq false", False),
        ("x eq null", None),
        ('x eq ""', ""),
        # Leniency: bare tokens are strings (Microsoft's validator sends userName eq Test_User_abc).
        ("x eq Test_User_abc", "Test_User_abc"),
        ("x eq 01", "01"),
        ("x eq joe@example.com", "joe@example.com"),
    ],
)
def test_literals(text: str, value: object) -> None:
    result = parse_filter(text)
    assert isinstance(result, Compare)
    assert result.value == value and type(result.value) is type(value)


def test_bare_token_ends_at_brackets_and_parens() -> None:
    assert parse_filter("(userName eq bob)") == Compare(p("userName"), "eq", "bob")
    assert parse_filter("emails[type eq work]") == ValuePath(p("emails"), Compare(p("type"), "eq", "work"))


def test_attribute_paths() -> None:
    assert parse_filter(f'{ENT}:manager.value eq "x"') == Compare(p("manager", "value", ENT), "eq", "x")
    assert parse_filter(f"{ENT}:employeeNumber pr") == Present(p("employeeNumber", urn=ENT))
    assert parse_filter("groups.$ref pr") == Present(p("groups", "$ref"))
    assert parse_filter("x-y_1 pr") == Present(p("x-y_1"))


def test_whitespace_is_lenient() -> None:
    assert parse_filter('  userName   eq\t"a"  ') == Compare(p("userName"), "eq", "a")
    assert parse_filter("not(a pr)and(b pr)") == And(Not(Present(p("a"))), Present(p("b")))


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        (
            'userName xx "a"',
            10,
            'expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "userName"',
        ),
        ("title pr and userName", 22, 'after "userName"'),
        ("", 1, "empty"),
        ("userName eq", 12, 'expected a value after "eq"'),
        ('userName eq "abc', 13, "unterminated string"),
        ('userName eq "a\\qb"', 15, "invalid string literal"),
        ('userName eq "a" "b"', 17, 'expected "and", "or" or the end of the filter, found \'"b"\''),
        ("(a pr", 6, 'missing ")" to close the "(" at position 1'),
        ("a pr)", 5, 'found ")"'),
        ('emails[type eq "w"', 19, 'missing "]" to close the "[" at position 7'),
        ("emails[a[b pr] pr]", 9, "cannot be nested"),
        ("not a pr", 5, 'expected "(" after "not"'),
        ("a pr and", 9, 'expected an expression after "and"'),
        ("a.b.c pr", 1, "more than one sub-attribute"),
        ("1abc pr", 1, "not a valid attribute path"),
        (":abc pr", 1, "schema URN"),
        ('a eq "x\\u0000"', 6, "NUL"),
        ('a eq "\\ud800"', 6, "surrogate"),
        ("a eq 1e999", 6, "out of range"),
    ],
)
def test_errors_name_position_and_expectation(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ScimError) as info:
        parse_filter(text)
    err = info.value
    assert err.status == 400 and err.scim_type == INVALID_FILTER
    assert err.detail.startswith(f"Invalid filter at position {position}: "), err.detail
    assert fragment in err.detail


def test_limits() -> None:
    with pytest.raises(ScimError, match="longer than"):
        parse_filter("a pr or " * (MAX_LENGTH // 8) + "a pr")
    deep_ok = "(" * MAX_DEPTH + "a pr" + ")" * MAX_DEPTH
    assert parse_filter(deep_ok) == Present(p("a"))
    with pytest.raises(ScimError, match="nested more than"):
        parse_filter("(" * (MAX_DEPTH + 1) + "a pr" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ScimError, match="nested more than"):
        parse_filter("not (" * 300 + "a pr" + ")" * 300)
    # A long flat chain is fine (no recursion per operand).
    long_chain = " or ".join(["a pr"] * 500)
    assert len(long_chain) < MAX_LENGTH
    assert isinstance(parse_filter(long_chain), Or)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name.givenName", PatchPath(p("name", "givenName"))),
        ("userName", PatchPath(p("userName"))),
        (f"{ENT}:manager", PatchPath(p("manager", urn=ENT))),
        (f"{ENT}:manager.value", PatchPath(p("manager", "value", ENT))),
        ('emails[type eq "work"]', PatchPath(p("emails"), Compare(p("type"), "eq", "work"))),
        ('emails[type eq "work"].value', PatchPath(p("emails"), Compare(p("type"), "eq", "work"), "value")),
        ('members[value eq "x"]', PatchPath(p("members"), Compare(p("value"), "eq", "x"))),
        (
            'members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName',
            PatchPath(
                p("members"), Compare(p("value"), "eq", "2819c223-7f76-453a-919d-413861904646"), "displayName"
            ),
        ),
        (
            'addresses[type eq "work" and not (primary eq false)].streetAddress',
            PatchPath(
                p("addresses"),
                And(Compare(p("type"), "eq", "work"), Not(Compare(p("primary"), "eq", False))),
                "streetAddress",
            ),
        ),
    ],
)
def test_patch_paths(text: str, expected: PatchPath) -> None:
    assert parse_patch_path(text) == expected


def test_extension_urn_alone_keeps_its_text() -> None:
    parsed = parse_patch_path(ENT)
    assert parsed.path.text == ENT  # consumers re-split it with ResourceSchema.split_urn


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("emails[type eq", "expected a value"),
        ('emails[type eq "work"].', "sub-attribute name"),
        ('emails[type eq "work"]x', "end of the path"),
        ("name givenName", '"[" or the end of the path'),
        ('emails[type eq "work"].value.x', "end of the path"),
    ],
)
def test_patch_path_errors(text: str, fragment: str) -> None:
    with pytest.raises(ScimError) as info:
        parse_patch_path(text)
    assert info.value.scim_type == INVALID_PATH
    assert info.value.detail.startswith("Invalid path")
    assert fragment in info.value.detail


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_scim_errors(text: str) -> None:
    for parse in (parse_filter, parse_patch_path):
        try:
            parse(text)
        except ScimError as exc:
            assert exc.status == 400


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='abc. ()[]"\\:eqnotrpd0-1', max_size=40))
def test_filter_like_text_raises_only_scim_errors(text: str) -> None:
    try:
        parse_filter(text)
    except ScimError as exc:
        assert exc.scim_type == INVALID_FILTER
