"""Migrations are the schema: upgrade yields exactly the models, and down/up round-trips."""

from __future__ import annotations

import asyncio
import contextlib
import json
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


_LEGACY_STREAK_AWARDS = [
    "INSERT INTO users (id, external_id, segments, preferences, points, created_at, updated_at) "
    "VALUES (1, 'M', '[]', '{}', 0, '2026-11-01', '2026-11-01')",
    "INSERT INTO badges (id, key, name, description, how_to_earn, criteria, points, visibility, repeatable, status, "
    "translations, created_at, updated_at) VALUES "
    "(1, 'daily', 'Daily', '', '', '[{\"event\": \"check_in\", \"aggregate\": \"streak\", \"threshold\": 3, "
    "\"window\": {\"type\": \"calendar\", \"unit\": \"day\"}}]', 0, 'public', true, 'active', '{}', "
    "'2026-11-01', '2026-11-01'), "
    "(2, 'weekly', 'Weekly', '', '', '[{\"event\": \"check_in\", \"aggregate\": \"streak\", \"threshold\": 2, "
    "\"window\": {\"type\": \"calendar\", \"unit\": \"week\"}}]', 0, 'public', true, 'active', '{}', "
    "'2026-11-01', '2026-11-01')",
    "INSERT INTO user_badges (id, user_id, badge_id, award_key, source, evidence, awarded_at) VALUES "
    "(1, 1, 1, 'streak:1', 'rule', '{\"criteria\": [{\"window_start\": \"2026-11-20T00:00:00+08:00\"}]}', "
    "'2026-11-20'), "
    "(2, 1, 1, 'streak:2', 'rule', '{\"criteria\": [{\"window_start\": \"2026-11-23T00:00:00+08:00\"}]}', "
    "'2026-11-23'), "
    "(3, 1, 2, 'streak:1', 'rule', '{\"criteria\": [{\"window_start\": \"2026-11-16T00:00:00+08:00\"}]}', "
    "'2026-11-16'), "
    "(4, 1, 1, 'manual:x', 'manual', '{}', '2026-11-24'), "
    # The form a few commits wrote ('streak:<run start>:<multiples>'), and a second multiple in one period.
    "(5, 1, 1, 'streak:2026-11-24:1', 'rule', '{\"criteria\": [{\"window_start\": \"2026-11-26T00:00:00+08:00\"}]}', "
    "'2026-11-26'), "
    "(6, 1, 1, 'streak:3', 'rule', '{\"criteria\": [{\"window_start\": \"2026-11-26T00:00:00+08:00\"}]}', "
    "'2026-11-26')",
]
_STREAK_KEYS_AFTER = [(1, "streak@2026-11-20"), (2, "streak@2026-11-23"), (3, "streak@2026-W47"), (4, "manual:x"),
                      (5, "streak@2026-11-26"), (6, "streak@2026-11-26#2")]


def test_sqlite_legacy_streak_award_keys_name_the_period_that_completed_them(tmp_path: Any) -> None:
    # Before 0010, a repeatable streak badge keyed its awards 'streak:<multiples>', so a new run could never earn
    # it again; the upgrade rewrites them from each award's evidence (the completing period's start).
    import sqlite3

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    _in_thread(migrate.upgrade, url, "0009_big_balances")
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statement in _LEGACY_STREAK_AWARDS:
            db.execute(statement.replace("true", "1"))
        db.commit()
    _in_thread(migrate.upgrade, url)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT id, award_key FROM user_badges ORDER BY id").fetchall() == _STREAK_KEYS_AFTER


async def test_legacy_streak_award_keys_are_rewritten_on_postgresql() -> None:
    async with _scratch_database() as url:
        await asyncio.to_thread(migrate.upgrade, url, "0009_big_balances")
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            for statement in _LEGACY_STREAK_AWARDS:
                await conn.execute(statement)
        finally:
            await conn.close()
        await asyncio.to_thread(migrate.upgrade, url)
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch("SELECT id, award_key FROM user_badges ORDER BY id")
            assert [(r[0], r[1]) for r in rows] == _STREAK_KEYS_AFTER
        finally:
            await conn.close()


