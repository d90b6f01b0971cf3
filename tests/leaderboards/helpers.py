"""Shared steps for leaderboard tests: boards, members who can log in, events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

SH = ZoneInfo("Asia/Shanghai")


def board_body(key: str = "top-spenders-weekly", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": key, "title": "Top Spenders", "description": "Biggest spenders this week", "icon": "trophy.png",
        "metric": {"type": "sum", "event": "purchase", "field": "amount", "where": []},
        "period": "weekly", "dimensions": ["city", "category", "friends"],
        "display": {"nickname": True, "avatar": True, "tier": False},
        "privacy": "public", "min_group_size": 1, "status": "active",
    }
    body.update(overrides)
    return body


async def make_board(client: httpx.AsyncClient, admin: dict[str, str], key: str = "top-spenders-weekly",
                     **overrides: Any) -> dict[str, Any]:
    r = await client.post("/v1/admin/leaderboards", json=board_body(key, **overrides), headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


class World:
    """Members (synced by an integrator and logged in through the fake WeChat) and event posting."""

    def __init__(self, client: httpx.AsyncClient, admin: dict[str, str], login: Any) -> None:
        self.client = client
        self.admin = admin
        self.login = login
        self.headers: dict[str, dict[str, str]] = {}

    async def member(self, external_id: str, *, city: str | None = None, nickname: str | None = None,
                     avatar_url: str | None = None, tier: str | None = None) -> dict[str, str]:
        openid = f"o-{external_id}-{uuid.uuid4().hex[:6]}"
        body: dict[str, Any] = {"openid": openid, "nickname": nickname or f"nick-{external_id}",
                                "avatar_url": avatar_url or f"https://img.test/{external_id}.png", "tier": tier}
        if city:
            body["city"] = city
        r = await self.client.put(f"/v1/users/{external_id}", json=body, headers=self.admin)
        assert r.status_code in (200, 201), r.text
        self.headers[external_id] = await self.login(openid)
        return self.headers[external_id]

    async def event(self, user: str, type_: str, at: datetime | None = None, **attributes: Any) -> dict[str, Any]:
        body = {"id": uuid.uuid4().hex, "user_id": user, "type": type_,
                "occurred_at": (at or datetime.now(UTC)).isoformat(), "attributes": attributes}
        r = await self.client.post("/v1/events", json=body, headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    async def buy(self, user: str, amount: float, at: datetime | None = None, **attributes: Any) -> dict[str, Any]:
        return await self.event(user, "purchase", at, amount=amount, **attributes)

    async def view(self, board: str, user: str, **params: Any) -> dict[str, Any]:
        r = await self.client.get(f"/v1/leaderboards/{board}", params=params, headers=self.headers[user])
        assert r.status_code == 200, r.text
        return r.json()


def week_start(now: datetime | None = None) -> datetime:
    """Monday 00:00 in Shanghai of the current week, as an aware datetime."""
    local = (now or datetime.now(UTC)).astimezone(SH)
    monday = (local - timedelta(days=local.weekday())).date()
    return datetime(monday.year, monday.month, monday.day, tzinfo=SH)


def names(view: dict[str, Any]) -> list[tuple[int, str | None, float]]:
    return [(e["rank"], e.get("nickname"), e["score"]) for e in view["entries"]]
