"""filter_sql against real SQLite/PostgreSQL, checked against the reference evaluator (filter_eval).

The evaluator sees what a client sees - the served resource (``serialize.user_resource``), whose
``id`` and ``meta`` come from columns - so the property test compares SQL with exactly that.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from provisio.db.engine import Database
from provisio.db.models import Member, Workspace
from provisio.domain.members import _sync_columns
from provisio.scim.errors import INVALID_FILTER, ScimError
from provisio.scim.filter_ast import And, AttrPath, Compare, CompareOp, Filter, Not, Or, Present, ValuePath
from provisio.scim.filter_eval import matches
from provisio.scim.filter_parser import parse_filter
from provisio.scim.filter_sql import to_sql
from provisio.scim.schemas import ENTERPRISE_USER_SCHEMA as ENT
from provisio.scim.schemas import USER_SCHEMA, user_schema
from provisio.scim.serialize import user_resource

SCHEMA = user_schema()
T0 = datetime(2011, 5, 13, 4, 42, 34, 123456, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------------------


async def insert(db: Database, rows: list[tuple[dict[str, Any], datetime, datetime, int]]) -> str:
    """A new workspace with one member per (stored doc, created, modified, version); returns its id."""
    ws = Workspace(id=str(uuid.uuid4()), key=uuid.uuid4().hex, name="filters")
    async with db.writing() as session:
        session.add(ws)
        await session.flush()
        for doc, created, modified, version in rows:
            m = Member(id=doc.pop("id", None) or str(uuid.uuid4()), workspace_id=ws.id)
            _sync_columns(m, doc)  # the promoted columns exactly as the domain fills them
            m.created_at, m.modified_at, m.version = created, modified, version
            session.add(m)
    return ws.id


async def sql_user_names(db: Database, ws: str, filt: Filter) -> set[str]:
    async with db.reading() as session:
        stmt = sa.select(Member.user_name).where(Member.workspace_id == ws, to_sql(filt, SCHEMA, db.dialect))
        return set((await session.execute(stmt)).scalars())


async def served(db: Database, ws: str) -> list[dict[str, Any]]:
    async with db.reading() as session:
        members = (await session.execute(sa.select(Member).where(Member.workspace_id == ws))).scalars()
        return [user_resource(m, f"https://provisio.test/scim/v2/x/Users/{m.id}") for m in members]


def eval_user_names(resources: list[dict[str, Any]], filt: Filter) -> set[str]:
    return {r["userName"] for r in resources if matches(filt, r, None, SCHEMA)}


# --- fixed data set --------------------------------------------------------------------------------


def _fixed_rows() -> list[tuple[dict[str, Any], datetime, datetime, int]]:
    return [
        (
            {
                "id": "2819c223-7f76-453a-919d-413861904646",
                "schemas": [USER_SCHEMA, ENT],
                "userName": "bjensen",
                "externalId": "bj-1",
                "name": {"familyName": "Jensen", "givenName": "Barbara"},
                "displayName": "Babs Jensen",
                "title": "Tour Guide",
                "userType": "Employee",
                "active": True,
                "emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": True},
                    {"value": "babs@jensen.org", "type": "home"},
                ],
                "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjEL"}],
                ENT: {"employeeNumber": "701984", "manager": {"value": "MGR-1", "displayName": "John"}},
            },
            T0,
            T0 + timedelta(days=1),
            3,
        ),
        (
            {
                "schemas": [USER_SCHEMA],
                "userName": "JOMalley",
                "name": {"familyName": "O'Malley", "givenName": "Joe"},
                "userType": "Intern",
                "active": False,
                "emails": [{"value": "joe@example.org", "type": "work"}],
                "ims": [{"value": "joe@foo.com", "type": "xmpp"}],
            },
            T0 + timedelta(days=2),
            T0 + timedelta(days=2),
            1,
        ),
        (
            {
                "userName": "Zed_%x",
                "externalId": "ZED",
                "displayName": "",
                "title": None,
                "active": True,
                "emails": [],
                "userType": "Employee",
            },
            T0 - timedelta(days=1),
            T0 - timedelta(microseconds=1),
            1,
        ),
        (
            {
                "userName": "Ärger@Example.COM",
                "name": {},
                "title": "tour guide",
                "emails": [{"type": "work"}, {"value": "w@x.io", "type": "WORK", "primary": False}, "junk"],
                "phoneNumbers": {"value": "not a list"},
                ENT: {"manager": {"displayName": "nobody"}},
            },
            T0 + timedelta(microseconds=500),
            T0 + timedelta(microseconds=999),
            7,
        ),
    ]


B, J, Z, A = "bjensen", "JOMalley", "Zed_%x", "Ärger@Example.COM"
ALL = {B, J, Z, A}
TS = "2011-05-13T04:42:34Z"

CASES: list[tuple[str, set[str]]] = [
    # RFC 7644 Figure 2
    ('userName eq "bjensen"', {B}),
    ('name.familyName co "O\'Malley"', {J}),
    ('userName sw "J"', {J}),
    (f'{USER_SCHEMA}:userName sw "J"', {J}),
    ("title pr", {B, A}),
    (f'meta.lastModified gt "{TS}"', ALL),
    (f'meta.lastModified ge "{TS}"', ALL),
    (f'meta.lastModified lt "{TS}"', set()),
    (f'meta.lastModified le "{TS}"', set()),
    ('title pr and userType eq "Employee"', {B}),
    ('title pr or userType eq "Intern"', {B, J, A}),
    (f'schemas eq "{ENT}"', {B, A}),
    ('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', {B}),
    ('userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")', set()),
    ('userType eq "Employee" and (emails.type eq "work")', {B}),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', {B}),
    (
        'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]',
        {B, J},
    ),
    # operators and case rules
    ('userName eq "BJENSEN"', {B}),
    ('userName eq "ärger@example.com"', {A}),  # userName folds Unicode (user_name_lower)
    ('title eq "TOUR GUIDE"', {B, A}),
    ('userName ne "bjensen"', {J, Z, A}),
    ('userName co "%"', {Z}),
    ('userName co "_"', {Z}),
    ('userName ew "%X"', {Z}),
    ('userName gt "k"', {Z, A}),
    ('userName le "jomalley"', {B, J}),
    ('externalId eq "zed"', set()),  # caseExact
    ('externalId eq "ZED"', {Z}),
    ('externalId sw "b"', {B}),
    ('externalId sw "B"', set()),
    (f'{ENT}:manager.value eq "mgr-1"', set()),  # manager.value is caseExact
    (f'{ENT}:manager eq "MGR-1"', {B}),  # complex with "value": compares it
    (f"{ENT}:manager pr", {B, A}),
    (f"{ENT}:employeeNumber pr", {B}),
    ("employeeNumber eq 701984", {B}),  # bare number vs string; extension attr without URN
    ("userName eq Zed_%x", {Z}),  # bare token (Microsoft's validator)
    ("displayName pr", {B}),
    ("displayName eq null", {J, Z, A}),
    ("displayName ne null", {B}),
    ("not (displayName pr)", {J, Z, A}),
    ("active eq true", {B, Z}),
    ("active eq false", {J}),
    ("active ne true", {J}),
    ('active eq "TRUE"', {B, Z}),
    ("not (active eq true)", {J, A}),  # missing attribute: comparison false, not true
    ("emails pr", {B, J, A}),
    ("emails.value pr", {B, J, A}),
    ('emails.type eq "work"', {B, J, A}),
    ('emails[type eq "work" and value pr]', {B, J, A}),
    ('emails[type eq "work" and not (value pr)]', {A}),
    ("emails[primary eq true]", {B}),
    ("emails[not (primary eq true)]", {B, J, A}),
    ("emails.primary eq false", {A}),
    ('phoneNumbers pr or phoneNumbers.value eq "not a list"', set()),
    ("name pr", {B, J}),
    ('name[givenName eq "joe"]', {J}),
    ("name[not (givenName pr)]", {A}),
    ("ims pr", {J}),
    ("meta pr", ALL),
    ('meta.resourceType eq "user"', ALL),
    ('meta.version eq "W/\\"7\\""', {A}),
    (f'meta[created gt "{TS}" and lastModified lt "2011-05-14T00:00:00Z"]', {A}),
    ('meta.created eq "2011-05-13T04:42:34.123Z"', {B, A}),  # served with milliseconds
    ('meta.created eq "2011-05-13T04:42:34.123456Z"', set()),
    ('meta.created gt "2011-05-13T04:42:34.123Z"', {J}),
    ('meta.created ge "2011-05-13T04:42:34.1225Z"', {B, J, A}),
    ('meta.created lt "2011-05-13T06:42:34.1235+02:00"', {B, Z, A}),
    ('meta.created le "2011-05-13T04:42:34.1229Z"', {Z}),
    ('meta.lastModified ne "2011-05-13T04:42:34.123Z"', {B, J, A}),
    ("id pr", ALL),
    ('id eq "nope"', set()),
    ('id eq "2819c223-7f76-453a-919d-413861904646"', {B}),
    ('id eq "2819C223-7F76-453A-919D-413861904646"', set()),
    ('nickName eq "x"', set()),  # not present anywhere
    ('x509Certificates.value eq "x"', set()),  # defined but held only in the JSON document
    ('x509Certificates sw "MIIDQzCCAqyg"', {B}),  # binary is caseExact
    ('emails eq "BJENSEN@example.com"', {B}),  # multi-valued complex: compares "value"
    ('emails[value eq "bjensen@example.com"] and not (nickName pr)', {B}),
]


@pytest.fixture(scope="module")
async def fixed(filter_db: Database) -> tuple[Database, str, list[dict[str, Any]]]:
    ws = await insert(filter_db, _fixed_rows())
    return filter_db, ws, await served(filter_db, ws)


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_fixed_cases(
    fixed: tuple[Database, str, list[dict[str, Any]]], text: str, expected: set[str]
) -> None:
    db, ws, resources = fixed
    filt = parse_filter(text)
    assert eval_user_names(resources, filt) == expected, "evaluator"
    assert await sql_user_names(db, ws, filt) == expected, "SQL"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("active gt true", "gt is not defined for boolean attributes"),
        ('active co "t"', "co is not defined for boolean attributes"),
        ("active eq 1", "boolean"),
        ('meta.created gt "yesterday"', "not a valid dateTime"),
        ("meta.created gt 5", "not a valid dateTime"),
        ('meta.created co "2011"', "co is not defined for dateTime"),
        ('name eq "x"', "complex attribute"),
        ("userName lt null", "null"),
        ('x509Certificates.value gt "x"', "binary"),
        ('userName[value eq "x"]', "value filter"),
        ('meta.location eq "x"', "not supported"),
        # An attribute the User schema does not define is refused, naming it, never "no match".
        ('foo eq "x"', "Unknown attribute 'foo'"),
        ('Foo eq "x" or userName eq "x"', "Unknown attribute 'Foo'"),
        ('not (bogus eq "x")', "Unknown attribute 'bogus'"),
        ("bogus pr", "Unknown attribute 'bogus'"),
        ('name.bogus eq "x"', "Unknown attribute 'name.bogus'"),
        ('emails[bogus eq "x"]', "Unknown attribute 'emails[bogus]'"),
        ('bogus[value eq "x"]', "Unknown attribute 'bogus'"),
        (f'{ENT}:bogus eq "x"', f"Unknown attribute '{ENT}:bogus'"),
        ('urn:example:params:scim:schemas:extension:acme:2.0:User:badge eq "x"', "Unknown attribute"),
        (f'{USER_SCHEMA}:nickname.x eq "x"', "Unknown attribute"),
    ],
)
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_invalid_filters(text: str, fragment: str, dialect: str) -> None:
    filt = parse_filter(text)
    with pytest.raises(ScimError) as info:
        to_sql(filt, SCHEMA, dialect)
    assert info.value.scim_type == INVALID_FILTER and fragment in info.value.detail
    if "location" not in text:  # the evaluator can read meta.location; SQL cannot
        with pytest.raises(ScimError):
            matches(filt, {}, None, SCHEMA)  # raised before looking at any data


def test_patch_value_filter_on_one_element() -> None:
    emails = SCHEMA.attribute("emails")
    assert emails is not None
    filt = parse_filter('type eq "work" and value ew "@X.io"')
    assert matches(filt, {"type": "Work", "value": "a@x.io"}, emails, SCHEMA)
    assert not matches(filt, {"type": "home", "value": "a@x.io"}, emails, SCHEMA)
    assert not matches(filt, "a@x.io", emails, SCHEMA)
    schemas = SCHEMA.attribute("schemas")
    assert schemas is not None
    assert matches(parse_filter(f'value eq "{ENT}"'), ENT, schemas, SCHEMA)


# --- property: SQL == evaluator on random documents and filters ---------------------------------------

TEXT = st.text(alphabet="aAbZ%_*?[/@.Äk\u212a ", max_size=3)  # \u212a: Kelvin sign, lower() -> "k"
EMAIL_TYPES = st.sampled_from(["work", "home", "WORK", "other"])
BASE = datetime(2020, 1, 1, tzinfo=UTC)
MISSING = object()


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(MISSING), st.none(), strategy)


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not MISSING}


EMAIL = st.one_of(
    st.builds(
        lambda v, t, p, d: _compact({"value": v, "type": t, "primary": p, "display": d}),
        _optional(TEXT),
        _optional(EMAIL_TYPES),
        _optional(st.booleans()),
        _optional(TEXT),
    ),
    st.sampled_from(["junk", None]),
)

DOC = st.builds(
    lambda user_name, display, given, family, title, active, emails, number, manager, ext_id, with_ent: (
        _compact(
            {
                "userName": user_name,
                "displayName": display,
                "name": _compact({"givenName": given, "familyName": family})
                if given is not MISSING
                else MISSING,
                "title": title,
                "active": active,
                "emails": emails,
                "externalId": ext_id,
                ENT: _compact({"employeeNumber": number, "manager": _compact({"value": manager})})
                if with_ent
                else MISSING,
                "schemas": [USER_SCHEMA, ENT] if with_ent else [USER_SCHEMA],
            }
        )
    ),
    user_name=st.text(alphabet="aAbZ%_Äk\u212a", min_size=1, max_size=3),
    display=_optional(TEXT),
    given=_optional(TEXT),
    family=_optional(TEXT),
    title=_optional(TEXT),
    active=st.one_of(st.just(MISSING), st.booleans()),
    emails=st.one_of(st.just(MISSING), st.lists(EMAIL, max_size=3)),
    number=_optional(TEXT),
    manager=_optional(TEXT),
    ext_id=_optional(TEXT),
    with_ent=st.booleans(),
)
TIME = st.integers(0, 3000).map(lambda us: BASE + timedelta(microseconds=us * 997))
ROW = st.tuples(DOC, TIME, TIME, st.integers(1, 3))

STRING_PATHS = [
    AttrPath("userName"),
    AttrPath("displayName"),
    AttrPath("name", "givenName"),
    AttrPath("name", "familyName"),
    AttrPath("title"),
    AttrPath("externalId"),
    AttrPath("id"),
    AttrPath("emails"),
    AttrPath("emails", "value"),
    AttrPath("emails", "type"),
    AttrPath("emails", "display"),
    AttrPath("employeeNumber", urn=ENT),
    AttrPath("manager", "value", ENT),
    AttrPath("manager", urn=ENT),
    AttrPath("meta", "resourceType"),
    AttrPath("meta", "version"),
    AttrPath("schemas"),
]
BOOL_PATHS = [AttrPath("active"), AttrPath("emails", "primary")]
TIME_PATHS = [AttrPath("meta", "created"), AttrPath("meta", "lastModified")]
OTHER_PRESENT = [AttrPath("name"), AttrPath("meta")]
STRING_OPS: list[CompareOp] = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]
TIME_OPS: list[CompareOp] = ["eq", "ne", "gt", "ge", "lt", "le"]
EMAIL_SUBS = {"value": "string", "type": "string", "display": "string", "primary": "boolean"}


@dataclass(frozen=True)
class PoolRef:
    """A string literal to be taken from the data set's own values (so that filters do match)."""

    index: int


