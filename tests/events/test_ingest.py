"""Ingestion: validation, idempotency, batches and history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api import ADMIN, awarded, badge, event, post_event

NOW = datetime.now(UTC)


@pytest.mark.sqlite_too
async def test_same_id_twice_returns_first_outcome_and_changes_nothing(client: httpx.AsyncClient) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "aggregate": "count", "threshold": 1}], points=10)
    first = await event(client, "M1", "purchase", NOW, key="pos-1", amount=10)
    assert first["duplicate"] is False and awarded(first) == ["first-purchase"]
    assert first["points_credited"] == 10
    again = await event(client, "M1", "purchase", NOW, key="pos-1", amount=10)
    assert again["duplicate"] is True and again["status"] == "duplicate"
    assert awarded(again) == ["first-purchase"]  # the first outcome, replayed
    assert again["event_id"] == first["event_id"]
    history = (await client.get("/v1/admin/users/M1/events", headers=ADMIN)).json()
    assert [e["id"] for e in history["items"]] == ["pos-1"]
    internal = (await client.get("/v1/admin/users/M1/events?include_internal=true", headers=ADMIN)).json()
    assert internal["total"] == 3  # the purchase, badge.awarded and level.reached (Starter, 10 points)
    ledger = await client.get("/v1/admin/users/M1/badges", headers=ADMIN)
    assert len(ledger.json()) == 1


async def test_unknown_member_is_created_on_first_event(client: httpx.AsyncClient) -> None:
    out = await event(client, "NEW-1", "visit", NOW, store_id="S1")
    assert out["user_id"] == "NEW-1"
    r = await client.get("/v1/admin/users/NEW-1/events", headers=ADMIN)
    assert r.json()["items"][0]["type"] == "visit"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("type"), "type"),
        (lambda b: b.update(type="Purchase!"), "type"),
        (lambda b: b["attributes"].update(amount="lots"), "attributes.amount"),
        (lambda b: b.update(occurred_at="2026-11-23T10:15:00"), "occurred_at"),
        (lambda b: b.update(occurred_at=(NOW + timedelta(minutes=10)).isoformat()), "occurred_at"),
        (lambda b: b.update(occurred_at=int(NOW.timestamp())), "occurred_at"),
        (lambda b: b.update(occurred_at=NOW.timestamp()), "occurred_at"),
        (lambda b: b.update(occurred_at=str(int(NOW.timestamp()))), "occurred_at"),
        (lambda b: b["attributes"].update(blob="x" * 5000), "attributes"),
        (lambda b: b["attributes"].update(deep={"a": {"b": {"c": {"d": {"e": 1}}}}}), "attributes"),
        (lambda b: b.update(type="badge.awarded"), "type"),
        (lambda b: b.update(surprise=1), "surprise"),
    ],
    ids=[
        "missing-type",
        "bad-type",
        "non-numeric-amount",
        "no-offset",
        "future",
        "epoch-number",
        "epoch-float",
        "epoch-string",
        "too-big",
        "too-deep",
        "reserved",
        "unknown-field",
    ],
)
async def test_bad_input_is_422_naming_the_field(client: httpx.AsyncClient, mutate: Any, field: str) -> None:
    body: dict[str, Any] = {
        "id": "e1",
        "user_id": "M1",
        "type": "purchase",
        "occurred_at": NOW.isoformat(),
        "source": "pos",
        "attributes": {"amount": 1},
    }
    mutate(body)
    r = await client.post("/v1/events", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert any(d["field"].endswith(field) for d in err["details"]), err
    assert (await client.get("/v1/admin/users/M1/events", headers=ADMIN)).status_code == 404  # nothing applied


@pytest.mark.sqlite_too
async def test_source_in_any_case_is_stored_lower_cased(client: httpx.AsyncClient) -> None:
    out = await event(client, "SRC1", "visit", NOW, key="src-1", source="POS")
    assert out["status"] == "accepted"
    await event(client, "SRC1", "visit", NOW, key="src-2", source="WeChat")
    items = (await client.get("/v1/admin/users/SRC1/events", headers=ADMIN)).json()["items"]
    assert sorted(e["source"] for e in items) == ["pos", "wechat"]
    batch = await client.post("/v1/events/batch", headers=ADMIN, json=[
        {"id": "src-3", "user_id": "SRC1", "type": "visit", "occurred_at": NOW.isoformat(), "source": "CRM"}])
    assert batch.json()["results"][0]["status"] == "accepted"
    items = (await client.get("/v1/admin/users/SRC1/events", headers=ADMIN)).json()["items"]
    assert {e["id"]: e["source"] for e in items} == {"src-1": "pos", "src-2": "wechat", "src-3": "crm"}


async def test_event_id_reused_for_another_member_is_409(client: httpx.AsyncClient) -> None:
    await event(client, "A", "visit", NOW, key="k1")
    r = await post_event(client, "B", "visit", NOW, key="k1")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_key_reused"


async def test_ingest_needs_events_scope(client: httpx.AsyncClient, make_key: Any, login: Any) -> None:
    body = {"id": "x", "user_id": "M", "type": "visit", "occurred_at": NOW.isoformat()}
    assert (await client.post("/v1/events", json=body)).status_code == 401
    assert (await client.post("/v1/events", json=body, headers=await make_key("users:write"))).status_code == 403
    assert (await client.post("/v1/events", json=body, headers=await login())).status_code in (401, 403)
    assert (await client.post("/v1/events", json=body, headers=await make_key("events:write"))).status_code == 200


@pytest.mark.sqlite_too
async def test_batch_reports_each_item_and_bad_items_apply_nothing(client: httpx.AsyncClient) -> None:
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    items = [
        {"id": "b1", "user_id": "M1", "type": "visit", "occurred_at": NOW.isoformat(), "attributes": {}},
        {"id": "b2", "user_id": "M2", "type": "visit", "occurred_at": "yesterday"},
        {"id": "b1", "user_id": "M1", "type": "visit", "occurred_at": NOW.isoformat(), "attributes": {}},
        {"id": "b3", "user_id": "M2", "type": "visit", "occurred_at": NOW.isoformat(), "attributes": {}},
    ]
    r = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["accepted", "rejected", "duplicate", "accepted"]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    assert body["results"][1]["error"]["details"][0]["field"] == "occurred_at"
    assert awarded(body["results"][0]["result"]) == ["first-visit"]
    assert awarded(body["results"][3]["result"]) == ["first-visit"]


async def test_batch_over_1000_items_is_422(client: httpx.AsyncClient) -> None:
    items = [{"id": str(i), "user_id": "M", "type": "visit", "occurred_at": NOW.isoformat()} for i in range(1001)]
    r = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
    assert r.status_code == 422
    assert (await client.post("/v1/events/batch", json=items, headers=ADMIN)).status_code == 422


@pytest.mark.sqlite_too
async def test_batch_accepts_a_bare_array_of_events(client: httpx.AsyncClient) -> None:
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    items = [{"id": f"bare-{i}", "user_id": f"BA{i}", "type": "visit", "occurred_at": NOW.isoformat()}
             for i in range(3)]
    r = await client.post("/v1/events/batch", json=items, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 3
    assert all(awarded(x["result"]) == ["first-visit"] for x in r.json()["results"])
    again = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
    assert [x["status"] for x in again.json()["results"]] == ["duplicate"] * 3


@pytest.mark.sqlite_too
@pytest.mark.parametrize("wrapped", [True, False])
async def test_batch_item_that_is_not_an_object_is_rejected_alone(client: httpx.AsyncClient, wrapped: bool) -> None:
    good = {"id": f"ok-{wrapped}", "user_id": "NO1", "type": "visit", "occurred_at": NOW.isoformat()}
    items: list[Any] = [1, good, None, "x", [good]]
    r = await client.post("/v1/events/batch", json={"events": items} if wrapped else items, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["rejected", "accepted", "rejected", "rejected", "rejected"]
    assert (body["accepted"], body["rejected"]) == (1, 4)
    first = body["results"][0]
    assert first["index"] == 0 and first["id"] is None
    assert first["error"]["code"] == "validation_error"
    assert "must be a JSON object" in first["error"]["details"][0]["message"]
    history = (await client.get("/v1/admin/users/NO1/events", headers=ADMIN)).json()
    assert [e["id"] for e in history["items"]] == [f"ok-{wrapped}"]


@pytest.mark.parametrize("body", ["x", 5, None, {}, {"events": "x"}, {"events": []}, []])
async def test_batch_that_is_not_a_list_of_events_is_422(client: httpx.AsyncClient, body: Any) -> None:
    r = await client.post("/v1/events/batch", content=json.dumps(body),
                          headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_history_is_paginated_newest_first(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await event(client, "H", "visit", NOW - timedelta(hours=5 - i), key=f"h{i}", n=i)
    page = (await client.get("/v1/admin/users/H/events?limit=2&offset=1", headers=ADMIN)).json()
    assert page["total"] == 5
    assert [e["id"] for e in page["items"]] == ["h3", "h2"]
    assert page["items"][0]["received_at"] and page["items"][0]["source"] == "pos"


async def test_batch_item_failing_inside_the_engine_leaves_the_rest_working(client: httpx.AsyncClient) -> None:
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    at = NOW.isoformat()
    items = [
        {"id": "x1", "user_id": "A", "type": "visit", "occurred_at": at},
        {"id": "x1", "user_id": "B", "type": "visit", "occurred_at": at},  # id reused for another member
        {"id": "x2", "user_id": "B", "type": "visit", "occurred_at": at},
        {"id": "x3", "user_id": "A", "type": "visit", "occurred_at": at},
    ]
    r = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "rejected", "accepted", "accepted"]
    assert results[1]["error"]["code"] == "idempotency_key_reused"
    assert awarded(results[2]["result"]) == ["first-visit"]
    assert results[3]["result"]["points_credited"] == 0


@pytest.mark.parametrize("source", ["laurel", "LAUREL"])
async def test_laurels_own_source_is_refused(client: httpx.AsyncClient, source: str) -> None:
    # Laurel's award and level events are told apart by their source; a posted event under it would vanish from
    # the member's history and from analytics.
    body = {"id": "s-1", "user_id": "R1", "type": "visit", "occurred_at": NOW.isoformat(), "source": source}
    r = await client.post("/v1/events", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"].endswith("source")
    batch = await client.post("/v1/events/batch", json={"events": [body]}, headers=ADMIN)
    assert batch.json()["results"][0]["status"] == "rejected"


async def test_ids_in_laurels_own_namespace_are_refused(client: httpx.AsyncClient) -> None:
    # Award and level events are recorded as "laurel:…"; a posted id there could take one of theirs.
    body = {"id": "laurel:level.reached:1:3", "user_id": "R1", "type": "visit", "occurred_at": NOW.isoformat()}
    r = await client.post("/v1/events", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"].endswith("id")
    batch = await client.post("/v1/events/batch", json={"events": [body]}, headers=ADMIN)
    assert batch.json()["results"][0]["status"] == "rejected"


@pytest.mark.sqlite_too
async def test_an_event_reports_only_the_progress_it_moved(client: httpx.AsyncClient) -> None:
    """A visit with no store, or to a store already counted this month, moves no distinct-store count: the
    response lists progress the event moved, not every badge its type can touch."""
    await badge(client, "store-explorer", [{"event": "visit", "aggregate": "count_distinct", "field": "store_id",
                                            "threshold": 3, "window": {"type": "calendar", "unit": "month"}}])
    at = NOW - timedelta(minutes=5)

    def moved(outcome: dict[str, Any]) -> list[tuple[str, int]]:
        return [(p["badge"], p["current"]) for p in outcome["progress"]]

    assert moved(await event(client, "PM", "visit", at, store_id="SH-1")) == [("store-explorer", 1)]
    assert moved(await event(client, "PM", "visit", at)) == []
    assert moved(await event(client, "PM", "visit", at, store_id="SH-1")) == []
    assert moved(await event(client, "PM", "visit", at, store_id="SH-2")) == [("store-explorer", 2)]
