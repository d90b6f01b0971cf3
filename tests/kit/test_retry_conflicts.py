"""A write whose transaction loses a deadlock is run again instead of failing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from app.events import pg_fast
from app.kit.middleware import RetryConflictsMiddleware
from tests.api import ADMIN, post_event


class _Deadlock(Exception):
    pgcode = "40P01"


async def test_deadlocked_ingestion_is_replayed_once_and_stored_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pg_fast.claim  # the first statement of a single event on PostgreSQL
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise DBAPIError("INSERT INTO events …", {}, _Deadlock("deadlock detected"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(pg_fast, "claim", flaky)
    r = await post_event(client, "D1", "visit", datetime.now(UTC) - timedelta(seconds=5), key="dl-1")
    assert r.status_code == 200, r.text
    assert "x-laurel-retryable" not in r.headers
    assert calls["n"] == 2
    history = (await client.get("/v1/admin/users/D1/events", headers=ADMIN)).json()
    assert [e["id"] for e in history["items"]] == ["dl-1"]


async def test_conflict_that_persists_is_a_503_with_retry_after() -> None:
    attempts = {"n": 0}

    async def always_conflicting(scope: Any, receive: Any, send: Any) -> None:
        attempts["n"] += 1
        assert (await receive())["body"] == b'{"x": 1}'
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"retry-after", b"1"), (b"x-laurel-retryable", b"1")]})
        await send({"type": "http.response.body", "body": b"{}"})

    app = RetryConflictsMiddleware(always_conflicting, attempts=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/anything", content=b'{"x": 1}')
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "x-laurel-retryable" not in r.headers
    assert attempts["n"] == 3


async def _at_once(app: Any, method: str, path: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """The same write from separate clients at the same moment (PostgreSQL: separate connections)."""
    transport = httpx.ASGITransport(app=app)
    clients = [httpx.AsyncClient(transport=transport, base_url=f"http://c{i}") for i in range(len(bodies))]
    try:
        return list(await asyncio.gather(*(
            c.request(method, path, json=body, headers=ADMIN) for c, body in zip(clients, bodies, strict=True)
        )))
    finally:
        for c in clients:
            await c.aclose()


async def test_ten_admins_creating_one_badge_key_at_once_get_one_201_and_409s(
    app: Any, client: httpx.AsyncClient
) -> None:
    body = {"key": "twin", "name": "Twin", "criteria": [{"event": "visit", "threshold": 1}]}
    replies = await _at_once(app, "POST", "/v1/admin/badges", [body] * 10)
    assert sorted(r.status_code for r in replies) == [201] + [409] * 9, [r.text for r in replies]
    assert {r.json()["error"]["code"] for r in replies if r.status_code == 409} <= {"badge_exists", "conflict"}
    assert all("x-laurel-retryable" not in r.headers for r in replies)
    listed = (await client.get("/v1/admin/badges", headers=ADMIN)).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    assert [b["key"] for b in items].count("twin") == 1


async def test_ten_ladders_saved_at_once_all_succeed_and_one_of_them_stands(
    app: Any, client: httpx.AsyncClient
) -> None:
    ladders = [
        {"levels": [{"name": f"L{i}-{n}", "points_required": (n + 1) * (i + 1)} for n in range(3)]} for i in range(10)
    ]
    replies = await _at_once(app, "PUT", "/v1/admin/badge-levels", ladders)
    assert [r.status_code for r in replies] == [200] * 10, [r.text for r in replies]
    stored = (await client.get("/v1/admin/badge-levels", headers=ADMIN)).json()
    names = [lvl["name"] for lvl in stored]
    assert names in [[lvl["name"] for lvl in ladder["levels"]] for ladder in ladders]


async def test_eight_syncs_of_one_new_member_at_once_create_it_once_and_say_so_once(app: Any) -> None:
    replies = await _at_once(app, "PUT", "/v1/users/RACE-1", [{"nickname": f"n{i}"} for i in range(8)])
    assert sorted(r.status_code for r in replies) == [200] * 7 + [201], [r.text for r in replies]
    assert len({r.json()["id"] for r in replies}) == 1