@dataclass(frozen=True)
class TimeRef:
    """A dateTime literal near one of the data set's timestamps, in some notation."""

    index: int
    jitter_us: int
    millis: bool
    tz: timezone
    zulu: bool


STRINGS = st.one_of(TEXT, st.integers(0, 999).map(PoolRef))
TIMES = st.builds(
    TimeRef,
    st.integers(-1, 99),
    st.sampled_from([0, 0, 1, -1, 500, 1000, -1000]),
    st.booleans(),
    st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]),
    st.booleans(),
)


def _tree(leaf: st.SearchStrategy[Filter], max_leaves: int) -> st.SearchStrategy[Filter]:
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)
        ),
        max_leaves=max_leaves,
    )


def _cmp(paths: list[AttrPath], ops: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Filter]:
    return st.builds(Compare, st.sampled_from(paths), st.sampled_from(ops), values)


ALL_PATHS = STRING_PATHS + BOOL_PATHS + TIME_PATHS
EMAIL_COND = _tree(
    st.one_of(
        st.builds(Present, st.sampled_from([AttrPath(s) for s in EMAIL_SUBS])),
        _cmp([AttrPath("value"), AttrPath("type"), AttrPath("display")], STRING_OPS, STRINGS),
        _cmp([AttrPath("primary")], ["eq", "ne"], st.booleans()),
    ),
    max_leaves=3,
)
GIVEN = _cmp([AttrPath("givenName")], STRING_OPS, STRINGS)
VALUE_PATHS = st.one_of(
    st.builds(ValuePath, st.just(AttrPath("emails")), EMAIL_COND),
    st.builds(
        ValuePath,
        st.just(AttrPath("name")),
        st.one_of(GIVEN, st.builds(Not, GIVEN), st.just(Present(AttrPath("familyName")))),
    ),
    st.builds(ValuePath, st.just(AttrPath("meta")), _cmp([AttrPath("created")], TIME_OPS, TIMES)),
    st.builds(ValuePath, st.just(AttrPath("manager", urn=ENT)), _cmp([AttrPath("value")], ["eq"], STRINGS)),
)
FILTERS = _tree(
    st.one_of(
        _cmp(STRING_PATHS, STRING_OPS, STRINGS),
        _cmp(BOOL_PATHS, ["eq", "ne"], st.booleans()),
        _cmp(TIME_PATHS, TIME_OPS, TIMES),
        st.builds(Present, st.sampled_from(ALL_PATHS + OTHER_PRESENT)),
        _cmp(ALL_PATHS, ["eq", "ne"], st.none()),
        VALUE_PATHS,
    ),
    max_leaves=6,
)


