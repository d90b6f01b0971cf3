"""Migrations are the schema: upgrade yields exactly the models, and down/up round-trips."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from app.kit import migrate
from app.models import Base
from tests.conftest import PG_ADMIN_URL, _in_thread


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _diff(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
            )
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _scratch_database() -> AsyncIterator[str]:
    """An empty PostgreSQL database of its own (SQLAlchemy URL), dropped afterwards."""
    name = f"laurel_mig_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_upgrade_matches_models_and_round_trips_on_postgresql() -> None:
    async with _scratch_database() as url:
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _diff(url) == []
        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _tables(url) == {"alembic_version"}
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _diff(url) == []


def test_sqlite_upgrade_from_scratch(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    _in_thread(migrate.upgrade, url)
    _in_thread(migrate.downgrade, url, "base")
    _in_thread(migrate.upgrade, url)


async def test_event_outcomes_move_to_their_own_table_and_back() -> None:
    async with _scratch_database() as url:
        await asyncio.to_thread(migrate.upgrade, url, "0006_rank_snapshots")
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            uid = await conn.fetchval(
                "INSERT INTO users (external_id, segments, preferences, points, created_at, updated_at) "
                "VALUES ('M', '[]', '{}', 0, now(), now()) RETURNING id")
            await conn.execute(
                "INSERT INTO events (idempotency_key, user_id, type, source, occurred_at, received_at, attributes, "
                "outcome) VALUES ('k1', $1, 'visit', 'pos', now(), now(), '{}', '{\"points_credited\": 5}'), "
                "('k2', $1, 'visit', 'pos', now(), now(), '{}', NULL)", uid)
        finally:
            await conn.close()
        await asyncio.to_thread(migrate.upgrade, url)
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch("SELECT e.idempotency_key, o.outcome FROM event_outcomes o "
                                    "JOIN events e ON e.id = o.event_id")
            assert [(r[0], r[1]) for r in rows] == [("k1", '{"points_credited": 5}')]
        finally:
            await conn.close()
        await asyncio.to_thread(migrate.downgrade, url, "0006_rank_snapshots")
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            back = await conn.fetch("SELECT idempotency_key, outcome FROM events ORDER BY idempotency_key")
            assert [(r[0], r[1]) for r in back] == [("k1", '{"points_credited": 5}'), ("k2", None)]
        finally:
            await conn.close()


def test_sqlite_awards_never_reuse_an_id_a_revoked_award_left_behind(tmp_path: Any) -> None:
    # Before 0008, SQLite handed out max(id) + 1: the award after a revoke of the newest one took its id, and
    # collided with the badge.awarded event and ledger source the revoked award had left. The upgrade starts
    # the sequence above every id they name.
    import sqlite3

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    _in_thread(migrate.upgrade, url, "0007_event_outcomes")
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO users (id, external_id, segments, preferences, points, created_at, updated_at) "
                   "VALUES (1, 'M', '[]', '{}', 0, '2026-11-01', '2026-11-01')")
        db.execute("INSERT INTO events (idempotency_key, user_id, type, source, occurred_at, received_at, attributes)"
                   " VALUES ('laurel:badge.awarded:7', 1, 'badge.awarded', 'laurel', '2026-11-01', '2026-11-01', '{}')")
        db.execute("INSERT INTO points_ledger (user_id, amount, balance_after, reason, source_type, source_id, "
                   "created_at) VALUES (1, 5, 5, 'x', 'badge', '9', '2026-11-01')")
        db.commit()  # award 9 (and 7) revoked: no user_badges row names them any more
    _in_thread(migrate.upgrade, url)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'user_badges'").fetchall() == [(9,)]


async def test_members_are_locked_in_the_databases_collation_order_not_pythons() -> None:
    # The batch statements lock members with ORDER BY external_id; the item-by-item fallback must take the same
    # order or the two deadlock. Under an ICU collation "a1" sorts before "B1"; in Python it is the other way.
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.users import repository as users_repo

    name = f"laurel_icu_{uuid.uuid4().hex[:8]}"
    try:
        await _admin(f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE \'en\' '
                     "LOCALE 'C.UTF-8'")
    except asyncpg.PostgresError as exc:  # pragma: no cover - a server built without ICU
        import pytest

        pytest.skip(f"no ICU collation here: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(f"{base}/{name}")
    try:
        async with async_sessionmaker(engine)() as session:
            assert sorted(["B1", "a1", "c1"]) == ["B1", "a1", "c1"]
            assert await users_repo.in_lock_order(session, ["B1", "a1", "c1", "a1"]) == ["a1", "B1", "c1"]
    finally:
        await engine.dispose()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
