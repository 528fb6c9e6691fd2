"""meta.created / meta.lastModified read the same whether a response was built from the row just written
(formatted in Python) or from a read (formatted by the database, ``IsoMillis``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, update

from provisio.db.engine import Database
from provisio.db.functions import IsoMillis
from provisio.db.models import Member
from provisio.scim.serialize import scim_datetime
from tests.conftest import Tenant
from tests.scim.test_okta_flow import okta_user

RFC3339_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 29, 16, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 16, 0, 0, 999, tzinfo=UTC),
        datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1999, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    ],
)
async def test_database_formats_like_python(
    client: httpx.AsyncClient, db: Database, tenant: Tenant, moment: datetime
) -> None:
    r = await client.post(f"{tenant.base}/Users", json=okta_user("time@example.com"), headers=tenant.headers)
    member_id = r.json()["id"]
    async with db.writing() as session:
        await session.execute(update(Member).where(Member.id == member_id).values(created_at=moment))
    async with db.reading() as session:
        text = (
            await session.execute(select(IsoMillis(Member.created_at)).where(Member.id == member_id))
        ).scalar()
    assert text == scim_datetime(moment)


async def test_meta_times_agree_across_write_get_and_list(client: httpx.AsyncClient, tenant: Tenant) -> None:
    url = f"{tenant.base}/Users"
    created = (await client.post(url, json=okta_user("meta@example.com"), headers=tenant.headers)).json()
    got = (await client.get(f"{url}/{created['id']}", headers=tenant.headers)).json()
    listed = (
        await client.get(url, params={"filter": 'userName eq "meta@example.com"'}, headers=tenant.headers)
    ).json()
    for resource in (got, listed["Resources"][0]):
        assert resource["meta"] == created["meta"]
    assert RFC3339_MILLIS.match(created["meta"]["created"])
    body = {**okta_user("meta@example.com"), "displayName": "Changed"}
    replaced = (await client.put(f"{url}/{created['id']}", json=body, headers=tenant.headers)).json()
    got = (await client.get(f"{url}/{created['id']}", headers=tenant.headers)).json()
    assert got["meta"] == replaced["meta"]
    assert got["meta"]["lastModified"] >= created["meta"]["lastModified"]
