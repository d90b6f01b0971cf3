"""A write whose transaction loses a deadlock is run again instead of failing."""

from __future__ import annotations

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