def resolve(f: Filter, pool: list[str], times: list[datetime]) -> Filter:
    """Replace PoolRef/TimeRef placeholders by literals taken from the data set."""
    if isinstance(f, Compare):
        v: Any = f.value
        if isinstance(v, PoolRef):
            v = pool[v.index % len(pool)] if pool else ""
        elif isinstance(v, TimeRef):
            when = times[v.index % len(times)] if times and v.index >= 0 else BASE
            when += timedelta(microseconds=v.jitter_us)
            if v.millis:
                when -= timedelta(microseconds=when.microsecond % 1000)
            text = when.astimezone(v.tz).isoformat()
            v = text.replace("+00:00", "Z") if v.zulu else text
        return Compare(f.path, f.op, v)
    if isinstance(f, And | Or):
        return type(f)(resolve(f.left, pool, times), resolve(f.right, pool, times))
    if isinstance(f, Not):
        return Not(resolve(f.expr, pool, times))
    if isinstance(f, ValuePath):
        return ValuePath(f.path, resolve(f.filter, pool, times))
    return f


def render(f: Filter) -> str:
    if isinstance(f, Compare):
        return f"{f.path.text} {f.op} {json.dumps(f.value, ensure_ascii=False)}"
    if isinstance(f, Present):
        return f"{f.path.text} pr"
    if isinstance(f, And):
        return f"({render(f.left)}) and ({render(f.right)})"
    if isinstance(f, Or):
        return f"({render(f.left)}) or ({render(f.right)})"
    if isinstance(f, Not):
        return f"not ({render(f.expr)})"
    return f"{f.path.text}[{render(f.filter)}]"


