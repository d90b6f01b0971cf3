"""An admin app edits what it fetched: every definition's GET body can be PUT back as it is, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api import ADMIN, badge
from tests.challenges.conftest import step
from tests.leaderboards.helpers import make_board

pytestmark = pytest.mark.sqlite_too

STAMPS = {"updated_at"}  # a PUT may touch these; everything else must read back the same


async def _setup(client: httpx.AsyncClient) -> list[str]:
    await badge(client, "store-explorer", [{"event": "visit", "threshold": 3}], points=20,
                translations={"zh-CN": {"name": "探店达人"}})
    r = await client.post("/v1/admin/challenges", headers=ADMIN, json={
        "key": "spring", "title": "Spring", "steps": [step("Visit", "visit")], "status": "published"})
    assert r.status_code == 201, r.text
    await make_board(client, ADMIN, "spend")
    r = await client.post("/v1/admin/vouchers", headers=ADMIN, json={
        "key": "coffee", "name": "Free coffee", "description": "Any size", "face_value": 25.5, "validity_days": 30})
    assert r.status_code == 201, r.text
    r = await client.put("/v1/admin/notification-templates/badge_unlocked", headers=ADMIN, json={
        "template_id": "tpl-1", "fields": {"thing1": "{badge_name}", "time2": "{earned_at}"}})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/admin/webhooks", headers=ADMIN, json={"url": "https://crm.example/h", "events": ["*"]})
    assert r.status_code == 201, r.text
    return [
        "/v1/admin/badges/store-explorer", "/v1/admin/challenges/spring", "/v1/admin/leaderboards/spend",
        "/v1/admin/vouchers/coffee", "/v1/admin/notification-templates/badge_unlocked",
        f"/v1/admin/webhooks/{r.json()['id']}",
    ]


def _same(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
            if k not in STAMPS and before.get(k) != after.get(k)}


async def test_a_definition_a_get_returns_can_be_put_back_unchanged(client: httpx.AsyncClient) -> None:
    for path in await _setup(client):
        before = (await client.get(path, headers=ADMIN)).json()
        r = await client.put(path, json=before, headers=ADMIN)
        assert r.status_code == 200, (path, r.text)
        after = (await client.get(path, headers=ADMIN)).json()
        assert _same(before, after) == {}, path


async def test_a_put_still_refuses_unknown_fields_and_a_status_change(client: httpx.AsyncClient) -> None:
    await _setup(client)
    body = (await client.get("/v1/admin/badges/store-explorer", headers=ADMIN)).json()
    r = await client.put("/v1/admin/badges/store-explorer", json={**body, "pionts": 5}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.pionts", r.text
    body = (await client.get("/v1/admin/challenges/spring", headers=ADMIN)).json()
    r = await client.put("/v1/admin/challenges/spring", json={**body, "status": "archived"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "status_mismatch", r.text
    assert (await client.get("/v1/admin/challenges/spring", headers=ADMIN)).json()["status"] == "published"
