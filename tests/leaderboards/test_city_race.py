"""An admin's grant, revoke or points adjustment racing a member's city move (PostgreSQL): the points are scored in
the city view the member is in once both have committed, as an event's are."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.kit.db import commit
from app.models import Leaderboard, LeaderboardScore, User
from app.users import service as users_service
from app.users.schemas import UserUpsert
from tests.leaderboards.helpers import World, make_board


@pytest.mark.parametrize("action", ["adjust", "grant", "revoke"])
async def test_admin_points_racing_a_city_move_land_in_the_new_city(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], world: World, action: str
) -> None:
    await make_board(client, admin_headers, "points-city", metric={"type": "points"}, period="all_time",
                     dimensions=["city"])
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "vip", "name": "VIP", "visibility": "invite_only", "points": 15, "status": "active"})
    assert r.status_code == 201, r.text
    await world.member("m1", city="Shanghai")
    r = await client.post("/v1/admin/users/m1/points", headers=admin_headers, json={"amount": 40, "reason": "seed"})
    assert r.status_code == 200, r.text
    if action == "revoke":
        r = await client.post("/v1/admin/users/m1/badges/vip", headers=admin_headers, json={"reason": "seed"})
        assert r.status_code == 201, r.text
    requests: dict[str, Any] = {
        "adjust": lambda: client.post("/v1/admin/users/m1/points", headers=admin_headers,
                                      json={"amount": 7, "reason": "goodwill"}),
        "grant": lambda: client.post("/v1/admin/users/m1/badges/vip", headers=admin_headers,
                                     json={"reason": "welcome"}),
        "revoke": lambda: client.request("DELETE", "/v1/admin/users/m1/badges/vip", headers=admin_headers,
                                         json={"reason": "mistake"}),
    }
    async with app.state.db.sessionmaker() as moving:
        await users_service.upsert(moving, "m1", UserUpsert.model_validate({"city": "Beijing"}))  # holds the lock
        task = asyncio.create_task(requests[action]())
        await asyncio.sleep(0.5)  # the admin request has read the member (still in Shanghai) and waits for the lock
        await commit(moving)
    r = await asyncio.wait_for(task, 10)
    assert r.status_code in (200, 201), r.text
    async with app.state.db.sessionmaker() as s:
        uid = (await s.execute(select(User.id).where(User.external_id == "m1"))).scalar_one()
        points = (await s.execute(select(User.points).where(User.id == uid))).scalar_one()
        rows = (await s.execute(
            select(LeaderboardScore.dim, LeaderboardScore.score).join(Leaderboard)
            .where(Leaderboard.key == "points-city", LeaderboardScore.user_id == uid)
        )).all()
    assert {dim: int(score) for dim, score in rows} == {"": points, "city:Beijing": points}
