"""Many members scoring at once: counts stay exact and nobody deadlocks."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx

from tests.leaderboards.helpers import World, make_board, week_start


async def test_concurrent_events_keep_ranks_exact(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, dimensions=["city"])
    members = [f"M{i}" for i in range(16)]
    for m in members:
        await world.member(m, city="Shanghai")
    rng = random.Random(3)
    t = week_start() + timedelta(hours=1)
    plan = [(m, rng.choice([5, 10, 10, 20, -5])) for m in members for _ in range(5)]
    rng.shuffle(plan)
    await asyncio.gather(*(world.buy(m, amount, t) for m, amount in plan))
    expected: dict[str, int] = {}
    for m, amount in plan:
        expected[m] = expected.get(m, 0) + amount
    for view in ({}, {"city": "Shanghai"}):
        for m in members[:4]:
            v = await world.view("top-spenders-weekly", m, **view)
            assert v["total"] == len(members)
            assert v["me"]["score"] == expected[m]
            assert v["me"]["rank"] == 1 + sum(1 for s in expected.values() if s > expected[m])
