"""Helpers for notification tests: members known by external id and openid, WeChat templates, credits, jobs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.config import Settings
from app.models import WeChatDelivery
from app.notifications.dispatcher import dispatch_wechat_once
from app.notifications.fanout import fanout_all
from tests.api import ADMIN

BADGE_TEMPLATE = "tmpl-badge-unlocked"


@dataclass
class Member:
    external_id: str
    openid: str
    headers: dict[str, str]


class Kit:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient, login: Any) -> None:
        self.app = app
        self.client = client
        self._login = login

    @property
    def settings(self) -> Settings:
        return self.app.state.settings  # type: ignore[no-any-return]

    async def member(self, external_id: str | None = None) -> Member:
        """A member who logged in through WeChat and is known to the integrator by an external id."""
        external_id = external_id or f"M-{uuid.uuid4().hex[:8]}"
        openid = f"o-{uuid.uuid4().hex[:12]}"
        headers = await self._login(openid)
        r = await self.client.put(f"/v1/users/{external_id}", json={"openid": openid}, headers=ADMIN)
        assert r.status_code in (200, 201), r.text
        return Member(external_id, openid, headers)

    async def template(self, kind: str = "badge_unlocked", template_id: str = BADGE_TEMPLATE, **body: Any) -> None:
        payload = {
            "template_id": template_id, "page": "pages/badges/index",
            "fields": {"thing1": "{badge_name}", "time2": "{earned_at}"},
            "miniprogram_state": "formal", "lang": "zh_CN", "enabled": True, **body,
        }
        r = await self.client.put(f"/v1/admin/notification-templates/{kind}", json=payload, headers=ADMIN)
        assert r.status_code == 200, r.text

    async def credit(self, m: Member, template_id: str = BADGE_TEMPLATE, n: int = 1) -> None:
        for _ in range(n):
            r = await self.client.post(
                "/v1/me/subscriptions",
                json={"request_id": uuid.uuid4().hex, "results": {template_id: "accept"}},
                headers=m.headers,
            )
            assert r.status_code == 200, r.text

    async def credits(self, m: Member, template_id: str = BADGE_TEMPLATE) -> int:
        r = await self.client.get("/v1/me/subscriptions", headers=m.headers)
        for t in r.json()["templates"]:
            if t["template_id"] == template_id:
                return int(t["credits"])
        return 0

    async def fanout(self) -> int:
        return await fanout_all(self.app.state.db.sessionmaker, self.settings)

    async def dispatch(self, now: datetime | None = None, settings: Settings | None = None) -> int:
        return await dispatch_wechat_once(
            self.app.state.db.sessionmaker, settings or self.settings, self.app.state.wechat, now=now
        )

    async def deliveries(self) -> list[WeChatDelivery]:
        async with self.app.state.db.sessionmaker() as s:
            return list((await s.execute(select(WeChatDelivery).order_by(WeChatDelivery.id))).scalars())


@pytest.fixture
def kit(app: FastAPI, client: httpx.AsyncClient, login: Any) -> Kit:
    return Kit(app, client, login)
