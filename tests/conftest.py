"""Test fixtures: a real PostgreSQL database per run (and a SQLite file), migrated once, reset per test.

PostgreSQL is required: if it cannot be reached the run fails loudly instead of silently skipping.
`LAUREL_TEST_PG_ADMIN_URL` points at a server database used to create and drop the run's own database.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, inspect

from app.config import Settings
from app.kit import migrate
from app.kit.cache import DefinitionCache
from app.leaderboards import service as lb_service
from app.main import create_app
from app.models import Base
from app.points import levels as levels_service
from tests.fakes.wechat_server import DEFAULT_APP_ID, DEFAULT_APP_SECRET, FakeWeChat, fake_wechat_server

PG_ADMIN_URL = os.environ.get("LAUREL_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_KEY = "test-bootstrap-admin-key-0123456789"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_too: also run this test against the embedded SQLite default")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = ["postgresql", "sqlite"] if metafunc.definition.get_closest_marker("sqlite_too") else ["postgresql"]
        metafunc.parametrize("backend", backends, indirect=True)


def _in_thread(fn: Any, *args: Any) -> Any:
    """Alembic's env runs its own event loop, so migrations run on a worker thread."""
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(fn, *args).result()


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"laurel_test_{uuid.uuid4().hex[:10]}"
    try:
        _in_thread(lambda: asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"')))
    except Exception as exc:  # fail loudly: the suite must run on PostgreSQL
        pytest.exit(f"PostgreSQL is required for the tests and is not reachable at {PG_ADMIN_URL}: {exc!r}", 3)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    _in_thread(migrate.upgrade, url)
    yield url
    _in_thread(lambda: asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


@pytest.fixture(scope="session")
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite+aiosqlite:///{Path(d) / 'laurel-test.db'}"
        _in_thread(migrate.upgrade, url)
        yield url


@pytest.fixture(scope="session")
def fake_wechat() -> Iterator[FakeWeChat]:
    with fake_wechat_server() as fake:
        yield fake


@pytest.fixture
def wechat(fake_wechat: FakeWeChat) -> FakeWeChat:
    """The fake WeChat server, with knobs reset for this test."""
    with fake_wechat.lock:
        fake_wechat.requests.clear()
        fake_wechat.sent.clear()
        fake_wechat.script.clear()
        fake_wechat.fail_codes.clear()
        fake_wechat.fail_once.clear()
        fake_wechat.fail_openids.clear()
        fake_wechat.failure_rate = 0.0
        fake_wechat.delay_seconds = 0.0
        fake_wechat.down = False
        fake_wechat.token_fail_errcode = None
    return fake_wechat


def make_settings(database_url: str, wechat_base: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "admin_api_key": ADMIN_KEY,
        "wechat_app_id": DEFAULT_APP_ID,
        "wechat_app_secret": DEFAULT_APP_SECRET,
        "wechat_api_base_url": wechat_base,
        "wechat_timeout_seconds": 2.0,
        "worker_enabled": False,
        "jwt_secret": "test-jwt-secret-that-is-long-enough-0123456789",
        "db_pool_size": 10,
        "quiet_hours": "",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def _apps(request: pytest.FixtureRequest, fake_wechat: FakeWeChat) -> Iterator[dict[str, FastAPI]]:
    apps: dict[str, FastAPI] = {}
    yield apps
    for app in apps.values():
        app.state.wechat.close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "postgresql")


async def reset_database(app: FastAPI) -> None:
    """Empty every table and reinstall the default ladder, so each test starts from a fresh install."""
    async with app.state.db.sessionmaker() as session, session.begin():
        conn = await session.connection()
        existing = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        # Tables missing from the database are the drift test's business (tests/ops), not every test's.
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in existing:
                await session.execute(delete(table))
        await levels_service.install_default(session)
    DefinitionCache.invalidate_all()
    lb_service.forget_all()


@pytest.fixture
async def app(
    backend: str, request: pytest.FixtureRequest, _apps: dict[str, FastAPI], fake_wechat: FakeWeChat, wechat: FakeWeChat
) -> AsyncIterator[FastAPI]:
    if backend not in _apps:
        url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
        _apps[backend] = create_app(make_settings(url, fake_wechat.base_url))
    application = _apps[backend]
    await reset_database(application)
    yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://laurel.test") as c:
        yield c


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def make_key(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Any:
    async def _make(*scopes: str, name: str = "test") -> dict[str, str]:
        r = await client.post("/v1/admin/api-keys", json={"name": name, "scopes": list(scopes)}, headers=admin_headers)
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['key']}"}

    return _make


@pytest.fixture
def login(client: httpx.AsyncClient, wechat: FakeWeChat) -> Any:
    """Log a member in through the fake WeChat; returns their auth headers."""

    async def _login(openid: str | None = None, unionid: str | None = None) -> dict[str, str]:
        openid = openid or f"o-{uuid.uuid4().hex[:12]}"
        code = f"code-{uuid.uuid4().hex}"
        wechat.add_code(code, openid, unionid)
        r = await client.post("/v1/auth/wechat/login", json={"code": code})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return _login
