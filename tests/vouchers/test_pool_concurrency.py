"""Members completing at the same moment never share a code, and nobody loses a reward (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from tests.challenges.conftest import step


async def test_concurrent_completions_take_distinct_codes_and_the_rest_wait(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, make_challenge: Any,
    clock: Any,
) -> None:
    r = await client.post("/v1/admin/vouchers", headers=admin_headers,
                          json={"key": "tea", "name": "Tea", "codes": ["T1", "T2", "T3"]})
    assert r.status_code == 201
    await make_challenge("one-post", [step("Post", "post")], rewards={"voucher": "tea"})
    clock.set("2026-11-20T10:00:00+08:00")
    members = [await member() for _ in range(5)]
    for m in members:
        assert (await client.post("/v1/challenges/one-post/join", headers=m.headers)).status_code == 201
    transport = httpx.ASGITransport(app=app)
    clients = [httpx.AsyncClient(transport=transport, base_url=f"http://c{i}") for i in range(5)]
    try:
        results = await asyncio.gather(*(
            c.post("/v1/events", headers=admin_headers, json={
                "id": f"e-{uuid.uuid4().hex}", "user_id": m.external_id, "type": "post",
                "occurred_at": "2026-11-20T10:05:00+08:00", "attributes": {}})
            for c, m in zip(clients, members, strict=True)
        ))
    finally:
        for c in clients:
            await c.aclose()
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    vouchers = [(await client.get("/v1/me/vouchers", headers=m.headers)).json() for m in members]
    assert all(len(v) == 1 for v in vouchers)
    codes = sorted(v[0]["code"] for v in vouchers if v[0]["status"] == "issued")
    assert codes == ["T1", "T2", "T3"]
    assert sum(v[0]["status"] == "pending" for v in vouchers) == 2
    view = (await client.get("/v1/admin/vouchers/tea", headers=admin_headers)).json()
    assert (view["issued_count"], view["pending_count"], view["warning"]) == (3, 2, "voucher_pool_exhausted")


async def test_concurrent_uploads_of_the_same_codes_report_each_code_added_once(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await client.post("/v1/admin/vouchers", headers=admin_headers, json={
        "key": "v2", "name": "V2", "face_value": 5, "validity_days": 30})
    assert r.status_code == 201, r.text
    transport = httpx.ASGITransport(app=app)
    clients = [httpx.AsyncClient(transport=transport, base_url=f"http://u{i}") for i in range(6)]
    try:
        replies = await asyncio.gather(*(
            c.post("/v1/admin/vouchers/v2/codes", json={"codes": ["b", "c"]}, headers=admin_headers) for c in clients
        ))
    finally:
        for c in clients:
            await c.aclose()
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert sum(r.json()["added"] for r in replies) == 2, [r.json() for r in replies]
    assert all(r.json()["added"] + r.json()["duplicates"] == 2 for r in replies)
    assert (await client.get("/v1/admin/vouchers/v2", headers=admin_headers)).json()["codes_total"] == 2


async def _owed(app: FastAPI, session: Any, external_id: str, source_id: str) -> Any:
    """In an open transaction, a completion owes the member a 'tea' voucher (issue() as the engine calls it)."""
    from sqlalchemy import select

    from app.models import User
    from app.vouchers import repository as vouchers_repo
    from app.vouchers import service as vouchers_service

    user = (await session.execute(select(User).where(User.external_id == external_id))).scalar_one()
    voucher = await vouchers_repo.by_key(session, "tea")
    return await vouchers_service.issue(session, voucher, user, source_type="test", source_id=source_id)


async def _statuses(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> tuple[int, int, int | None]:
    view = (await client.get("/v1/admin/vouchers/tea", headers=admin_headers)).json()
    return view["issued_count"], view["pending_count"], view["codes_available"]


async def test_codes_added_while_a_reward_is_being_owed_are_handed_to_it(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """An upload racing a completion on an empty pool: neither transaction saw the other's uncommitted row (the
    completion found no code, the upload found no pending voucher), so the reward stayed pending beside a free code
    until the 5-minute job. The upload now waits for completions in flight on that voucher, and they for it."""
    from app.vouchers import service as vouchers_service

    r = await client.post("/v1/admin/vouchers", headers=admin_headers, json={"key": "tea", "name": "Tea"})
    assert r.status_code == 201, r.text
    for ext in ("owed-1", "owed-2"):
        assert (await client.put(f"/v1/users/{ext}", json={}, headers=admin_headers)).status_code in (200, 201)

    # The completion first: the upload, arriving while it is uncommitted, hands its code over once it commits.
    async with app.state.db.sessionmaker() as s1:
        assert (await _owed(app, s1, "owed-1", "1")).status == "pending"
        upload = asyncio.create_task(
            client.post("/v1/admin/vouchers/tea/codes", json={"codes": ["T1"]}, headers=admin_headers))
        await asyncio.sleep(0.5)
        await s1.commit()
    r = await upload
    assert r.status_code == 200 and r.json()["fulfilled"] == 1, r.text
    assert await _statuses(client, admin_headers) == (1, 0, 0)

    # The upload first: the completion, arriving while it is uncommitted, takes its code once it commits.
    async with app.state.db.sessionmaker() as s2:
        await vouchers_service.add_codes(s2, "tea", ["T2"])

        async def complete() -> Any:
            async with app.state.db.sessionmaker() as s3:
                issued = await _owed(app, s3, "owed-2", "2")
                await s3.commit()
                return issued

        completion = asyncio.create_task(complete())
        await asyncio.sleep(0.5)
        await s2.commit()
    assert (await completion).status == "issued"
    assert await _statuses(client, admin_headers) == (2, 0, 0)


async def test_an_upload_waiting_on_a_switch_to_generated_codes_is_refused(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """The upload reads `generated` once it holds the voucher: waiting on a switch that commits, it is refused,
    rather than adding codes to a pool nothing hands out any more."""
    from sqlalchemy import update

    from app.kit.db import commit
    from app.models import Voucher

    r = await client.post("/v1/admin/vouchers", headers=admin_headers, json={"key": "v3", "name": "V3"})
    assert r.status_code == 201, r.text
    async with app.state.db.sessionmaker() as switching:
        await switching.execute(update(Voucher).where(Voucher.key == "v3").values(generated=True))
        upload = asyncio.create_task(
            client.post("/v1/admin/vouchers/v3/codes", json={"codes": ["X1"]}, headers=admin_headers))
        await asyncio.sleep(0.5)  # the upload has found the voucher and waits for its row
        await commit(switching)
    r = await asyncio.wait_for(upload, 10)
    assert r.status_code == 409 and r.json()["error"]["code"] == "voucher_generated", r.text
    assert (await client.get("/v1/admin/vouchers/v3", headers=admin_headers)).json()["codes_total"] == 0
