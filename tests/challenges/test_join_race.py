"""A join waiting for the member's lock judges eligibility on the member as committed when it gets it (PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from app.kit.db import commit
from app.models import User
from tests.challenges.conftest import step


async def test_a_join_waiting_on_a_tier_upgrade_sees_the_new_tier(
    app: FastAPI, client: httpx.AsyncClient, make_challenge: Any, member: Any
) -> None:
    await make_challenge("gold-only", [step("Post", "post")], eligibility={"tiers": ["gold"]})
    m = await member(tier="silver")
    async with app.state.db.sessionmaker() as sync:
        # A profile sync upgrading the member, not yet committed: it holds the member's row.
        await sync.execute(update(User).where(User.external_id == m.external_id).values(tier="gold"))
        joining = asyncio.create_task(client.post("/v1/challenges/gold-only/join", headers=m.headers))
        await asyncio.sleep(0.5)  # the join has read the member (silver) and waits for the row
        await commit(sync)
    r = await asyncio.wait_for(joining, 10)
    assert r.status_code in (200, 201), r.text
    assert r.json()["key"] == "gold-only"
