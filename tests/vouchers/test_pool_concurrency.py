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
