"""API-key queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asyncpg import PostgresError
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.dialect import dialect_name, raw_driver
from app.models import ApiKey


@dataclass(frozen=True)
class KeyRow:
    """What verifying a key needs of its row (no ORM object: the group commit checks keys on every group)."""

    id: int
    name: str
    prefix: str
    key_hash: str
    scopes: list[str]
    last_used_at: datetime | None
    revoked_at: datetime | None


_KEY_COLUMNS = (ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.key_hash, ApiKey.scopes, ApiKey.last_used_at,
                ApiKey.revoked_at)
KEYS_SQL = (
    "SELECT id, name, prefix, key_hash, scopes, last_used_at, revoked_at FROM api_keys WHERE prefix = ANY($1::text[])"
)
TOUCH_SQL = "UPDATE api_keys SET last_used_at = $1 WHERE id = ANY($2::bigint[])"


async def rows_by_prefixes(session: AsyncSession, prefixes: Sequence[str]) -> list[KeyRow]:
    if dialect_name(session) == "postgresql":
        driver = await raw_driver(session)
        try:
            found = await driver.fetch(KEYS_SQL, list(prefixes))
        except PostgresError as exc:
            raise DBAPIError("api keys", None, exc) from exc
        return [KeyRow(*r) for r in found]
    result = await session.execute(select(*_KEY_COLUMNS).where(ApiKey.prefix.in_(prefixes)))
    return [KeyRow(*r) for r in result]


async def touch(session: AsyncSession, key_ids: Sequence[int], at: datetime) -> None:
    """Record that keys were used (the caller throttles this to about once a minute per key)."""
    if dialect_name(session) == "postgresql":
        driver = await raw_driver(session)
        try:
            await driver.execute(TOUCH_SQL, at, list(key_ids))
        except PostgresError as exc:
            raise DBAPIError("api keys used", None, exc) from exc
        return
    await session.execute(update(ApiKey).where(ApiKey.id.in_(key_ids)).values(last_used_at=at))


async def get(session: AsyncSession, key_id: int) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def list_all(session: AsyncSession) -> Sequence[ApiKey]:
    return (await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars().all()


async def add(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key
