"""Deleting a badge while an event is earning it (PostgreSQL): the award is not cascaded away from its credit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.badges import service as badges_service
from app.errors import Conflict
from app.events import service as events_service
from app.events.schemas import EventIn
from app.kit.db import commit
from app.models import PointsEntry, User, UserBadge


async def test_a_delete_racing_the_first_award_is_refused_not_cascaded(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "first-purchase", "name": "First Purchase", "criteria": [{"event": "purchase", "threshold": 1}],
        "points": 5, "status": "active"})
    assert r.status_code == 201, r.text
    settings = app.state.settings
    ext = f"m-{uuid.uuid4().hex[:8]}"
    item = EventIn.model_validate({"id": f"e-{uuid.uuid4().hex}", "user_id": ext, "type": "purchase",
                                   "occurred_at": datetime.now(UTC).isoformat(), "attributes": {"amount": 10}})
    async with app.state.db.sessionmaker() as earning, app.state.db.sessionmaker() as deleting:
        outcome = await events_service.ingest(earning, settings, item)  # the award is written, not yet committed
        assert [b["key"] for b in outcome.badges_awarded] == ["first-purchase"]

        async def delete() -> None:
            await badges_service.delete(deleting, "first-purchase")
            await commit(deleting)

        task = asyncio.create_task(delete())
        await asyncio.sleep(0.5)  # the delete has read "no awards" and waits for the award's transaction
        await commit(earning)
        with pytest.raises(Conflict) as refused:
            await asyncio.wait_for(task, 10)
        assert refused.value.code == "badge_has_awards"
        await deleting.rollback()
    async with app.state.db.sessionmaker() as s:
        uid = (await s.execute(select(User.id).where(User.external_id == ext))).scalar_one()
        awards = (await s.execute(select(func.count()).where(UserBadge.user_id == uid))).scalar_one()
        credits = (await s.execute(select(func.count()).where(PointsEntry.user_id == uid,
                                                              PointsEntry.source_type == "badge"))).scalar_one()
    assert (awards, credits) == (1, 1)
    r = await client.get("/v1/admin/badges/first-purchase", headers=admin_headers)
    assert r.status_code == 200, r.text
