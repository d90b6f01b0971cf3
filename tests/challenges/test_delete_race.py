"""Deleting a challenge while a member joins it (PostgreSQL): the participation is not cascaded away."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.challenges import service as challenges_service
from app.errors import Conflict
from app.kit.db import commit
from app.models import ChallengeParticipation, User
from tests.challenges.conftest import step


async def test_a_delete_racing_a_join_is_refused_not_cascaded(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, member: Any
) -> None:
    await make_challenge("post-once", [step("Post", "post")])
    m = await member()
    settings = app.state.settings
    async with app.state.db.sessionmaker() as joining, app.state.db.sessionmaker() as deleting:
        user = (await joining.execute(select(User).where(User.external_id == m.external_id))).scalar_one()
        _view, created = await challenges_service.join(joining, settings, user, "post-once")  # not yet committed
        assert created

        async def delete() -> None:
            await challenges_service.delete(deleting, "post-once")
            await commit(deleting)

        task = asyncio.create_task(delete())
        await asyncio.sleep(0.5)  # the delete has read "nobody joined" and waits for the join's transaction
        await commit(joining)
        with pytest.raises(Conflict) as refused:
            await asyncio.wait_for(task, 10)
        assert refused.value.code == "challenge_has_participants"
        await deleting.rollback()
    async with app.state.db.sessionmaker() as s:
        joined = (await s.execute(select(func.count()).select_from(ChallengeParticipation))).scalar_one()
    assert joined == 1
    mine = await client.get("/v1/me/challenges", headers=m.headers)
    assert [c["key"] for c in mine.json()] == ["post-once"]


@pytest.mark.parametrize("kind", ["badge", "voucher"])
async def test_a_reward_deleted_while_a_challenge_names_it_is_refused(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], kind: str
) -> None:
    """A challenge saved naming a badge (or voucher) and that badge deleted at the same moment: one of the two is
    refused. Both went through, and the challenge promised a reward that no longer existed (dropped silently at
    completion)."""
    from app.badges import service as badges_service
    from app.challenges.schemas import ChallengeCreate
    from app.vouchers import service as vouchers_service

    if kind == "badge":
        r = await client.post("/v1/admin/badges", headers=admin_headers, json={
            "key": "finisher", "name": "Finisher", "visibility": "invite_only", "status": "active"})
    else:
        r = await client.post("/v1/admin/vouchers", headers=admin_headers, json={
            "key": "finisher", "name": "Coffee", "face_value": 25, "validity_days": 30, "codes": ["C1"]})
    assert r.status_code == 201, r.text
    body = ChallengeCreate.model_validate({
        "key": "with-reward", "title": "With reward", "steps": [step("Post", "post")],
        "rewards": {"points_per_step": 5, kind: "finisher"}})
    async with app.state.db.sessionmaker() as saving, app.state.db.sessionmaker() as deleting:
        await challenges_service.create(saving, body)  # not yet committed

        async def delete() -> None:
            if kind == "badge":
                await badges_service.delete(deleting, "finisher")
            else:
                await vouchers_service.delete(deleting, "finisher")
            await commit(deleting)

        task = asyncio.create_task(delete())
        await asyncio.sleep(0.5)
        await commit(saving)
        with pytest.raises(Conflict) as refused:
            await asyncio.wait_for(task, 10)
        assert refused.value.code in ("badge_in_use", "voucher_in_use")
        await deleting.rollback()
    r = await client.get(f"/v1/admin/{kind}s/finisher", headers=admin_headers)
    assert r.status_code == 200, r.text