def _pool(resources: list[dict[str, Any]]) -> list[str]:
    out: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.add(value)
            if value:
                out.add(value[:1].upper() + value[1:])
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for r in resources:
        # Not the random ids: the drawn filters must not depend on anything random.
        walk({k: v for k, v in r.items() if k not in ("meta", "id")})
    return sorted(out)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_sql_agrees_with_evaluator(filter_db: Database, data: st.DataObject) -> None:
    rows = data.draw(
        st.lists(ROW, min_size=1, max_size=6, unique_by=lambda r: r[0]["userName"].lower()), label="rows"
    )
    ws = await insert(filter_db, [(dict(doc), c, m, v) for doc, c, m, v in rows])
    resources = await served(filter_db, ws)
    times = [t for _, c, m, _ in rows for t in (c, m)]
    for _ in range(4):  # several filters per data set: inserts are the slow part
        filt = resolve(data.draw(FILTERS, label="filter"), _pool(resources), times)
        assert parse_filter(render(filt)) == filt
        assert await sql_user_names(filter_db, ws, filt) == eval_user_names(resources, filt), render(filt)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_fails_only_with_scim_errors(text: str) -> None:
    try:
        filt = parse_filter(text)
    except ScimError as exc:
        assert exc.scim_type == INVALID_FILTER
        return
    for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        try:
            sa.select(Member.id).where(to_sql(filt, SCHEMA, name)).compile(dialect=dialect)
        except ScimError as exc:
            assert exc.scim_type == INVALID_FILTER


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='abemilsvtype.[]() "\\eqnotrpcowgl0', max_size=60))
def test_filterish_text_fails_only_with_scim_errors(text: str) -> None:
    test_arbitrary_text_fails_only_with_scim_errors.hypothesis.inner_test(text)  # type: ignore[attr-defined]
