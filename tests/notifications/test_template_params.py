"""The params table templates are checked against (kinds.PARAMS) is what notifications really carry, and a template
naming anything else is saved with a warning (it would render empty, and WeChat refuses an empty value)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.notifications import kinds
from app.notifications import scheduler as notification_scheduler
from tests.api import ADMIN, badge, event
from tests.challenges.conftest import step
from tests.notifications.conftest import Kit


async def _params(kit: Kit, headers: dict[str, str]) -> dict[str, set[str]]:
    await kit.fanout()
    r = await kit.client.get("/v1/me/notifications?limit=100", headers=headers)
    assert r.status_code == 200, r.text
    return {n["kind"]: set(n["params"]) for n in r.json()["items"]}


async def test_the_params_table_matches_what_notifications_carry(kit: Kit) -> None:
    await badge(kit.client, "first-visit", [{"event": "visit", "threshold": 1}], points=10)  # and a level
    r = await kit.client.post("/v1/admin/vouchers", headers=ADMIN, json={
        "key": "coffee", "name": "Free coffee", "face_value": 5, "validity_days": 30, "generated": True})
    assert r.status_code == 201, r.text
    r = await kit.client.post("/v1/admin/challenges", headers=ADMIN, json={
        "key": "one-post", "title": "One post", "steps": [step("Post", "post")], "status": "published",
        "schedule": {"ends_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()},
        "rewards": {"voucher": "coffee", "bonus_points": 1}})
    assert r.status_code == 201, r.text
    m = await kit.member()
    async with kit.app.state.db.sessionmaker() as s, s.begin():  # the member is told of the challenge
        await notification_scheduler.challenge_available(s, kit.settings)
    assert (await kit.client.post("/v1/challenges/one-post/join", headers=m.headers)).status_code == 201
    async with kit.app.state.db.sessionmaker() as s, s.begin():  # its deadline is within 24 h
        await notification_scheduler.challenge_expiring(s, kit.settings)
    await event(kit.client, m.external_id, "visit", datetime.now(UTC))
    await event(kit.client, m.external_id, "post", datetime.now(UTC))
    seen = await _params(kit, m.headers)
    assert set(seen) >= {"badge_unlocked", "level_reached", "challenge_available", "challenge_expiring",
                         "challenge_completed", "voucher_issued"}, seen
    for kind, params in seen.items():
        assert params == kinds.PARAMS[kind], (kind, params ^ kinds.PARAMS[kind])


async def test_a_template_naming_a_param_its_kind_lacks_is_saved_with_a_warning(kit: Kit) -> None:
    body: dict[str, Any] = {"template_id": "t-level", "fields": {"thing1": "{level}", "time2": "{earned_at}"}}
    r = await kit.client.put("/v1/admin/notification-templates/level_reached", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    [warning] = r.json()["warnings"]
    assert warning["field"] == "fields.time2" and "{earned_at} is not a param of level_reached" in warning["message"]
    assert (await kit.client.get("/v1/admin/notification-templates/level_reached", headers=ADMIN)).json()[
        "warnings"] == [warning]
    body["fields"]["time2"] = "{reached_at}"
    r = await kit.client.put("/v1/admin/notification-templates/level_reached", json=body, headers=ADMIN)
    assert r.status_code == 200 and r.json()["warnings"] == []


async def test_a_template_id_with_whitespace_is_refused(kit: Kit) -> None:
    """The Mini Program reports consent under WeChat's id ("abc"), which "abc " would never match."""
    for template_id in ("abc ", " ", "a b"):
        body = {"template_id": template_id, "fields": {"thing1": "{badge_name}"}}
        r = await kit.client.put("/v1/admin/notification-templates/badge_unlocked", json=body, headers=ADMIN)
        assert r.status_code == 422, r.text
        assert "body.template_id" in [d["field"] for d in r.json()["error"]["details"]]
    assert (await kit.client.get("/v1/admin/notification-templates/badge_unlocked", headers=ADMIN)).status_code == 404
