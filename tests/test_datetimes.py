"""Every datetime a response shows is in the program's time zone, whatever offset it was sent in and whichever
database stored it: clients compare and display them alike (a deadline in one list and another)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api import ADMIN, badge, event
from tests.challenges.conftest import step
from tests.leaderboards.helpers import make_board

pytestmark = pytest.mark.sqlite_too

STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def _stamps(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if where.rsplit(".", 2)[-2:-1] == ["params"]:
        return  # a message's rendered fields: WeChat's own "2026-11-25 22:27" format, in program time already
    if where.endswith((".criteria", ".criterion")):
        return  # a rule comes back as the admin posted it (its counters are keyed by that form)
    if isinstance(value, str):
        for m in STAMP.finditer(value):
            yield where, m.group()
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _stamps(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _stamps(v, f"{where}.{i}")


async def _world(client: httpx.AsyncClient, login: Any) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A member with a badge, points, a level, a voucher, a challenge joined, a board score and an inbox."""
    now = datetime.now(UTC)
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=30)
    month = {"type": "calendar", "unit": "month"}
    await badge(client, "monthly", [{"event": "visit", "threshold": 3, "window": month}])
    await badge(client, "winter", [{"event": "visit", "threshold": 1}], visibility="seasonal",
                available_from=(now - timedelta(days=1)).isoformat(),
                available_until=(now + timedelta(days=9)).isoformat())
    await badge(client, "vip", [{"event": "vip", "threshold": 1}], visibility="invite_only")
    west = timezone(timedelta(hours=-5))  # windows posted (and events sent) in another offset are shown in ours
    await badge(client, "big-week", [{"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 10_000,
                                      "window": {"type": "rolling", "days": 7}}])
    fest = {"type": "fixed", "start": (now - timedelta(days=1)).astimezone(west).isoformat(),
            "end": (now + timedelta(days=1)).astimezone(west).isoformat()}
    await badge(client, "fest", [{"event": "purchase", "threshold": 1, "window": fest}])
    await badge(client, "fest-two", [{"event": "purchase", "threshold": 2, "window": fest}])
    r = await client.post("/v1/admin/vouchers", headers=ADMIN, json={
        "key": "coffee", "name": "Free coffee", "description": "Any size", "face_value": 25, "validity_days": 30})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/challenges", headers=ADMIN, json={
        "key": "spring", "title": "Spring", "steps": [step("Buy", "purchase")], "status": "published",
        "schedule": {"ends_at": (now + timedelta(days=3)).isoformat()}, "rewards": {"voucher": "coffee"}})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/challenges", headers=ADMIN, json={
        "key": "later", "title": "Later", "steps": [step("Buy", "purchase")], "status": "published",
        "schedule": {"starts_at": (now + timedelta(days=2)).astimezone(west).isoformat()}})
    assert r.status_code == 201, r.text
    await make_board(client, ADMIN, "spend")
    r = await client.post("/v1/admin/webhooks", headers=ADMIN, json={"url": "https://crm.example/h", "events": ["*"]})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/api-keys", headers=ADMIN, json={"name": "pos", "scopes": ["events:write"]})
    assert r.status_code == 201, r.text

    member = await login("o-dt")
    r = await client.put("/v1/users/m-dt", headers=ADMIN, json={"openid": "o-dt", "city": "Shanghai"})
    assert r.status_code in (200, 201), r.text
    r = await client.post("/v1/challenges/spring/join", headers=member)
    assert r.status_code in (200, 201), r.text
    not_yet = await client.post("/v1/challenges/later/join", headers=member)
    assert not_yet.status_code == 409 and not_yet.json()["error"]["details"]["starts_at"], not_yet.text
    # Sent in UTC ("Z") and in another offset: shown back in program time all the same.
    outcomes = [
        await event(client, "m-dt", "visit", now.strftime("%Y-%m-%dT%H:%M:%SZ"), store_id="A"),
        await event(client, "m-dt", "purchase", datetime.now(timezone(timedelta(hours=-5))).isoformat(), amount=99),
    ]
    r = await client.post("/v1/admin/users/m-dt/badges/vip", headers=ADMIN, json={"reason": "VIP evening"})
    assert r.status_code in (200, 201), r.text
    r = await client.post("/v1/admin/users/m-dt/points", headers=ADMIN, json={"amount": 5, "reason": "goodwill"})
    assert r.status_code in (200, 201), r.text
    outcomes.append(not_yet.json())
    return member, outcomes


