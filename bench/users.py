"""User documents in the shapes Okta sends, and seeding a server through its SCIM API."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.load import ScimClient

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DOMAIN = "bench.example.com"


@dataclass(frozen=True)
class SeededUser:
    id: str
    user_name: str
    index: int


def user_name(index: int) -> str:
    return f"user{index:07d}@{DOMAIN}"


def new_user(name: str, index: int) -> dict[str, Any]:
    """What Okta POSTs when it provisions a user."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": name,
        "externalId": f"ext-{index}",
        "name": {"givenName": f"Given{index}", "familyName": f"Family{index}"},
        "displayName": f"Given{index} Family{index}",
        "emails": [{"primary": True, "value": name, "type": "work"}],
        "active": True,
    }


def put_user(user: SeededUser, given_name: str) -> dict[str, Any]:
    """What Okta PUTs on a profile update: userName, name, emails, active."""
    return {
        "schemas": [USER_SCHEMA],
        "id": user.id,
        "userName": user.user_name,
        "name": {"givenName": given_name, "familyName": f"Family{user.index}"},
        "emails": [{"primary": True, "value": user.user_name, "type": "work"}],
        "active": True,
    }


def patch_display_name(value: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "displayName", "value": value}],
    }


async def seed(
    client: ScimClient, count: int, concurrency: int, label: str
) -> tuple[list[SeededUser], float]:
    """POST ``count`` users with ``concurrency`` clients; returns them in index order, and the seconds."""
    users: list[SeededUser | None] = [None] * count
    next_index = 0
    done = 0
    start = time.perf_counter()
    report_every = max(count // 10, 1)

    async def worker() -> None:
        nonlocal next_index, done
        while next_index < count:
            index = next_index
            next_index += 1
            name = user_name(index)
            response = await client.expect(201, "POST", "/Users", body=new_user(name, index))
            users[index] = SeededUser(id=str(response.json()["id"]), user_name=name, index=index)
            done += 1
            if done % report_every == 0 and count >= 1000:
                rate = done / (time.perf_counter() - start)
                print(f"  seeding {label}: {done}/{count} ({rate:.0f} users/s)", file=sys.stderr, flush=True)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seeded = [u for u in users if u is not None]
    assert len(seeded) == count
    return seeded, time.perf_counter() - start
