"""With its database unreachable the service answers 503 with Retry-After and the request id, never a 500."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import httpx
import pytest

from app.main import create_app
from tests.api import ADMIN
from tests.conftest import make_settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # released on close: nothing listens there


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/api-keys", None),
        ("PUT", "/v1/users/x", {}),
        ("POST", "/v1/events",
         {"id": "a", "user_id": "u", "type": "visit", "occurred_at": datetime.now(UTC).isoformat()}),
        ("POST", "/v1/events/batch",
         {"events": [{"id": "a", "user_id": "u", "type": "visit", "occurred_at": datetime.now(UTC).isoformat()}]}),
    ],
)
async def test_an_unreachable_database_is_a_503_with_the_request_id(method: str, path: str, body: object) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/laurel"
    app = create_app(make_settings(url, "http://127.0.0.1:9"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://laurel.test") as c:
        r = await c.request(method, path, json=body, headers={**ADMIN, "X-Request-ID": "rid-down-1"})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.headers["retry-after"] and r.headers["x-request-id"] == "rid-down-1"


@pytest.mark.parametrize("kind", ["missing-postgres-database", "unmigrated-postgres", "unmigrated-sqlite"])
async def test_a_database_that_is_missing_or_not_migrated_is_a_503_not_a_500(kind: str, tmp_path: object) -> None:
    """Dropped, misnamed or never migrated: the operator's to fix; the API says it cannot serve, not a 500."""
    from tests.conftest import PG_ADMIN_URL, _pg_admin

    name = f"laurel_unmigrated_{abs(hash(kind)) % 10**8}"
    if kind == "missing-postgres-database":
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/laurel_no_such_database"
    elif kind == "unmigrated-postgres":
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        await _pg_admin(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    app = create_app(make_settings(url, "http://127.0.0.1:9"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://laurel.test") as c:
            for method, path in (("GET", "/v1/admin/badges"), ("GET", "/v1/icons"), ("PUT", "/v1/users/x")):
                r = await c.request(method, path, json={} if method == "PUT" else None, headers=ADMIN)
                assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable", (path, r.text)
    finally:
        await app.state.db.engine.dispose()
        if kind == "unmigrated-postgres":
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')


async def test_a_database_out_of_connections_is_a_503_not_a_500() -> None:
    # A role allowed no connections: PostgreSQL answers as it does when max_connections is reached (53300).
    import asyncpg

    from tests.conftest import PG_ADMIN_URL

    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute("DROP ROLE IF EXISTS laurel_no_slots")
        await admin.execute("CREATE ROLE laurel_no_slots LOGIN CONNECTION LIMIT 0")
        base = PG_ADMIN_URL.split("@", 1)[1]
        app = create_app(make_settings(f"postgresql+asyncpg://laurel_no_slots@{base}", "http://127.0.0.1:9"))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://laurel.test") as c:
            for method, path, body in [
                ("GET", "/v1/admin/api-keys", None),
                ("POST", "/v1/events", {"id": "b", "user_id": "u", "type": "visit",
                                        "occurred_at": datetime.now(UTC).isoformat()}),
                ("POST", "/v1/events/batch", {"events": [{"id": "a", "user_id": "u", "type": "visit",
                                                          "occurred_at": datetime.now(UTC).isoformat()}]}),
            ]:
                r = await c.request(method, path, json=body, headers=ADMIN)
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "service_unavailable" and r.headers["retry-after"]
        await app.state.db.dispose()
    finally:
        await admin.execute("DROP ROLE IF EXISTS laurel_no_slots")
        await admin.close()


async def test_a_connection_the_server_closed_is_dropped_from_the_pool_never_a_500(pg_url: str) -> None:
    """A PostgreSQL restart or failover closes the pooled connections under the app. The dead connection is
    dropped (before, the pool handed it out again and every event answered 500): the event is then ingested on
    a fresh one (the group falls back to the event alone), or at worst answered 503 with Retry-After, and a
    retry lands once."""
    import asyncpg
    from sqlalchemy import text

    from tests.conftest import PG_ADMIN_URL

    app = create_app(make_settings(pg_url, "http://127.0.0.1:9"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with app.state.db.engine.connect() as conn:  # the pool's one connection, as the next request's
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
            for _ in range(100):  # the backend exits, and our end of the socket sees it close
                gone = await admin.fetchval("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid)
                if gone:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
        finally:
            await admin.close()
        event = {"id": "after-restart", "user_id": "u-restart", "type": "visit",
                 "occurred_at": datetime.now(UTC).isoformat()}
        async with httpx.AsyncClient(transport=transport, base_url="http://laurel.test") as c:
            first = await c.post("/v1/events", json=event, headers=ADMIN)
            assert first.status_code in (200, 503), first.text
            if first.status_code == 503:
                assert first.json()["error"]["code"] == "service_unavailable" and first.headers["retry-after"]
            again = await c.post("/v1/events", json=event, headers=ADMIN)
            assert again.status_code == 200, again.text
            assert again.json()["duplicate"] is (first.status_code == 200)  # stored once, whichever answered
            r = await c.get("/v1/admin/api-keys", headers=ADMIN)
            assert r.status_code == 200, r.text
    finally:
        await app.state.db.dispose()
