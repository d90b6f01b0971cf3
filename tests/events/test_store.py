"""The engine store buffers rows until `kit.db.commit` flushes them; any other commit must not drop them."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.events.store import store_for
from app.kit.clock import utcnow
from app.kit.db import commit


@pytest.mark.sqlite_too
async def test_a_commit_that_would_drop_buffered_engine_rows_is_refused(app: FastAPI) -> None:
    async with app.state.db.sessionmaker() as session:
        store_for(session).emit("test.kind", None, {"n": 1}, utcnow())
        with pytest.raises(RuntimeError, match="buffered"):
            await session.commit()  # a job committing by hand would lose the row silently
        await session.rollback()
    async with app.state.db.sessionmaker() as session:
        store_for(session).emit("test.kind", None, {"n": 2}, utcnow())
        await commit(session)  # the one place requests commit: flushes first
    async with app.state.db.sessionmaker() as session:
        rows = await session.execute(text("SELECT payload FROM outbox WHERE kind = 'test.kind'"))
        assert [p if isinstance(p, dict) else json.loads(p) for (p,) in rows] == [{"n": 2}]
