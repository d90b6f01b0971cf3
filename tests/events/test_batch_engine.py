"""Batches are evaluated set-based (one statement per table); they must agree with posting event by event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.api import ADMIN, awarded, badge, event

NOW = datetime.now(UTC).replace(microsecond=0)

BADGES: list[tuple[str, list[dict[str, Any]], int]] = [
    ("first-purchase", [{"event": "purchase", "threshold": 1}], 10),
    ("third-purchase", [{"event": "purchase", "threshold": 3}], 20),
    ("explorer", [{"event": "visit", "aggregate": "count_distinct", "field": "store_id", "threshold": 2,
                   "window": {"type": "calendar", "unit": "month"}}], 5),
    ("big-spender", [{"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 300,
                      "window": {"type": "rolling", "days": 7}}], 0),
    ("all-rounder", [{"event": "purchase", "threshold": 2}, {"event": "visit", "threshold": 2}], 5),
    ("collector", [{"event": "badge.awarded", "threshold": 3}], 50),
]


def script(member: str, prefix: str) -> list[dict[str, Any]]:
    """The same member history, under distinct ids and member ids for each way of posting it."""
    steps: list[tuple[str, dict[str, Any], int]] = [
        ("purchase", {"amount": 120, "category": "shoes"}, 50),
        ("visit", {"store_id": "S1"}, 49),
        ("visit", {"store_id": "S1"}, 48),
        ("purchase", {"amount": 90}, 47),
        ("visit", {"store_id": "S2"}, 46),
        ("purchase", {"amount": 150}, 45),
        ("comment", {}, 44),
    ]
    return [
        {"id": f"{prefix}-{member}-{i}", "user_id": f"{prefix}-{member}", "type": t,
         "occurred_at": (NOW - timedelta(minutes=m)).isoformat(), "source": "pos", "attributes": attrs}
        for i, (t, attrs, m) in enumerate(steps)
    ]


def essence(result: dict[str, Any]) -> tuple[Any, ...]:
    """What an outcome says, without ids that differ between the two runs."""
    return (
        sorted(b["key"] for b in result["badges_awarded"]),
        result["points_credited"],
        [lv["name"] for lv in result["levels_reached"]],
        [(p["badge"], p["criterion"], p["current"], p["target"]) for p in result["progress"]],
    )


async def member_state(client: httpx.AsyncClient, member: str) -> tuple[Any, ...]:
    badges = (await client.get(f"/v1/admin/users/{member}/badges", headers=ADMIN)).json()
    events = (await client.get(f"/v1/admin/users/{member}/events?include_internal=true&limit=100",
                               headers=ADMIN)).json()
    return (sorted(b["badge"] for b in badges), sorted(e["type"] for e in events["items"]))


async def balances(app: FastAPI) -> dict[str, tuple[int, int]]:
    """external id → (balance, sum of its ledger)."""
    async with app.state.db.sessionmaker() as s:
        rows = await s.execute(text(
            "SELECT u.external_id, u.points, COALESCE((SELECT sum(amount) FROM points_ledger l "
            "WHERE l.user_id = u.id), 0) FROM users u"
        ))
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}


@pytest.mark.sqlite_too
async def test_a_batch_gives_the_outcomes_of_posting_its_events_one_by_one(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    for key, criteria, points in BADGES:
        await badge(client, key, criteria, points=points)
    one_by_one = [await event_json(client, item) for m in ("A", "B") for item in script(m, "single")]
    # The batch interleaves the two members' events; each member's keep their order.
    items = [x for pair in zip(script("A", "batch"), script("B", "batch"), strict=True) for x in pair]
    r = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == len(items) and body["rejected"] == 0
    batch_by_id = {x["id"]: x["result"] for x in body["results"]}
    for single in one_by_one:
        twin = batch_by_id[single["id"].replace("single-", "batch-", 1).replace("single", "batch")]
        assert essence(twin) == essence(single), single["id"]
    assert any(essence(s)[0] for s in one_by_one)  # the script does unlock badges
    for m in ("A", "B"):
        assert await member_state(client, f"batch-{m}") == await member_state(client, f"single-{m}")
    money = await balances(app)
    assert money["batch-A"] == money["single-A"] and money["batch-A"][0] == money["batch-A"][1] > 0
    # Posting the batch again changes nothing and replays every first outcome.
    again = (await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)).json()
    assert again["duplicates"] == len(items)
    assert [essence(x["result"]) for x in again["results"]] == [essence(x["result"]) for x in body["results"]]
    assert await balances(app) == money


async def event_json(client: httpx.AsyncClient, item: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/v1/events", json=item, headers=ADMIN)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_concurrent_batches_over_the_same_members_award_and_credit_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=10)
    await badge(client, "third-purchase", [{"event": "purchase", "threshold": 3}], points=20)
    at = (NOW - timedelta(minutes=5)).isoformat()

    def batch(n: int) -> list[dict[str, Any]]:
        # Every batch repeats ids "shared-*" and adds its own; all touch the same ten members.
        shared = [{"id": f"shared-{i}", "user_id": f"C{i % 10}", "type": "purchase", "occurred_at": at,
                   "attributes": {"amount": 1}} for i in range(30)]
        own = [{"id": f"own-{n}-{i}", "user_id": f"C{(i * 7) % 10}", "type": "purchase", "occurred_at": at,
                "attributes": {"amount": 1}} for i in range(20)]
        return shared[n * 5:] + own + shared[: n * 5]

    responses = await asyncio.gather(*(
        client.post("/v1/events/batch", json={"events": batch(n)}, headers=ADMIN) for n in range(6)
    ))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    accepted = [x["id"] for r in responses for x in r.json()["results"] if x["status"] == "accepted"]
    assert sorted(accepted) == sorted({*(f"shared-{i}" for i in range(30)),
                                        *(f"own-{n}-{i}" for n in range(6) for i in range(20))})
    for m in range(10):
        held = (await client.get(f"/v1/admin/users/C{m}/badges", headers=ADMIN)).json()
        assert sorted(b["badge"] for b in held) == ["first-purchase", "third-purchase"]
    money = await balances(app)
    assert all(money[f"C{m}"] == (30, 30) for m in range(10)), money


async def test_a_nan_attribute_in_a_batch_costs_only_its_item(client: httpx.AsyncClient) -> None:
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    at = NOW.isoformat()
    # JSON's NaN is refused by validation now; the database refusing a value is the test below.
    raw = (
        '{"events": ['
        f'{{"id": "n1", "user_id": "N1", "type": "visit", "occurred_at": "{at}"}},'
        f'{{"id": "n2", "user_id": "N2", "type": "visit", "occurred_at": "{at}", "attributes": {{"x": NaN}}}},'
        f'{{"id": "n3", "user_id": "N2", "type": "visit", "occurred_at": "{at}"}}'
        "]}"
    )
    r = await client.post("/v1/events/batch", content=raw,
                          headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["error"]["code"] in ("invalid_value", "validation_error")
    assert [b["key"] for b in results[2]["result"]["badges_awarded"]] == ["first-visit"]
    history = (await client.get("/v1/admin/users/N2/events", headers=ADMIN)).json()
    assert [e["id"] for e in history["items"]] == ["n3"]
    assert (await event(client, "N1", "visit", NOW, key="n4"))["badges_awarded"] == []


async def test_batches_creating_and_locking_overlapping_members_do_not_deadlock(client: httpx.AsyncClient) -> None:
    at = (NOW - timedelta(minutes=5)).isoformat()

    def item(key: str, member: str) -> dict[str, Any]:
        return {"id": key, "user_id": member, "type": "visit", "occurred_at": at}

    for round_ in range(5):
        await client.post("/v1/events", json=item(f"seed-{round_}", f"L{round_}-1"), headers=ADMIN)
        await client.post("/v1/events", json=item(f"seed3-{round_}", f"L{round_}-3"), headers=ADMIN)
        first = [item(f"a-{round_}-{m}", f"L{round_}-{m}") for m in (1, 2, 3)]
        second = [item(f"b-{round_}-{m}", f"L{round_}-{m}") for m in (2, 3)]
        responses = await asyncio.gather(
            client.post("/v1/events/batch", json={"events": first}, headers=ADMIN),
            client.post("/v1/events/batch", json={"events": second}, headers=ADMIN),
            client.post("/v1/events", json=item(f"c-{round_}", f"L{round_}-2"), headers=ADMIN),
        )
        assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]


async def test_an_id_repeated_for_another_member_in_one_batch_belongs_to_the_first_posted(
    client: httpx.AsyncClient,
) -> None:
    at = NOW.isoformat()
    items = [
        {"id": "dup", "user_id": "ZED", "type": "visit", "occurred_at": at},  # posted first, sorts last
        {"id": "dup", "user_id": "ABE", "type": "visit", "occurred_at": at},
    ]
    results = (await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert results[1]["error"]["code"] == "idempotency_key_reused"


@pytest.mark.sqlite_too
async def test_an_item_refused_for_a_key_used_by_another_member_leaves_no_member_behind(
    client: httpx.AsyncClient,
) -> None:
    """Nothing of a refused item is applied, the member its event would have created included; a member the batch
    also gives an accepted event stays."""
    at = NOW.isoformat()
    r = await client.post("/v1/events", json={"id": "taken", "user_id": "OWNER", "type": "visit", "occurred_at": at},
                          headers=ADMIN)
    assert r.status_code == 200, r.text
    items = [
        {"id": "taken", "user_id": "GHOST-1", "type": "visit", "occurred_at": at},  # known key, another member
        {"id": "twice", "user_id": "ABE", "type": "visit", "occurred_at": at},
        {"id": "twice", "user_id": "GHOST-2", "type": "visit", "occurred_at": at},  # repeated in the batch
        {"id": "taken", "user_id": "KEPT", "type": "visit", "occurred_at": at},
        {"id": "own", "user_id": "KEPT", "type": "visit", "occurred_at": at},
    ]
    body = (await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted", "rejected", "rejected", "accepted"]
    for ghost in ("GHOST-1", "GHOST-2"):
        r = await client.get(f"/v1/admin/users/{ghost}", headers=ADMIN)
        assert r.status_code == 404, (ghost, r.text)
    for member in ("OWNER", "ABE", "KEPT"):
        assert (await client.get(f"/v1/admin/users/{member}", headers=ADMIN)).status_code == 200, member
    overview = (await client.get("/v1/admin/analytics/overview", headers=ADMIN)).json()
    assert overview["members"] == 3


@pytest.mark.sqlite_too
async def test_a_known_id_repeated_in_a_batch_answers_its_own_member_whatever_came_first(
    client: httpx.AsyncClient,
) -> None:
    """An id stored before the batch belongs to its member: each repeat in the batch answers as it would alone, its
    member's a duplicate with the first outcome even after an item of another member that was refused for it."""
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    at = NOW.isoformat()
    first = await event(client, "OWNER", "visit", at, key="known")
    items = [
        {"id": "known", "user_id": "OTHER", "type": "visit", "occurred_at": at},
        {"id": "known", "user_id": "OWNER", "type": "visit", "occurred_at": at},
    ]
    body = (await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "duplicate"], body
    assert body["results"][0]["error"]["code"] == "idempotency_key_reused"
    again = body["results"][1]["result"]
    assert (again["event_id"], awarded(again), again["points_credited"]) == (first["event_id"], ["first-visit"], 5)
    assert (await client.get("/v1/admin/users/OTHER", headers=ADMIN)).status_code == 404


