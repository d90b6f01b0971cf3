"""Group commit: concurrent single events share a transaction, and each caller still gets its own answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.events import service as events_service
from tests.api import ADMIN, badge

AT = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def body(key: str, member: str, **attributes: Any) -> dict[str, Any]:
    return {"id": key, "user_id": member, "type": "purchase", "occurred_at": AT, "attributes": attributes}


@pytest.mark.sqlite_too
async def test_concurrent_events_share_transactions_and_each_gets_its_own_outcome(
    client: httpx.AsyncClient, groups: list[int]
) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=10)
    posts = [client.post("/v1/events", json=body(f"g-{i}", f"G{i % 10}", amount=i), headers=ADMIN) for i in range(40)]
    responses = await asyncio.gather(*posts)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    assert max(groups) > 1  # they were evaluated together
    outcomes = [r.json() for r in responses]
    assert [o["id"] for o in outcomes] == [f"g-{i}" for i in range(40)]
    # Each member's first purchase (in arrival order) unlocked the badge, once.
    unlocked = sorted(o["id"] for o in outcomes if o["badges_awarded"])
    assert len(unlocked) == 10 and all(o["points_credited"] in (0, 10) for o in outcomes)
    for m in range(10):
        held = (await client.get(f"/v1/admin/users/G{m}/badges", headers=ADMIN)).json()
        assert [b["badge"] for b in held] == ["first-purchase"]


async def test_one_callers_bad_event_is_its_own_error_in_a_shared_group(
    client: httpx.AsyncClient, groups: list[int]
) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=10)
    assert (await client.post("/v1/events", json=body("taken", "OWNER"), headers=ADMIN)).status_code == 200
    nan = '{"id": "nan", "user_id": "N", "type": "purchase", "occurred_at": "' + AT + '", "attributes": {"x": NaN}}'
    posts = [
        *(client.post("/v1/events", json=body(f"ok-{i}", f"K{i}"), headers=ADMIN) for i in range(10)),
        client.post("/v1/events", json=body("taken", "THIEF"), headers=ADMIN),
        client.post("/v1/events", content=nan, headers={**ADMIN, "Content-Type": "application/json"}),
        *(client.post("/v1/events", json=body(f"ok-{i}", f"K{i}"), headers=ADMIN) for i in range(10, 20)),
    ]
    responses = await asyncio.gather(*posts)
    by_id = {i: r for i, r in enumerate(responses)}
    assert by_id[10].status_code == 409 and by_id[10].json()["error"]["code"] == "idempotency_key_reused"
    # NaN is refused by validation (it is not JSON, and jsonb would refuse it too), for that caller alone.
    assert by_id[11].status_code == 422 and by_id[11].json()["error"]["code"] == "validation_error"
    good = [r for i, r in by_id.items() if i not in (10, 11)]
    assert all(r.status_code == 200 and r.json()["badges_awarded"] for r in good)
    assert max(groups) > 1
    history = (await client.get("/v1/admin/users/THIEF/events", headers=ADMIN))
    assert history.status_code == 404 or history.json()["total"] == 0


async def test_a_failed_shared_transaction_evaluates_each_event_alone(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=10)
    calls: list[int] = []

    async def broken(session: Any, settings: Any, items: list[Any]) -> Any:
        calls.append(len(items))
        await events_service.ingest_group.__wrapped__(session, settings, items)  # type: ignore[attr-defined]
        raise RuntimeError("boom after the work: nothing of it may be committed")

    broken.__wrapped__ = events_service.ingest_group  # type: ignore[attr-defined]
    monkeypatch.setattr(events_service, "ingest_group", broken)
    responses = await asyncio.gather(*(
        client.post("/v1/events", json=body(f"f-{i}", f"F{i}"), headers=ADMIN) for i in range(12)
    ))
    assert calls and max(calls) > 1
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    assert all(r.json()["badges_awarded"] and not r.json()["duplicate"] for r in responses)
    for i in range(12):
        ledger = (await client.get(f"/v1/admin/users/F{i}/badges", headers=ADMIN)).json()
        assert len(ledger) == 1


async def test_a_members_events_keep_arrival_order_with_groups_in_flight(
    client: httpx.AsyncClient, make_key: Any
) -> None:
    """With two group transactions in flight, a member's later event never overtakes an earlier one (the first
    event's stored key costs its group a query, which used to let the second one's group lock the member first)."""
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=5)
    writer = await make_key("events:write")
    for i in range(30):
        first = asyncio.create_task(client.post("/v1/events", json=body(f"o1-{i}", f"O{i}"), headers=writer))
        for _ in range(i):
            await asyncio.sleep(0)
        second = asyncio.create_task(client.post("/v1/events", json=body(f"o2-{i}", f"O{i}"), headers=ADMIN))
        r1, r2 = await first, await second
        assert r1.json()["badges_awarded"] and not r2.json()["badges_awarded"], (i, r1.text, r2.text)


@pytest.mark.sqlite_too
async def test_groups_in_flight_stay_within_the_pipeline(
    app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most LAUREL_INGEST_PIPELINE shared transactions at once on PostgreSQL, one on SQLite."""
    limit = 1 if app.state.settings.database_url.startswith("sqlite") else app.state.settings.ingest_pipeline
    now = peak = 0
    real = events_service.ingest_group

    async def counting(session: Any, settings: Any, items: list[Any]) -> Any:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        try:
            await asyncio.sleep(0.01)  # hold the group open so others queue meanwhile
            return await real(session, settings, items)
        finally:
            now -= 1

    monkeypatch.setattr(events_service, "ingest_group", counting)

    async def wave(w: int) -> list[httpx.Response]:
        await asyncio.sleep(0.003 * w)  # later waves arrive while earlier groups are still open
        return await asyncio.gather(*(
            client.post("/v1/events", json=body(f"lim-{w}-{i}", f"L{w}-{i}"), headers=ADMIN) for i in range(20)
        ))

    answers = [r for rs in await asyncio.gather(*(wave(w) for w in range(6))) for r in rs]
    assert len(answers) == 120 and all(r.status_code == 200 for r in answers)
    assert peak == limit  # both pipelined (PostgreSQL), never more
