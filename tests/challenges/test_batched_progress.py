"""One event moving several joined challenges saves them all (in one statement) and reports each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api import ADMIN, event


async def test_event_advances_every_joined_challenge(client: httpx.AsyncClient, login: Any) -> None:
    await client.put("/v1/users/MC", json={"openid": "o-mc"}, headers=ADMIN)
    member = await login(openid="o-mc")
    for i in range(3):
        body = {"key": f"posts-{i}", "title": f"Post {i + 2} times", "description": "",
                "steps": [{"title": "Post", "description": "", "criterion": {"event": "post", "threshold": i + 2}}],
                "rewards": {"points_per_step": 1, "bonus_points": 0, "badge": None, "voucher": None}}
        assert (await client.post("/v1/admin/challenges", json=body, headers=ADMIN)).status_code == 201
        assert (await client.post(f"/v1/admin/challenges/posts-{i}/publish", headers=ADMIN)).status_code == 200
        assert (await client.post(f"/v1/challenges/posts-{i}/join", headers=member)).status_code in (200, 201)
    at = datetime.now(UTC) + timedelta(seconds=1)
    out = await event(client, "MC", "post", at)
    assert sorted((c["challenge"], c["current"], c["target"]) for c in out["challenges"]) == [
        ("posts-0", 1, 2), ("posts-1", 1, 3), ("posts-2", 1, 4)]
    out = await event(client, "MC", "post", at)
    assert out["points_credited"] == 1  # posts-0 completed its only step
    mine = {c["key"]: c for c in (await client.get("/v1/me/challenges", headers=member)).json()}
    assert mine["posts-0"]["status"] == "completed"
    assert mine["posts-2"]["status"] == "active"


async def test_a_challenge_published_after_events_were_ingested_counts_the_next_event(
    client: httpx.AsyncClient, login: Any
) -> None:
    # With no published challenge, ingestion caches that fact and skips the participations query; publishing
    # must end that at once.
    await client.put("/v1/users/LC", json={"openid": "o-lc"}, headers=ADMIN)
    member = await login(openid="o-lc")
    at = datetime.now(UTC) + timedelta(seconds=1)
    assert (await event(client, "LC", "post", at))["challenges"] == []
    body = {"key": "late", "title": "Post twice", "description": "",
            "steps": [{"title": "Post", "description": "", "criterion": {"event": "post", "threshold": 2}}],
            "rewards": {"points_per_step": 0, "bonus_points": 0, "badge": None, "voucher": None}}
    assert (await client.post("/v1/admin/challenges", json=body, headers=ADMIN)).status_code == 201
    assert (await client.post("/v1/admin/challenges/late/publish", headers=ADMIN)).status_code == 200
    assert (await client.post("/v1/challenges/late/join", headers=member)).status_code in (200, 201)
    out = await event(client, "LC", "post", at + timedelta(seconds=1))
    assert [(c["challenge"], c["current"]) for c in out["challenges"]] == [("late", 1)]