def _whole_scope(raw: dict[str, Any]) -> str:
    """A criterion's counter scope on badge 1 as 0014 named it: the whole normalised criterion hashed."""
    import hashlib

    from app.rules.criteria import Criterion

    text = json.dumps(Criterion.model_validate(raw).model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return f"b1:{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def _scopes_before_and_after() -> tuple[str, str]:
    """Store Explorer's counter scope as 0014 named it and as it is named now."""
    from app.badges.rules_cache import scope_of
    from app.rules.criteria import Criterion

    return _whole_scope(_EXPLORER), scope_of(1, Criterion.model_validate(_EXPLORER))


_EXPLORER = {"event": "visit", "aggregate": "count_distinct", "field": "store_id", "threshold": 3,
             "window": {"type": "calendar", "unit": "month"}}


def _member_and_badge(key: str, criteria: list[dict[str, Any]]) -> list[str]:
    """Member 1 and an active badge 1 with these criteria, as 0014's schema holds them."""
    return [
        "INSERT INTO users (id, external_id, segments, preferences, points, created_at, updated_at) "
        "VALUES (1, 'M', '[]', '{}', 0, '2026-11-01', '2026-11-01')",
        "INSERT INTO badges (id, key, name, description, how_to_earn, criteria, points, visibility, repeatable, "
        f"status, translations, created_at, updated_at) VALUES (1, '{key}', '{key.title()}', '', '', "
        f"'{json.dumps(criteria)}', 0, 'public', false, 'active', '{{}}', '2026-11-01', '2026-11-01')",
    ]


def _counters_at(old: str) -> list[str]:
    return [
        *_member_and_badge("explorer", [_EXPLORER]),
        "INSERT INTO rule_counters (user_id, scope, bucket, state) VALUES "
        f"(1, '{old}', '2026-11', '{{\"count\": 2, \"distinct\": [\"S1\", \"S2\"]}}')",
        "INSERT INTO user_badges (id, user_id, badge_id, award_key, source, evidence, awarded_at, counted_in) VALUES "
        f"(1, 1, 1, 'once', 'manual', '{{}}', '2026-11-20', '[[\"{old}\", \"2026-11\"], [\"b9:other\", \"x\"]]')",
    ]


def test_sqlite_counters_keep_their_progress_when_scopes_stop_naming_the_threshold(tmp_path: Any) -> None:
    import sqlite3

    old, new = _scopes_before_and_after()
    assert old != new
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    _in_thread(migrate.upgrade, url, "0014_outbox_autoincrement")
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statement in _counters_at(old):
            db.execute(statement.replace("false", "0"))
        db.commit()
    _in_thread(migrate.upgrade, url)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT scope, bucket FROM rule_counters").fetchall() == [(new, "2026-11")]
        assert json.loads(db.execute("SELECT counted_in FROM user_badges").fetchone()[0]) == [
            [new, "2026-11"], ["b9:other", "x"]]
    _in_thread(migrate.downgrade, url, "0014_outbox_autoincrement")
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT scope FROM rule_counters").fetchall() == [(old,)]


async def test_counters_keep_their_progress_when_scopes_stop_naming_the_threshold_on_postgresql() -> None:
    old, new = _scopes_before_and_after()
    async with _scratch_database() as url:
        await asyncio.to_thread(migrate.upgrade, url, "0014_outbox_autoincrement")
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            for statement in _counters_at(old):
                await conn.execute(statement)
        finally:
            await conn.close()
        await asyncio.to_thread(migrate.upgrade, url)
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            assert [tuple(r) for r in await conn.fetch("SELECT scope, bucket FROM rule_counters")] == [
                (new, "2026-11")]
            counted = await conn.fetchval("SELECT counted_in FROM user_badges")
            assert json.loads(counted) == [[new, "2026-11"], ["b9:other", "x"]]
        finally:
            await conn.close()


def test_sqlite_criteria_differing_only_in_threshold_share_one_counter_and_get_it_back_on_downgrade(
    tmp_path: Any,
) -> None:
    """Two criteria of one badge that differ only in threshold collapse into one scope. The upgrade keeps one
    counter (not a stale copy beside it), and awards' counted_in name it once; the downgrade gives each old scope
    the counter as it stands then (the first criterion's progress was lost, the second got its stale pre-upgrade
    state back)."""
    import sqlite3

    from app.badges.rules_cache import scope_of
    from app.rules.criteria import Criterion

    low = {"event": "visit", "threshold": 3}
    high = {"event": "visit", "threshold": 5}
    old_low, old_high, new = _whole_scope(low), _whole_scope(high), scope_of(1, Criterion.model_validate(low))
    assert new == scope_of(1, Criterion.model_validate(high))
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    _in_thread(migrate.upgrade, url, "0014_outbox_autoincrement")
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statement in _member_and_badge("visitor", [low, high]):
            db.execute(statement.replace("false", "0"))
        for scope in (old_low, old_high):
            db.execute("INSERT INTO rule_counters (user_id, scope, bucket, state) VALUES "
                       f"(1, '{scope}', 'all', '{{\"count\": 2}}')")
        db.execute("INSERT INTO user_badges (id, user_id, badge_id, award_key, source, evidence, awarded_at, "
                   "counted_in) VALUES (1, 1, 1, 'once', 'manual', '{}', '2026-11-20', "
                   f"'[[\"{old_low}\", \"all\"], [\"{old_high}\", \"all\"]]')")
        db.commit()
    _in_thread(migrate.upgrade, url)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT scope, state FROM rule_counters").fetchall() == [(new, '{"count": 2}')]
        assert json.loads(db.execute("SELECT counted_in FROM user_badges").fetchone()[0]) == [[new, "all"]]
        db.execute("UPDATE rule_counters SET state = '{\"count\": 4}'")  # two more visits since
        db.commit()
    _in_thread(migrate.downgrade, url, "0014_outbox_autoincrement")
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert sorted(db.execute("SELECT scope, state FROM rule_counters").fetchall()) == sorted(
            [(old_low, '{"count": 4}'), (old_high, '{"count": 4}')])
        assert sorted(json.loads(db.execute("SELECT counted_in FROM user_badges").fetchone()[0])) == sorted(
            [[old_low, "all"], [old_high, "all"]])


def test_sqlite_a_fixed_window_in_another_offset_keeps_its_counter_across_0015(tmp_path: Any) -> None:
    """0015 renames to the scope the app computes: threshold left out and a fixed window's instants in UTC (written
    +08:00, the counter is found under the app's scope)."""
    import sqlite3

    from app.badges.rules_cache import scope_of
    from app.rules.criteria import Criterion

    festival = {"event": "purchase", "threshold": 2, "window": {
        "type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-21T00:00:00+08:00"}}
    c = Criterion.model_validate(festival)
    old = _whole_scope(festival)
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    _in_thread(migrate.upgrade, url, "0014_outbox_autoincrement")
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statement in _member_and_badge("festival", [festival]):
            db.execute(statement.replace("false", "0"))
        db.execute(f"INSERT INTO rule_counters (user_id, scope, bucket, state) VALUES (1, '{old}', 'fixed', '{{}}')")
        db.commit()
    _in_thread(migrate.upgrade, url)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT scope FROM rule_counters").fetchall() == [(scope_of(1, c),)]
