"""The few statements that differ between PostgreSQL and SQLite, each behind one function."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from asyncpg import PostgresError
from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert_for(session: AsyncSession, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on either backend."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(session: AsyncSession, table: Table, conflict_cols: Sequence[str]) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING, the building block of every "exactly once"."""
    return insert_for(session, table).on_conflict_do_nothing(index_elements=list(conflict_cols))


async def insert_once(
    session: AsyncSession, model: Any, conflict_cols: Sequence[str], values: dict[str, Any]
) -> Any | None:
    """Insert a row unless its unique key exists; the row's (first) primary key if this call inserted it.

    The shape of every "exactly once" here: the database decides, and only the caller that inserted acts.
    """
    table = model.__table__
    pk = next(iter(table.primary_key.columns))
    stmt = insert_ignore(session, table, conflict_cols).values(**values).returning(pk)
    return (await session.execute(stmt)).scalar_one_or_none()


def _lock_id(namespace: str) -> int:
    digest = hashlib.blake2b(f"job:{namespace}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def try_lock_key(session: AsyncSession, namespace: str) -> bool:
    """A non-blocking transaction-scoped lock; used so one replica runs each scheduled job."""
    if dialect_name(session) != "postgresql":
        return True
    res = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _lock_id(namespace)})
    return bool(res.scalar())


async def lock_key(session: AsyncSession, namespace: str) -> None:
    """Wait for a transaction-scoped lock, so writers that replace a whole set (the level ladder) take turns
    instead of colliding on its keys. SQLite needs none: it runs one writer at a time."""
    if dialect_name(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(namespace)})


async def raw_driver(session: AsyncSession) -> Any:
    """PostgreSQL: the asyncpg connection under the session, inside the session's transaction (for the few
    statements of the hot paths that send arrays and skip the ORM layer)."""
    pooled = await session.connection()
    connection = await pooled.get_raw_connection()
    driver: Any = connection.driver_connection
    if driver.is_closed():
        # The server closed it (a restart, a failover): SQLAlchemy only learns that from its own statements, so
        # the pool would hand the dead connection out again and again. It is dropped now, and this request is a
        # 503 (nothing was applied); the next one gets a fresh connection.
        await pooled.invalidate()
        raise DBAPIError("connection", None, ConnectionError("connection is closed"), connection_invalidated=True)
    adapted: Any = connection.dbapi_connection
    if getattr(adapted, "_transaction", True) is None:
        # SQLAlchemy's adapter opens the transaction lazily, on its first statement; this may be ours.
        await adapted._start_transaction()
    if not driver.is_in_transaction():  # pragma: no cover - a SQLAlchemy without that hook
        await session.execute(text("SELECT 1"))
    return driver


async def execute_raw(session: AsyncSession, sql: str, *args: Any) -> None:
    """Run one statement on the raw connection; errors come back as SQLAlchemy's, like every other statement."""
    driver = await raw_driver(session)
    try:
        await driver.execute(sql, *args)
    except PostgresError as exc:
        raise DBAPIError(sql.strip().split("\n", 1)[0], None, exc) from exc


def skip_locked(session: AsyncSession) -> dict[str, Any]:
    """Arguments for `with_for_update` that claim rows without waiting, where the backend supports it."""
    if dialect_name(session) == "postgresql":
        return {"skip_locked": True}
    return {}
