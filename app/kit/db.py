"""Engine and session factory; one AsyncSession per request, committed in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings


def make_engine(settings: Settings) -> AsyncEngine:
    """Create the engine; SQLite gets WAL and BEGIN IMMEDIATE so concurrent writers queue instead of failing."""
    url = settings.database_url
    # No pre-ping (it costs a round trip per request); recycle connections instead.
    kwargs: dict[str, Any] = {"pool_recycle": 1800}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 30}}
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.update(pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size)
    return create_async_engine(url, **kwargs)


class Database:
    """Owns the engine and the session factory for one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    async def dispose(self) -> None:
        await self.engine.dispose()


# session.info key of the transaction's buffers (name → object with `async flush()`, e.g. the engine's store):
# flushed before the commit, dropped when the transaction ends either way.
TX_BUFFERS = "laurel.tx_buffers"


class Buffer(Protocol):
    async def flush(self) -> None: ...


def tx_buffers(session: AsyncSession) -> dict[str, Buffer]:
    buffers: dict[str, Buffer] = session.info.setdefault(TX_BUFFERS, {})
    return buffers


async def commit(session: AsyncSession) -> None:
    """Write what is still buffered, then commit; the one place a request's transaction ends."""
    for buffer in list(tx_buffers(session).values()):
        await buffer.flush()
    session.info.pop(TX_BUFFERS, None)
    await session.commit()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commit once after the endpoint returns, before the response is sent."""
    db: Database = request.app.state.db
    async with db.sessionmaker() as session:
        try:
            yield session
            await commit(session)
        except BaseException:
            session.info.pop(TX_BUFFERS, None)
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