MEMBER_READS = ["/v1/me", "/v1/me/badges", "/v1/badges/first-purchase", "/v1/badges/monthly",
                "/v1/badges/winter", "/v1/me/badges/first-purchase/share", "/v1/me/points", "/v1/me/challenges",
                "/v1/challenges", "/v1/challenges/spring", "/v1/me/vouchers", "/v1/me/notifications",
                "/v1/leaderboards", "/v1/leaderboards/spend", "/v1/me/subscriptions", "/v1/me/preferences"]
ADMIN_READS = ["/v1/admin/badges", "/v1/admin/badges/winter", "/v1/admin/badges/first-purchase/stats",
               "/v1/admin/users/m-dt", "/v1/admin/users/m-dt/badges", "/v1/admin/users/m-dt/events",
               "/v1/admin/users/m-dt/points", "/v1/admin/audit", "/v1/admin/challenges",
               "/v1/admin/challenges/spring", "/v1/admin/challenges/spring/stats", "/v1/admin/vouchers",
               "/v1/admin/leaderboards", "/v1/admin/leaderboards/spend", "/v1/admin/leaderboards/spend/top",
               "/v1/admin/leaderboards/spend/periods", "/v1/admin/api-keys", "/v1/admin/webhooks",
               "/v1/admin/notifications", "/v1/admin/analytics/badges", "/v1/admin/analytics/overview"]


async def test_every_datetime_a_response_shows_is_in_program_time(
    app: FastAPI, client: httpx.AsyncClient, login: Any
) -> None:
    assert app.state.settings.timezone == "Asia/Shanghai"
    member, outcomes = await _world(client, login)
    bodies: list[tuple[str, Any]] = [(f"POST /v1/events #{i}", o) for i, o in enumerate(outcomes)]
    for path in MEMBER_READS:
        r = await client.get(path, headers=member)
        assert r.status_code == 200, (path, r.text)
        bodies.append((path, r.json()))
    for path in ADMIN_READS:
        r = await client.get(path, headers=ADMIN)
        assert r.status_code == 200, (path, r.text)
        bodies.append((path, r.json()))
    for path in ["/v1/admin/leaderboards/spend/export.csv", "/v1/admin/analytics/badges.csv"]:
        r = await client.get(path, headers=ADMIN)
        assert r.status_code == 200, (path, r.text)
        bodies.append((path, r.text))
    seen = [(path, where, stamp) for path, body in bodies for where, stamp in _stamps(body)]
    assert {"/v1/admin/leaderboards/spend/export.csv", "/v1/admin/analytics/badges.csv"} <= {p for p, _w, _s in seen}
    assert len({path for path, _w, _s in seen}) >= 20, seen  # the world has datetimes to show on most reads
    off = [(path, where, stamp) for path, where, stamp in seen if not stamp.endswith("+08:00")]
    assert off == [], "\n".join(map(str, off))


async def test_webhook_bodies_show_datetimes_in_program_time_too(
    app: FastAPI, client: httpx.AsyncClient, login: Any
) -> None:
    """What integrators receive reads like what the API answers: the outbox payloads webhooks carry."""

    from app import jobs  # noqa: F401  (registers the jobs)
    from app.worker import runner
    from tests.webhooks.receiver import webhook_receiver

    await _world(client, login)
    with webhook_receiver() as receiver:
        r = await client.post("/v1/admin/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=ADMIN)
        assert r.status_code == 201, r.text
        # The jobs as the worker runs them (`laurel worker` too): a task of its own, with no zone inherited.
        for name in ("notifications.fanout", "webhooks.dispatch"):
            job = next(j for j in runner.JOBS if j.name == name)
            await asyncio.create_task(runner.run_job_once(app.state.db.sessionmaker, app.state.settings, job),
                                      context=contextvars.Context())
        bodies = [json.loads(x.body) for x in receiver.received]
    seen = [(b["event"], where, stamp) for b in bodies for where, stamp in _stamps(b)]
    assert {kind for kind, _w, _s in seen} >= {"badge.awarded", "level.reached", "challenge.completed"}, seen
    off = [(kind, where, stamp) for kind, where, stamp in seen if not stamp.endswith("+08:00")]
    assert off == [], "\n".join(map(str, off))
