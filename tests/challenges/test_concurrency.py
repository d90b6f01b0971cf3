"""The completing event arriving twice at the same moment credits, awards and issues exactly once (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.models import MemberVoucher, PointsEntry, UserBadge
from tests.challenges.conftest import step


async def _setup(client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any) -> None:
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "finisher", "name": "Finisher", "visibility": "invite_only", "points": 7, "status": "active"})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/vouchers", headers=admin_headers, json={
        "key": "coffee", "name": "Free coffee", "face_value": 25, "validity_days": 30, "codes": ["C1", "C2", "C3"]})
    assert r.status_code == 201, r.text
    await make_challenge("post-and-comment", [step("Post", "post"), step("Comment", "comment")],
                         rewards={"points_per_step": 5, "bonus_points": 20, "badge": "finisher", "voucher": "coffee"})


async def _counts(app: FastAPI, external_id: str) -> dict[str, int]:
    from app.models import User

    async with app.state.db.sessionmaker() as s:
        uid = (await s.execute(select(User.id).where(User.external_id == external_id))).scalar_one()
        ledger = (await s.execute(select(PointsEntry.source_type, func.count(), func.sum(PointsEntry.amount))
                                  .where(PointsEntry.user_id == uid).group_by(PointsEntry.source_type))).all()
        badges = (await s.execute(select(func.count()).where(UserBadge.user_id == uid))).scalar_one()
        vouchers = (await s.execute(select(func.count()).where(MemberVoucher.user_id == uid))).scalar_one()
        points = (await s.execute(select(User.points).where(User.id == uid))).scalar_one()
    out = {f"{t}:n": n for t, n, _ in ledger} | {f"{t}:sum": int(v) for t, _, v in ledger}
    return out | {"badges": badges, "vouchers": vouchers, "points": points}


EXPECTED = {"challenge_step:n": 2, "challenge_step:sum": 10, "challenge_bonus:n": 1, "challenge_bonus:sum": 20,
            "badge:n": 1, "badge:sum": 7, "badges": 1, "vouchers": 1, "points": 37}


async def _twice(app: FastAPI, bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[dict[str, Any]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as c1, \
            httpx.AsyncClient(transport=transport, base_url="http://b") as c2:
        r1, r2 = await asyncio.gather(c1.post("/v1/events", json=bodies[0], headers=headers),
                                      c2.post("/v1/events", json=bodies[1], headers=headers))
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    return [r1.json(), r2.json()]


async def test_same_completing_event_twice_concurrently_credits_once(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any,
    make_challenge: Any, outbox: Any, clock: Any,
) -> None:
    await _setup(client, admin_headers, make_challenge)
    m = await member()
    clock.set("2026-11-20T10:00:00+08:00")
    assert (await client.post("/v1/challenges/post-and-comment/join", headers=m.headers)).status_code == 201
    await send(m, "post", "2026-11-20T10:01:00+08:00")
    body = {"id": f"e-{uuid.uuid4().hex}", "user_id": m.external_id, "type": "comment",
            "occurred_at": "2026-11-20T10:02:00+08:00", "attributes": {}}
    results = await _twice(app, [body, body], admin_headers)
    assert sorted(r["duplicate"] for r in results) == [False, True]
    assert await _counts(app, m.external_id) == EXPECTED
    assert len(await outbox("challenge.completed", m.external_id)) == 1
    assert len(await outbox("voucher.issued", m.external_id)) == 1
    assert len(await outbox("challenge.step_completed", m.external_id)) == 2


async def test_two_different_completing_events_concurrently_credit_once(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any,
    make_challenge: Any, outbox: Any, clock: Any,
) -> None:
    await _setup(client, admin_headers, make_challenge)
    m = await member()
    clock.set("2026-11-20T10:00:00+08:00")
    assert (await client.post("/v1/challenges/post-and-comment/join", headers=m.headers)).status_code == 201
    await send(m, "post", "2026-11-20T10:01:00+08:00")
    bodies = [{"id": f"e-{uuid.uuid4().hex}", "user_id": m.external_id, "type": "comment",
               "occurred_at": f"2026-11-20T10:0{2 + i}:00+08:00", "attributes": {}} for i in range(2)]
    results = await _twice(app, bodies, admin_headers)
    assert [r["duplicate"] for r in results] == [False, False]
    statuses = sorted(tuple(e["status"] for e in r["challenges"]) for r in results)
    assert statuses == [(), ("completed",)]
    assert await _counts(app, m.external_id) == EXPECTED
    assert len(await outbox("challenge.completed", m.external_id)) == 1
    vouchers = (await client.get("/v1/me/vouchers", headers=m.headers)).json()
    assert [(v["voucher"], v["status"], v["code"]) for v in vouchers] == [("coffee", "issued", "C1")]


async def test_concurrent_publishes_announce_once_and_a_racing_archive_is_not_lost(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, outbox: Any
) -> None:
    transport = httpx.ASGITransport(app=app)
    clients = [httpx.AsyncClient(transport=transport, base_url=f"http://p{i}") for i in range(4)]
    try:
        for round_ in range(3):
            key = f"race-{round_}"
            await make_challenge(key, [step("Post", "post")], publish=False)
            replies = await asyncio.gather(*(
                c.post(f"/v1/admin/challenges/{key}/publish", headers=admin_headers) for c in clients[:3]
            ), clients[3].post(f"/v1/admin/challenges/{key}/archive", headers=admin_headers))
            assert all(r.status_code in (200, 409) for r in replies), [r.text for r in replies]
            archived = replies[3]
            final = (await client.get(f"/v1/admin/challenges/{key}", headers=admin_headers)).json()
            if archived.status_code == 200:
                assert final["status"] == "archived"  # the archive that answered 200 held
            published = [p for p in await outbox("challenge.published") if p["challenge"] == key]
            assert len(published) <= 1, published
            assert len(published) == (1 if any(r.status_code == 200 and r.json()["status"] == "published"
                                               for r in replies[:3]) else 0)
    finally:
        for c in clients:
            await c.aclose()


async def test_a_join_racing_an_archive_leaves_no_active_participation(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, member: Any
) -> None:
    """Either the join lands before the archive (and is expired by it) or it sees the challenge archived (409):
    an active participation in an archived challenge would never end (it has no deadline)."""
    from app.models import Challenge, ChallengeParticipation

    transport = httpx.ASGITransport(app=app)
    members = [await member() for _ in range(8)]
    clients = [httpx.AsyncClient(transport=transport, base_url=f"http://j{i}") for i in range(len(members) + 1)]
    try:
        for round_ in range(4):
            key = f"join-race-{round_}"
            await make_challenge(key, [step("Post", "post")])
            joins = zip(clients[:-1], members, strict=True)
            replies = await asyncio.gather(
                *(c.post(f"/v1/challenges/{key}/join", headers=m.headers) for c, m in joins),
                clients[-1].post(f"/v1/admin/challenges/{key}/archive", headers=admin_headers),
            )
            assert replies[-1].status_code == 200, replies[-1].text
            assert all(r.status_code in (201, 409) for r in replies[:-1]), [r.text for r in replies[:-1]]
            async with app.state.db.sessionmaker() as s:
                active = (await s.execute(
                    select(func.count()).select_from(ChallengeParticipation).join(Challenge)
                    .where(Challenge.key == key, ChallengeParticipation.status == "active")
                )).scalar_one()
            assert active == 0, round_
    finally:
        for c in clients:
            await c.aclose()


async def test_a_join_racing_a_schedule_edit_takes_the_edited_deadline(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], make_challenge: Any, member: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The edit commits between the join's first read of the challenge and its lock: the join uses the
    challenge as read under the lock (a 1-day time limit), not the one read before (30 days)."""
    from datetime import UTC, datetime, timedelta

    from app.challenges import repository as repo

    await make_challenge("limited", [step("Post", "post")], schedule={"time_limit_days": 30})
    m = await member()
    original = repo.shared

    async def edited_first(session: Any, challenge_id: int) -> Any:
        r = await client.patch("/v1/admin/challenges/limited", json={"schedule": {"time_limit_days": 1}},
                               headers=admin_headers)
        assert r.status_code == 200, r.text
        return await original(session, challenge_id)

    monkeypatch.setattr(repo, "shared", edited_first)
    r = await client.post("/v1/challenges/limited/join", headers=m.headers)
    assert r.status_code == 201, r.text
    deadline = datetime.fromisoformat(r.json()["deadline"])
    assert deadline - datetime.now(UTC) < timedelta(days=1, minutes=1), r.json()["deadline"]

