"""Webhook endpoints: full CRUD (PUT replaces) and only known event kinds."""

from __future__ import annotations

import httpx

from tests.api import ADMIN


async def test_put_replaces_an_endpoint_and_keeps_its_secret(client: httpx.AsyncClient) -> None:
    body = {"url": "https://crm.example/hooks", "events": ["badge.awarded"], "secret": "s3cr3t-s3cr3t-s3cr3t"}
    created = (await client.post("/v1/admin/webhooks", json=body, headers=ADMIN)).json()
    new = {"url": "https://crm.example/v2", "events": ["level.reached", "points.credited"], "enabled": False}
    r = await client.put(f"/v1/admin/webhooks/{created['id']}", json=new, headers=ADMIN)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["url"], out["events"], out["enabled"]) == (new["url"], sorted(new["events"]), False)
    assert out["secret_hint"] == created["secret_hint"]
    assert (await client.put("/v1/admin/webhooks/999999", json=new, headers=ADMIN)).status_code == 404


async def test_unknown_event_kinds_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/admin/webhooks", json={"url": "https://x.example/h", "events": ["bogus.kind"]},
                          headers=ADMIN)
    assert r.status_code == 422
    ok = await client.post("/v1/admin/webhooks", json={"url": "https://x.example/h", "events": ["*"]}, headers=ADMIN)
    assert ok.status_code == 201


async def test_event_kinds_may_be_sent_as_event_kinds(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/admin/webhooks", json={"url": "https://x.example/h", "event_kinds": ["level.reached"]},
                          headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["events"] == ["level.reached"]


async def test_any_non_empty_secret_is_accepted_and_not_given_away(client: httpx.AsyncClient) -> None:
    body = {"url": "https://crm.example/hooks", "events": ["badge.awarded"], "secret": "secret"}
    r = await client.post("/v1/admin/webhooks", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["secret"] == "secret" and r.json()["secret_hint"] == "t"
    r = await client.patch(f"/v1/admin/webhooks/{r.json()['id']}", json={"secret": "k"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["secret_hint"] == ""
    assert (await client.post("/v1/admin/webhooks", json={**body, "secret": ""}, headers=ADMIN)).status_code == 422


async def test_a_patch_that_nulls_a_required_field_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/admin/webhooks", json={"url": "https://crm.example/h", "events": ["*"]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    for field in ("url", "events", "enabled", "secret", "description"):
        bad = await client.patch(f"/v1/admin/webhooks/{r.json()['id']}", json={field: None}, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == f"body.{field}", bad.text
