"""The member's inbox, the consent ledger, template mapping and the admin log, through HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.models import Notification, OutboxMessage, WebhookDelivery
from tests.api import ADMIN, badge, event
from tests.notifications.conftest import BADGE_TEMPLATE, Kit

NOW = datetime.now(UTC)


@pytest.mark.sqlite_too
async def test_inbox_is_newest_first_paginated_with_unread_count_and_read_marks(kit: Kit) -> None:
    for i in range(5):
        await badge(kit.client, f"b{i}", [{"event": "visit", "threshold": i + 1}], name=f"Badge {i}")
    m, other = await kit.member(), await kit.member()
    for i in range(5):
        await event(kit.client, m.external_id, "visit", NOW - timedelta(minutes=10 - i))
    await event(kit.client, other.external_id, "visit", NOW)
    await kit.fanout()
    page1 = (await kit.client.get("/v1/me/notifications?limit=3", headers=m.headers)).json()
    assert page1["total"] == 5 and page1["unread_count"] == 5 and len(page1["items"]) == 3
    assert [n["params"]["badge"] for n in page1["items"]] == ["b4", "b3", "b2"]
    page2 = (await kit.client.get("/v1/me/notifications?limit=3&offset=3", headers=m.headers)).json()
    assert [n["params"]["badge"] for n in page2["items"]] == ["b1", "b0"]
    theirs = (await kit.client.get("/v1/me/notifications", headers=other.headers)).json()["items"][0]["id"]
    r = await kit.client.post("/v1/me/notifications/read", json={"ids": [page1["items"][0]["id"], theirs]},
                              headers=m.headers)
    assert r.json() == {"updated": 1, "unread_count": 4}  # someone else's id is ignored
    assert (await kit.client.get("/v1/me/notifications", headers=other.headers)).json()["unread_count"] == 1
    r = await kit.client.post("/v1/me/notifications/read", json={"all": True}, headers=m.headers)
    assert r.json() == {"updated": 4, "unread_count": 0}
    items = (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()["items"]
    assert all(n["read"] and n["read_at"] for n in items)
    assert (await kit.client.post("/v1/me/notifications/read", json={}, headers=m.headers)).status_code == 422
    r = await kit.client.post("/v1/me/notifications/read", json={"ids": [2**63]}, headers=m.headers)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.ids.0", r.text
    assert (await kit.client.get("/v1/me/notifications")).status_code == 401


async def test_texts_follow_accept_language(kit: Kit) -> None:
    await badge(kit.client, "explorer", [{"event": "visit", "threshold": 1}], name="Explorer",
                translations={"zh-CN": {"name": "探店达人"}})
    m = await kit.member()
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    zh = (await kit.client.get("/v1/me/notifications", headers={**m.headers, "Accept-Language": "zh-CN,zh;q=0.9"}))
    en = (await kit.client.get("/v1/me/notifications", headers={**m.headers, "Accept-Language": "en-US"}))
    z, e = zh.json()["items"][0], en.json()["items"][0]
    assert z["title"] == "徽章解锁" and z["body"] == "你获得了「探店达人」徽章"
    assert e["title"] == "Badge unlocked" and e["body"] == "You unlocked the “Explorer” badge"
    assert "names" not in z["params"]


async def test_a_subscription_report_forwarded_as_wechat_answered_it_ignores_errMsg(kit: Kit) -> None:
    """wx.requestSubscribeMessage's success result is `{"errMsg": "requestSubscribeMessage:ok", "<tmplId>": …}`;
    the Mini Program forwards it as it is, and errMsg is WeChat's status line, not a template id."""
    await kit.template()
    m = await kit.member()
    results = {"errMsg": "requestSubscribeMessage:ok", BADGE_TEMPLATE: "accept"}
    body = {"request_id": "req-wx", "results": results}
    r = await kit.client.post("/v1/me/subscriptions", json=body, headers=m.headers)
    assert r.status_code == 200, r.text
    assert [t["template_id"] for t in r.json()["templates"]] == [BADGE_TEMPLATE]
    assert await kit.credits(m) == 1
    again = await kit.client.post("/v1/me/subscriptions", json=body, headers=m.headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    only_status = {"request_id": "req-wx-2", "results": {"errMsg": "requestSubscribeMessage:ok"}}
    r = await kit.client.post("/v1/me/subscriptions", json=only_status, headers=m.headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text


async def test_subscription_reports_are_idempotent_per_request_id(kit: Kit) -> None:
    await kit.template()
    m = await kit.member()
    body = {"request_id": "req-1", "results": {BADGE_TEMPLATE: "accept", "tmpl-other": "reject"}}
    first = (await kit.client.post("/v1/me/subscriptions", json=body, headers=m.headers)).json()
    again = (await kit.client.post("/v1/me/subscriptions", json=body, headers=m.headers)).json()
    assert first["duplicate"] is False and again["duplicate"] is True
    # The same request_id with other answers is a client bug, not a retry: refused, not silently dropped.
    other = {"request_id": "req-1", "results": {BADGE_TEMPLATE: "reject"}}
    r = await kit.client.post("/v1/me/subscriptions", json=other, headers=m.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "request_id_reused", r.text
    by_id = {t["template_id"]: t for t in again["templates"]}
    assert by_id[BADGE_TEMPLATE]["credits"] == 1 and by_id[BADGE_TEMPLATE]["kinds"] == ["badge_unlocked"]
    assert by_id[BADGE_TEMPLATE]["ask"] is False
    assert by_id["tmpl-other"]["credits"] == 0 and by_id["tmpl-other"]["last_result"] == "reject"
    await kit.credit(m, n=2)
    assert await kit.credits(m) == 3
    body = {"request_id": uuid.uuid4().hex, "results": {BADGE_TEMPLATE: "ban"}}
    out = (await kit.client.post("/v1/me/subscriptions", json=body, headers=m.headers)).json()
    assert {t["template_id"]: t["credits"] for t in out["templates"]}[BADGE_TEMPLATE] == 0
    # WeChat banned the template: asking again cannot help.
    assert {t["template_id"]: t["ask"] for t in out["templates"]}[BADGE_TEMPLATE] is False
    other = await kit.member()
    mine = (await kit.client.get("/v1/me/subscriptions", headers=other.headers)).json()["templates"]
    assert mine == [{"template_id": BADGE_TEMPLATE, "kinds": ["badge_unlocked"], "credits": 0, "last_result": None,
                     "ask": True}]
    bad = {"request_id": "r", "results": {BADGE_TEMPLATE: "maybe"}}
    assert (await kit.client.post("/v1/me/subscriptions", json=bad, headers=m.headers)).status_code == 422


async def test_an_accept_with_a_reminder_switched_on_is_an_accept(kit: Kit) -> None:
    """wx.requestSubscribeMessage answers 'acceptWithAudio' (or 'acceptWithAlert') when the member accepts with
    the voice or alert reminder switched on: the whole report was a 422, so that accept, and every other
    template's in it, gave no credit."""
    await kit.template()
    m = await kit.member()
    for i, result in enumerate(("acceptWithAudio", "acceptWithAlert")):
        body = {"request_id": f"req-{i}", "results": {BADGE_TEMPLATE: result, "tmpl-other": "accept"}}
        r = await kit.client.post("/v1/me/subscriptions", json=body, headers=m.headers)
        assert r.status_code == 200, r.text
        by_id = {t["template_id"]: t for t in r.json()["templates"]}
        assert by_id[BADGE_TEMPLATE]["credits"] == i + 1 and by_id[BADGE_TEMPLATE]["last_result"] == "accept"
        assert by_id["tmpl-other"]["credits"] == i + 1
    assert await kit.credits(m) == 2


async def test_a_template_page_is_a_mini_program_page_not_a_url(kit: Kit) -> None:
    body = {"template_id": "t", "fields": {"thing1": "{badge_name}"}}
    for page in ("https://evil.example", "javascript:alert(1)", "pages/a b"):
        r = await kit.client.put("/v1/admin/notification-templates/badge_unlocked", json={**body, "page": page},
                                 headers=ADMIN)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.page", (page, r.text)
    for page, stored in (("pages/badge/detail?key=vip&from=msg", "pages/badge/detail?key=vip&from=msg"), ("", None)):
        r = await kit.client.put("/v1/admin/notification-templates/badge_unlocked", json={**body, "page": page},
                                 headers=ADMIN)
        assert r.status_code == 200 and r.json()["page"] == stored, r.text


async def test_templates_are_validated_against_wechat_field_types(kit: Kit) -> None:
    await kit.template()
    r = await kit.client.get("/v1/admin/notification-templates/badge_unlocked", headers=ADMIN)
    assert r.status_code == 200 and r.json()["fields"] == {"thing1": "{badge_name}", "time2": "{earned_at}"}
    assert [t["kind"] for t in (await kit.client.get("/v1/admin/notification-templates", headers=ADMIN)).json()] == [
        "badge_unlocked"]
    bad = {"template_id": "t", "fields": {"colour1": "{badge_name}"}}
    r = await kit.client.put("/v1/admin/notification-templates/level_reached", json=bad, headers=ADMIN)
    assert r.status_code == 422 and "colour1" in r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == ["body.fields.colour1"]  # the admin app highlights it
    r = await kit.client.put("/v1/admin/notification-templates/nonsense", json={"template_id": "t",
                             "fields": {"thing1": "x"}}, headers=ADMIN)
    assert r.status_code == 422
    assert (await kit.client.get("/v1/admin/notification-templates/level_reached", headers=ADMIN)).status_code == 404
    for fixed in ({"phrase1": "not chinese"}, {"number1": "abc"}, {"phrase1": "太长的一个短语"}):
        r = await kit.client.put("/v1/admin/notification-templates/level_reached",
                                 json={"template_id": "t", "fields": fixed}, headers=ADMIN)
        assert r.status_code == 422, fixed
        assert [d["field"] for d in r.json()["error"]["details"]] == [f"body.fields.{next(iter(fixed))}"]
    ok = {"template_id": "t", "fields": {"phrase1": "升级", "thing2": "{level_name}"}}
    assert (await kit.client.put("/v1/admin/notification-templates/level_reached", json=ok,
                                 headers=ADMIN)).status_code == 200
    assert (await kit.client.delete("/v1/admin/notification-templates/badge_unlocked",
                                    headers=ADMIN)).status_code == 204


async def test_admin_lists_notifications_by_member_kind_and_status_with_counts(kit: Kit) -> None:
    await kit.template()
    await badge(kit.client, "first-visit", [{"event": "visit", "threshold": 1}], points=10)
    a, b = await kit.member("A1"), await kit.member("B1")
    await kit.credit(a)
    for m in (a, b):
        await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    await kit.dispatch()
    r = (await kit.client.get("/v1/admin/notifications", headers=ADMIN)).json()
    # Each member: badge_unlocked (WeChat) and level_reached (no template: inbox only).
    assert r["total"] == 4
    assert r["counts"] == {"sent": 1, "no_consent": 1, "inbox_only": 2}
    r = (await kit.client.get("/v1/admin/notifications?user_id=A1&kind=badge_unlocked", headers=ADMIN)).json()
    (item,) = r["items"]
    assert item["status"] == "sent" and item["external_id"] == "A1" and item["wechat"]["attempts"] == 1
    r = (await kit.client.get("/v1/admin/notifications?status=no_consent", headers=ADMIN)).json()
    assert [i["external_id"] for i in r["items"]] == ["B1"]
    assert (await kit.client.get("/v1/admin/notifications?status=weird", headers=ADMIN)).status_code == 422


async def test_admin_notifications_filter_by_member_also_as_member(kit: Kit) -> None:
    """The issue's "filter by member": `?member=<external id>` filters as `?user_id=` does (it was ignored, and the
    admin saw every member's notifications as if they were this member's)."""
    await badge(kit.client, "first-visit", [{"event": "visit", "threshold": 1}])
    a, b = await kit.member("A1"), await kit.member("B1")
    for m in (a, b):
        await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    assert (await kit.client.get("/v1/admin/notifications", headers=ADMIN)).json()["total"] == 2
    r = await kit.client.get("/v1/admin/notifications?member=A1", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1 and [i["external_id"] for i in r.json()["items"]] == ["A1"]
    assert r.json()["counts"] == {"inbox_only": 1}
    both = await kit.client.get("/v1/admin/notifications?member=A1&user_id=A1", headers=ADMIN)
    assert both.json()["total"] == 1
    clash = await kit.client.get("/v1/admin/notifications?member=A1&user_id=B1", headers=ADMIN)
    assert clash.status_code == 422 and clash.json()["error"]["code"] == "validation_error", clash.text


async def _count(kit: Kit, stmt: object) -> int:
    async with kit.app.state.db.sessionmaker() as s:
        return int((await s.execute(stmt)).scalar_one())  # type: ignore[call-overload]


@pytest.mark.sqlite_too
async def test_inbox_shows_what_an_event_caused_right_away_and_once(kit: Kit, backend: str) -> None:
    await kit.template()
    await badge(kit.client, "explorer", [{"event": "visit", "threshold": 1}], name="Explorer",
                translations={"zh-CN": {"name": "探店达人"}})
    r = await kit.client.post("/v1/admin/webhooks", json={"url": "https://crm.example/h", "events": ["*"]},
                              headers=ADMIN)
    assert r.status_code == 201, r.text
    m = await kit.member()
    await kit.credit(m)
    await event(kit.client, m.external_id, "visit", NOW)
    # No fan-out has run: reading the inbox right after the event already shows it.
    page = (await kit.client.get("/v1/me/notifications", headers={**m.headers, "Accept-Language": "en"})).json()
    assert page["total"] == 1 and page["unread_count"] == 1
    assert page["items"][0]["kind"] == "badge_unlocked" and "Explorer" in page["items"][0]["body"]
    assert len(await kit.deliveries()) == 1  # its WeChat delivery is queued with it
    # The worker's fan-out then does the rest (webhooks, the row marked processed) and adds nothing twice.
    assert await kit.fanout() >= 1
    again = (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()
    assert again["total"] == 1 and again["items"][0]["id"] == page["items"][0]["id"]
    assert len(await kit.deliveries()) == 1
    assert await _count(kit, select(func.count()).select_from(WebhookDelivery)
                        .where(WebhookDelivery.event == "badge.awarded")) == 1
    assert await _count(kit, select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.processed_at.is_(None))) == 0
    assert await kit.dispatch() == 1


async def test_inbox_reads_racing_the_fanout_create_each_notification_once(kit: Kit) -> None:
    await kit.template()
    for i in range(3):
        await badge(kit.client, f"race-{i}", [{"event": "visit", "threshold": i + 1}])
    members = [await kit.member() for _ in range(3)]
    for m in members:
        await kit.credit(m)
        for i in range(3):
            await event(kit.client, m.external_id, "visit", NOW - timedelta(minutes=5 - i))
    reads = [kit.client.get("/v1/me/notifications", headers=m.headers) for m in members for _ in range(3)]
    results = await asyncio.gather(kit.fanout(), *reads)
    assert all(r.status_code == 200 for r in results[1:])
    await kit.fanout()
    assert await _count(kit, select(func.count()).select_from(Notification)) == 9
    assert len(await kit.deliveries()) == 9
    for m in members:
        assert (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()["total"] == 3
