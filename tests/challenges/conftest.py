"""Helpers for challenge and voucher API tests: members with tokens, events, a settable clock."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

Json = dict[str, Any]


class Member:
    def __init__(self, external_id: str, headers: dict[str, str]) -> None:
        self.external_id = external_id
        self.headers = headers


class Clock:
    """Sets "now" for code that reads app.kit.clock.utcnow (challenges, vouchers)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._mp = monkeypatch

    def set(self, when: str | datetime) -> None:
        value = datetime.fromisoformat(when) if isinstance(when, str) else when
        self._mp.setattr("app.kit.clock.utcnow", lambda: value)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def member(client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any) -> Callable[..., Awaitable[Member]]:
    """A member known to integrators (external id) and logged in through WeChat (token)."""

    async def _make(tier: str | None = None, segments: list[str] | None = None) -> Member:
        external_id = f"m-{uuid.uuid4().hex[:10]}"
        openid = f"o-{uuid.uuid4().hex[:12]}"
        headers = await login(openid)
        body: Json = {"openid": openid}
        if tier is not None:
            body["tier"] = tier
        if segments is not None:
            body["segments"] = segments
        r = await client.put(f"/v1/users/{external_id}", json=body, headers=admin_headers)
        assert r.status_code in (200, 201), r.text
        return Member(external_id, headers)

    return _make


@pytest.fixture
def send(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Callable[..., Awaitable[Json]]:
    """Post one event; returns the ingestion outcome."""

    async def _send(m: Member, type_: str, occurred_at: str, event_id: str | None = None, **attributes: Any) -> Json:
        body = {"id": event_id or f"e-{uuid.uuid4().hex}", "user_id": m.external_id, "type": type_,
                "occurred_at": occurred_at, "attributes": attributes}
        r = await client.post("/v1/events", json=body, headers=admin_headers)
        assert r.status_code == 200, r.text
        return r.json()

    return _send


def step(title: str, event: str, threshold: float = 1, **extra: Any) -> Json:
    return {"title": title, "description": "", "icon": None, "criterion": {"event": event, "threshold": threshold,
                                                                          **extra}}


@pytest.fixture
def make_challenge(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> Callable[..., Awaitable[Json]]:
    async def _make(key: str, steps: list[Json], publish: bool = True, **fields: Any) -> Json:
        body: Json = {"key": key, "title": key.replace("-", " ").title(), "description": "…", "icon": None,
                      "steps": steps, **fields}
        r = await client.post("/v1/admin/challenges", json=body, headers=admin_headers)
        assert r.status_code == 201, r.text
        if publish:
            r = await client.post(f"/v1/admin/challenges/{key}/publish", headers=admin_headers)
            assert r.status_code == 200, r.text
        return r.json()

    return _make


@pytest.fixture
def outbox(app: Any) -> Callable[..., Awaitable[list[Json]]]:
    """Outbox payloads of one kind (optionally for one member by external id)."""
    from sqlalchemy import select

    from app.models import OutboxMessage

    async def _rows(kind: str, external_id: str | None = None) -> list[Json]:
        async with app.state.db.sessionmaker() as s:
            rows = (await s.execute(select(OutboxMessage).where(OutboxMessage.kind == kind)
                                    .order_by(OutboxMessage.id))).scalars().all()
        return [r.payload for r in rows if external_id is None or r.payload.get("user_id") == external_id]

    return _rows
