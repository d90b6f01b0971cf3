"""The lean path for POST /v1/events answers the ordinary case itself and leaves everything else to FastAPI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth.deps import EventsKey
from app.errors import Unauthorized
from app.events import fastpath
from tests.api import ADMIN, badge

AT = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def body(key: str, member: str = "F1", **attributes: Any) -> dict[str, Any]:
    return {"id": key, "user_id": member, "type": "purchase", "occurred_at": AT, "attributes": attributes}


async def full_path(client: httpx.AsyncClient, payload: Any, headers: dict[str, str]) -> httpx.Response:
    """A `+json` media type: FastAPI reads the body as JSON, the lean path leaves such a request alone."""
    headers = {**headers, "Content-Type": "application/vnd.laurel+json"}
    return await client.post("/v1/events", content=json.dumps(payload).encode(), headers=headers)


def without_ids(value: Any) -> Any:
    """The outcome without what differs between two members' events (ids of the event, member and rows)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "id" and not k.endswith("_id")}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


@pytest.fixture
def endpoint_refuses(app: FastAPI) -> Any:
    """FastAPI's route refuses every caller, so a 200 can only come from the lean path."""

    async def refuse() -> None:
        raise Unauthorized("the FastAPI route was used", code="route_used")

    app.dependency_overrides[EventsKey.__metadata__[0].dependency] = refuse
    yield
    app.dependency_overrides.clear()


@pytest.mark.sqlite_too
async def test_valid_event_is_served_by_the_lean_path(client: httpx.AsyncClient, endpoint_refuses: Any) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=5)
    r = await client.post("/v1/events", json=body("lean-1", amount=10), headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["points_credited"] == 5 and r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"]  # the request context still wraps it
    routed = await full_path(client, body("lean-2"), ADMIN)
    assert routed.status_code == 401 and routed.json()["error"]["code"] == "route_used"


@pytest.mark.sqlite_too
async def test_lean_and_full_path_give_the_same_answer(client: httpx.AsyncClient) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=5)
    await badge(client, "tenth-order", [{"event": "purchase", "threshold": 10}])
    lean = await client.post("/v1/events", json=body("same-1", "A", amount=10), headers=ADMIN)
    full = await full_path(client, body("same-2", "B", amount=10), ADMIN)
    assert lean.status_code == full.status_code == 200
    a, b = without_ids(lean.json()), without_ids(full.json())
    assert a == b and a["badges_awarded"] and a["progress"]
    # A replay through either path returns the first outcome.
    again = await full_path(client, body("same-1", "A", amount=10), ADMIN)
    assert again.json()["duplicate"] is True and again.json()["event_id"] == lean.json()["event_id"]


