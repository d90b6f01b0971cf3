"""Odd but possible input is a 4xx with the JSON error shape, never a 500, and never half-applied."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api import ADMIN

NOW = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/users/M-2", {"nickname": "a\x00b"}),
        ("PUT", "/v1/users/M-1/friends", {"friends": ["a\x00b"]}),
        ("POST", "/v1/events", {"id": "e", "user_id": "M", "type": "visit", "occurred_at": NOW,
                                "attributes": {"store_id": "店\x00铺"}}),
        ("POST", "/v1/admin/badges", {"key": "b", "name": "x\x00", "criteria": [{"event": "visit", "threshold": 1}]}),
        ("POST", "/v1/admin/api-keys", {"name": "n\x00", "scopes": ["admin"]}),
        ("POST", "/v1/events", {"id": "e", "user_id": "M", "type": "visit",
                                "occurred_at": "0001-01-01T00:00:00+14:00"}),
        ("POST", "/v1/admin/badges", {"key": "s", "name": "S", "criteria": [{"event": "visit", "threshold": 1}],
                                      "visibility": "seasonal", "available_from": "2026-01-01T00:00:00+08:00",
                                      "available_until": "9999-12-31T23:59:59-12:00"}),
    ],
)
async def test_nul_characters_and_extreme_dates_are_422(client: httpx.AsyncClient, method: str, path: str,
                                                        body: dict[str, Any]) -> None:
    r = await client.request(method, path, json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in ("validation_error", "invalid_value")


async def test_infinite_amount_is_422(client: httpx.AsyncClient) -> None:
    raw = '{"id": "inf", "user_id": "M", "type": "purchase", "occurred_at": "' + NOW + '", '
    raw += '"attributes": {"amount": Infinity}}'
    r = await client.post("/v1/events", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("path", ["/v1/admin/api-keys/99999999999999999999", "/v1/leaderboards/x?city=%00"])
async def test_out_of_range_ids_and_nul_queries_are_4xx(client: httpx.AsyncClient, login: Any, path: str) -> None:
    headers = ADMIN if "admin" in path else await login()
    r = await client.delete(path, headers=headers) if "api-keys" in path else await client.get(path, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    assert "error" in r.json()


async def test_a_bad_item_in_a_batch_does_not_block_the_others(client: httpx.AsyncClient) -> None:
    items = [
        {"id": "ok-1", "user_id": "B1", "type": "visit", "occurred_at": NOW},
        {"id": "bad", "user_id": "B2", "type": "visit", "occurred_at": NOW, "attributes": {"note": "x\x00"}},
        {"id": "ok-2", "user_id": "B2", "type": "visit", "occurred_at": NOW},
    ]
    r = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "rejected", "accepted"]
    assert (await client.get("/v1/admin/users/B2/events", headers=ADMIN)).json()["total"] == 1


LONE = "\\ud800"  # an unpaired surrogate, as JSON escapes it: Python's parser accepts it, UTF-8 cannot carry it


def with_lone_surrogate(body: Any) -> str:
    """The body as JSON text, with each "@" turned into an unpaired surrogate."""
    return json.dumps(body).replace("@", LONE)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/events", {"id": "s1", "user_id": "M", "type": "visit", "occurred_at": NOW,
                        "attributes": {"note": "a@b"}}),
        ("/v1/admin/badges", {"key": "sur", "name": "x@", "criteria": [{"event": "visit", "threshold": 1}]}),
        ("/v1/admin/badges", {"key": "sur", "name": "x", "criteria": [{"event": "visit", "threshold": 1}],
                              "translations": {"zh-CN": {"na@me": "x"}}}),
        ("/v1/events/batch", {"events": [], "x@": 1}),
    ],
)
async def test_unpaired_surrogates_are_422_not_500(client: httpx.AsyncClient, path: str, body: Any) -> None:
    raw = with_lone_surrogate(body)
    r = await client.post(path, content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_a_batch_item_with_an_unpaired_surrogate_is_refused_alone_and_named(client: httpx.AsyncClient) -> None:
    raw = with_lone_surrogate({"events": [
        {"id": "ok-s", "user_id": "S1", "type": "visit", "occurred_at": NOW},
        {"id": "bad-@", "user_id": "S1", "type": "visit", "occurred_at": NOW},
    ]})
    r = await client.post("/v1/events/batch", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 200, r.text
    ok, bad = r.json()["results"]
    assert ok["status"] == "accepted"
    assert bad["status"] == "rejected" and bad["id"] == "bad-\ufffd"
    assert "unpaired surrogate" in bad["error"]["details"][0]["message"]
    assert bad["error"]["details"][0]["field"] == "id"
    assert (await client.get("/v1/admin/users/S1/events", headers=ADMIN)).json()["total"] == 1


async def test_a_nul_deep_in_a_body_is_named_by_its_field(client: httpx.AsyncClient) -> None:
    body = {"key": "nul", "name": "x", "criteria": [{"event": "visit", "threshold": 1}],
            "translations": {"zh-CN": {"name": "a\x00"}}}
    r = await client.post("/v1/admin/badges", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "body.translations.zh-CN.name"


async def test_nan_or_infinity_anywhere_in_attributes_is_refused_up_front(client: httpx.AsyncClient) -> None:
    raw = '{"id": "nan-1", "user_id": "N1", "type": "visit", "occurred_at": "' + NOW + '", '
    raw += '"attributes": {"note": {"x": NaN}}}'
    r = await client.post("/v1/events", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    batch = '{"events": [' + raw + ', {"id": "ok-n", "user_id": "N1", "type": "visit", "occurred_at": "' + NOW + '"}]}'
    r = await client.post("/v1/events/batch", content=batch, headers={**ADMIN, "content-type": "application/json"})
    assert [x["status"] for x in r.json()["results"]] == ["rejected", "accepted"]
    assert "NaN or Infinity" in r.json()["results"][0]["error"]["details"][0]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/admin/badges", {"key": "b", "name": "B", "criteria": [{"event": "visit", "threshold": 1}],
                                      "repeatable": "yes"}, "body.repeatable"),
        ("POST", "/v1/admin/leaderboards", {"key": "lb", "name": "LB", "period": "weekly",
                                            "metric": {"type": "points"}, "display": {"nickname": "yes"}},
         "body.display.nickname"),
        ("POST", "/v1/admin/webhooks", {"url": "https://example.com/h", "events": ["badge.awarded"],
                                        "enabled": 1}, "body.enabled"),
    ],
)
async def test_a_string_or_number_for_a_flag_is_422_not_read_as_true(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    r = await client.request(method, path, json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/admin/badges", '{"key": "nb", "name": "N", "criteria": [{"event": "visit", "threshold": 1, '
                             '"where": [{"field": "c", "op": "eq", "value": @}]}]}'),
        ("/v1/admin/badges", '{"key": "nb", "name": "N", "criteria": [{"event": "visit", "threshold": 1, '
                             '"where": [{"field": "c", "op": "in", "value": ["a", @]}]}]}'),
        ("/v1/admin/leaderboards", '{"key": "lb", "title": "T", "period": "weekly", "metric": {"type": "sum", '
                                   '"event": "purchase", "field": "amount", '
                                   '"where": [{"field": "category", "op": "ne", "value": @}]}}'),
    ],
)
async def test_a_non_finite_number_in_a_condition_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, path: str, body: str, number: str
) -> None:
    r = await client.post(path, content=body.replace("@", number),
                          headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(d["field"].endswith("value") for d in r.json()["error"]["details"])
    assert (await client.get(path, headers=ADMIN)).json() == []


@pytest.mark.sqlite_too
async def test_a_stored_rule_that_no_longer_validates_stops_only_its_own_badge(
    app: Any, client: httpx.AsyncClient, login: Any
) -> None:
    from sqlalchemy import text

    from app.kit.cache import DefinitionCache

    for key in ("broken", "first-visit"):
        r = await client.post("/v1/admin/badges", json={"key": key, "name": key,
                                                        "criteria": [{"event": "visit", "threshold": 1}]},
                              headers=ADMIN)
        assert r.status_code == 201, r.text
    bad = '[{"event": "visit", "threshold": 1, "where": [{"field": "c", "op": "eq", "value": null}]}]'
    async with app.state.db.sessionmaker() as s, s.begin():  # a row written before a stricter check
        await s.execute(text("UPDATE badges SET criteria = :c WHERE key = 'broken'"), {"c": bad})
    DefinitionCache.invalidate_all()
    await client.put("/v1/users/SR-1", json={"openid": "o-sr-1"}, headers=ADMIN)
    r = await client.post("/v1/events", json={"id": "sr-1", "user_id": "SR-1", "type": "visit", "occurred_at": NOW},
                          headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [b["key"] for b in r.json()["badges_awarded"]] == ["first-visit"]
    mine = await client.get("/v1/me/badges", headers=await login(openid="o-sr-1"))
    assert mine.status_code == 200, mine.text
    assert {b["key"] for b in mine.json()} == {"broken", "first-visit"}


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"name": "\xff\xfe"}'])
async def test_a_body_that_cannot_be_parsed_is_400_invalid_body(client: httpx.AsyncClient, raw: bytes) -> None:
    # Nested beyond the JSON parser's recursion limit, or not UTF-8: no field to name, so not a 422.
    r = await client.post("/v1/admin/badges", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_body"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/leaderboards", {"key": "lb", "title": "T", "period": "weekly", "metric": {"type": "points"},
                                    "min_group_size": True}, "body.min_group_size"),
        ("/v1/admin/challenges", {"key": "ch", "title": "C", "steps": [{"title": "S", "criterion": {
            "event": "visit", "threshold": 1}}], "rewards": {"bonus_points": True}}, "body.rewards.bonus_points"),
    ],
)
async def test_a_boolean_for_a_number_is_422_not_read_as_one(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    r = await client.post(path, json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]]
    assert (await client.get(f"{path}/{body['key']}", headers=ADMIN)).status_code == 404


async def test_a_boolean_in_a_list_of_ids_is_422_not_read_as_id_one(client: httpx.AsyncClient, login: Any) -> None:
    me = await login(openid="o-bool-ids")
    r = await client.post("/v1/me/notifications/read", json={"ids": [2, True]}, headers=me)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "body.ids"
