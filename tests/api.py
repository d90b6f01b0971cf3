"""Small helpers for driving the API in tests (they go through HTTP like real callers)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def badge(client: httpx.AsyncClient, key: str, criteria: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    body = {
        "key": key,
        "name": fields.pop("name", key.replace("-", " ").title()),
        "criteria": criteria,
        "status": "active",
        **fields,
    }
    r = await client.post("/v1/admin/badges", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


async def event(
    client: httpx.AsyncClient,
    user: str,
    type_: str,
    at: datetime | str,
    key: str | None = None,
    source: str = "pos",
    **attributes: Any,
) -> dict[str, Any]:
    r = await post_event(client, user, type_, at, key, source, **attributes)
    assert r.status_code == 200, r.text
    return r.json()


async def post_event(
    client: httpx.AsyncClient,
    user: str,
    type_: str,
    at: datetime | str,
    key: str | None = None,
    source: str = "pos",
    **attributes: Any,
) -> httpx.Response:
    body = {
        "id": key or uuid.uuid4().hex,
        "user_id": user,
        "type": type_,
        "occurred_at": at if isinstance(at, str) else at.isoformat(),
        "source": source,
        "attributes": attributes,
    }
    return await client.post("/v1/events", json=body, headers=ADMIN)


def awarded(outcome: dict[str, Any]) -> list[str]:
    return [b["key"] for b in outcome["badges_awarded"]]