async def test_refusals_come_from_the_full_app(client: httpx.AsyncClient, make_key: Any) -> None:
    reader = await make_key("analytics:read")
    writer = await make_key("events:write")
    missing = await client.post("/v1/events", json=body("r-1"))
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_credentials"
    wrong = await client.post("/v1/events", json=body("r-1"), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    scope = await client.post("/v1/events", json=body("r-1"), headers=reader)
    assert scope.status_code == 403 and scope.json()["error"]["code"] == "insufficient_scope"
    bad = await client.post("/v1/events", json={**body("r-1"), "occurred_at": "2026-11-23T10:15:00"}, headers=writer)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"].endswith("occurred_at")
    garbled = await client.post(
        "/v1/events", content=b"{not json", headers={**writer, "Content-Type": "application/json"}
    )
    assert garbled.status_code == 422
    ok = await client.post("/v1/events", json=body("r-1"), headers=writer)  # a stored key with the scope
    assert ok.status_code == 200, ok.text
    reused = await client.post("/v1/events", json=body("r-1", "SOMEONE-ELSE"), headers=writer)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.sqlite_too
async def test_one_request_context_whichever_path_answers(client: httpx.AsyncClient) -> None:
    """The lean path enters in front of the framework; a request it hands on is not given a second request id."""
    traced = {"X-Request-ID": "trace-123"}
    refused = await client.post("/v1/events", json=body("ctx-1"), headers=traced)
    served = await client.post("/v1/events", json=body("ctx-2"), headers={**ADMIN, **traced})
    other = await client.get("/healthz", headers=traced)
    for r, status in ((refused, 401), (served, 200), (other, 200)):
        assert r.status_code == status
        assert r.headers.get_list("x-request-id") == ["trace-123"]
    fresh = await client.post("/v1/events", json=body("ctx-3"))
    assert len(fresh.headers.get_list("x-request-id")) == 1 and len(fresh.headers["x-request-id"]) == 32


async def test_a_failure_on_the_lean_path_is_the_apis_json_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lean path sits in front of FastAPI's error middleware, so it brings its own."""

    async def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fastpath, "_ingest", broken)
    r = await client.post("/v1/events", json=body("boom-1"), headers={**ADMIN, "X-Request-ID": "trace-500"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "internal_error" and r.headers["x-request-id"] == "trace-500"


async def test_revoked_key_stops_at_once_on_the_lean_path(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    made = (await client.post("/v1/admin/api-keys", json={"name": "pos", "scopes": ["events:write"]},
                              headers=admin_headers)).json()
    key = {"Authorization": f"Bearer {made['key']}"}
    assert (await client.post("/v1/events", json=body("k-1"), headers=key)).status_code == 200
    assert (await client.delete(f"/v1/admin/api-keys/{made['id']}", headers=admin_headers)).status_code in (200, 204)
    r = await client.post("/v1/events", json=body("k-2"), headers=key)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.sqlite_too
async def test_each_callers_key_is_checked_inside_a_shared_group(
    client: httpx.AsyncClient, admin_headers: dict[str, str], make_key: Any, groups: list[int]
) -> None:
    writer = await make_key("events:write")
    reader = await make_key("analytics:read")
    made = (await client.post("/v1/admin/api-keys", json={"name": "old", "scopes": ["events:write"]},
                              headers=admin_headers)).json()
    await client.delete(f"/v1/admin/api-keys/{made['id']}", headers=admin_headers)
    revoked = {"Authorization": f"Bearer {made['key']}"}
    callers = [writer, reader, revoked, admin_headers]
    posts = [client.post("/v1/events", json=body(f"mix-{i}", "MIX"), headers=callers[i % 4]) for i in range(40)]
    answers = await asyncio.gather(*posts)
    assert max(groups) > 1  # the callers did share transactions
    codes = [(r.status_code, r.json().get("error", {}).get("code")) for r in answers]
    assert codes == [(200, None), (403, "insufficient_scope"), (401, "invalid_api_key"), (200, None)] * 10
    history = (await client.get("/v1/admin/users/MIX/events?limit=100", headers=admin_headers)).json()
    assert sorted(e["id"] for e in history["items"]) == sorted(f"mix-{i}" for i in range(40) if i % 4 in (0, 3))


@pytest.mark.sqlite_too
async def test_a_stored_keys_use_is_recorded_about_once_a_minute(
    client: httpx.AsyncClient, admin_headers: dict[str, str], groups: list[int]
) -> None:
    made = (await client.post("/v1/admin/api-keys", json={"name": "pos", "scopes": ["events:write"]},
                              headers=admin_headers)).json()
    key = {"Authorization": f"Bearer {made['key']}"}

    async def last_used() -> str | None:
        listed = (await client.get("/v1/admin/api-keys", headers=admin_headers)).json()
        return next(k["last_used_at"] for k in listed if k["id"] == made["id"])

    assert await last_used() is None
    answers = await asyncio.gather(*(client.post("/v1/events", json=body(f"use-{i}", f"U{i}"), headers=key)
                                     for i in range(12)))
    assert [r.status_code for r in answers] == [200] * 12 and max(groups) > 1
    first = await last_used()
    assert first is not None
    assert (await client.post("/v1/events", json=body("use-x"), headers=key)).status_code == 200
    assert await last_used() == first  # throttled: no write per call


async def test_oversized_event_is_413_before_anything_is_read(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:  # no Content-Length: the cap is enforced while the body streams in
        yield b'{"id": "big", "user_id": "B", "type": "purchase", "attributes": {"x": "'
        for _ in range(30):
            yield b"x" * 100_000
        yield b'"}}'

    r = await client.post("/v1/events", content=chunks(), headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert (await client.get("/v1/admin/users/B/events", headers=ADMIN)).status_code == 404


async def test_stored_key_is_served_by_the_lean_path_beside_forged_ones(
    client: httpx.AsyncClient, make_key: Any, endpoint_refuses: Any, groups: list[int]
) -> None:
    """A forged token sharing a real key's prefix, in the same group, neither passes nor spoils the real one."""
    writer = await make_key("events:write")
    real = writer["Authorization"]
    forged = {"Authorization": real[: real.rindex("_") + 1] + "forged"}
    spaced = {"Authorization": real.replace("Bearer ", "Bearer  ") + " "}  # as HTTPBearer reads it: stripped
    callers = [writer, forged, spaced]
    answers = await asyncio.gather(*(
        client.post("/v1/events", json=body(f"p-{i}", "PFX"), headers=callers[i % 3]) for i in range(30)
    ))
    assert max(groups) > 1
    for i, r in enumerate(answers):
        if i % 3 == 1:  # refused by the group's key check, then by the (refusing) FastAPI route
            assert r.status_code == 401, r.text
        else:
            assert r.status_code == 200, r.text


async def test_member_token_and_hostile_bodies_get_the_full_apps_answers(
    client: httpx.AsyncClient, make_key: Any, login: Any
) -> None:
    member = await login()
    r = await client.post("/v1/events", json=body("jwt-1"), headers=member)
    assert r.status_code == 403 and r.json()["error"]["code"] == "api_key_required"
    writer = await make_key("events:write")
    forged = {"Authorization": writer["Authorization"][:-4] + "nope"}
    deep = '{"id": "d", "user_id": "D", "type": "purchase", "occurred_at": "' + AT + '", "attributes": {"a": '
    for depth in (50, 2_000, 100_000):
        payload = deep + "[" * depth + "]" * depth + "}}"
        for who in (writer, forged):
            r = await client.post("/v1/events", content=payload, headers={**who, "Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, (depth, r.status_code, r.text[:200])
            if who is forged:
                assert r.status_code in (400, 401)
    r = await client.post("/v1/events", content=deep + "[" * 50 + "]" * 50 + "}}",
                          headers={**writer, "Content-Type": "application/json"})
    assert r.status_code == 422 and "nested" in r.text