POISON_DDL = {
    "postgresql": (
        "ALTER TABLE events ADD CONSTRAINT test_no_poison CHECK (attributes->>'poison' IS NULL)",
        "ALTER TABLE events DROP CONSTRAINT IF EXISTS test_no_poison",
    ),
    "sqlite": (
        "CREATE TRIGGER test_no_poison BEFORE INSERT ON events "
        "WHEN json_extract(NEW.attributes, '$.poison') IS NOT NULL BEGIN SELECT RAISE(ABORT, 'poison'); END",
        "DROP TRIGGER IF EXISTS test_no_poison",
    ),
}


@pytest.mark.sqlite_too
async def test_a_value_only_the_database_refuses_costs_its_item_and_creates_no_member(
    client: httpx.AsyncClient, app: FastAPI, backend: str
) -> None:
    # Validation cannot foresee every refusal (a constraint added by an operator, say): the set-based attempt is
    # undone and the batch evaluated again item by item, so only the refused item is rejected.
    add, drop = POISON_DDL[backend]
    async with app.state.db.sessionmaker() as s, s.begin():
        await s.execute(text(add))
    try:
        await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
        items = [
            {"id": f"p-{i}", "user_id": f"P{i}", "type": "visit", "occurred_at": NOW.isoformat(),
             "attributes": {"poison": True} if i == 1 else {}}
            for i in range(3)
        ]
        r = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["status"] for x in body["results"]] == ["accepted", "rejected", "accepted"]
        assert body["results"][1]["error"]["code"] == "invalid_value"
        assert [len(x["result"]["badges_awarded"]) for x in (body["results"][0], body["results"][2])] == [1, 1]
        async with app.state.db.sessionmaker() as s:
            keys = (await s.execute(text("SELECT idempotency_key FROM events WHERE source <> 'laurel' "
                                         "ORDER BY idempotency_key"))).scalars().all()
            ledger = (await s.execute(text("SELECT count(*) FROM points_ledger"))).scalar_one()
        assert list(keys) == ["p-0", "p-2"] and ledger == 2
        me = await client.get("/v1/admin/users/P1/events", headers=ADMIN)
        assert me.status_code == 404, me.text  # not even the member its event would have created
        # On this path too, an id repeated for another member belongs to the item posted first.
        repeated = [
            {"id": "dup", "user_id": "Z1", "type": "visit", "occurred_at": NOW.isoformat()},
            {"id": "dup", "user_id": "A1", "type": "visit", "occurred_at": NOW.isoformat()},
            {"id": "bad", "user_id": "A2", "type": "visit", "occurred_at": NOW.isoformat(),
             "attributes": {"poison": 1}},
        ]
        r = await client.post("/v1/events/batch", json={"events": repeated}, headers=ADMIN)
        results = r.json()["results"]
        assert [x["status"] for x in results] == ["accepted", "rejected", "rejected"], r.text
        assert results[1]["error"]["code"] == "idempotency_key_reused"
    finally:
        async with app.state.db.sessionmaker() as s, s.begin():
            await s.execute(text(drop))
