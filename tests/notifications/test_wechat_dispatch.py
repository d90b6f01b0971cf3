"""WeChat subscription messages end to end: event → badge → outbox → fan-out → dispatcher → fake WeChat."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

from tests.api import ADMIN, badge, event
from tests.fakes.wechat_server import FakeWeChat
from tests.notifications.conftest import BADGE_TEMPLATE, Kit, Member

NOW = datetime.now(UTC)


async def _visit_badge(kit: Kit, key: str = "first-visit", name: str = "首次到店") -> None:
    await badge(kit.client, key, [{"event": "visit", "threshold": 1}], name=name)


async def _one_queued(kit: Kit) -> Member:
    """A member with one consent credit and one badge notification queued for WeChat."""
    await kit.template()
    await _visit_badge(kit)
    m = await kit.member()
    await kit.credit(m)
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    return m


async def test_badge_with_a_credit_sends_one_message_with_fields_filled_and_uses_the_credit(
    kit: Kit, wechat: FakeWeChat
) -> None:
    await kit.template()
    await _visit_badge(kit)
    m = await kit.member()
    await kit.credit(m, n=2)
    await event(kit.client, m.external_id, "visit", NOW)
    assert await kit.fanout() >= 1
    assert await kit.dispatch() == 1
    assert len(wechat.sent) == 1
    sent = wechat.sent[0]
    assert sent["touser"] == m.openid and sent["template_id"] == BADGE_TEMPLATE
    assert sent["page"] == "pages/badges/index" and sent["miniprogram_state"] == "formal" and sent["lang"] == "zh_CN"
    assert sent["data"]["thing1"]["value"] == "首次到店"
    awards = (await kit.client.get(f"/v1/admin/users/{m.external_id}/badges", headers=ADMIN)).json()
    earned = datetime.fromisoformat(awards[0]["awarded_at"]).astimezone(kit.settings.tz)
    assert sent["data"]["time2"]["value"] == earned.strftime("%Y-%m-%d %H:%M")
    assert await kit.credits(m) == 1
    (d,) = await kit.deliveries()
    assert d.status == "sent" and d.msgid == str(sent["msgid"]) and d.attempts == 1
    # Running everything again sends nothing more.
    assert await kit.fanout() == 0 and await kit.dispatch() == 0
    assert len(wechat.sent) == 1


async def test_without_a_credit_no_wechat_call_but_the_inbox_has_it(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    await _visit_badge(kit)
    m = await kit.member()
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    assert await kit.dispatch() == 0
    assert wechat.count("/cgi-bin/message/subscribe/send") == 0
    (d,) = await kit.deliveries()
    assert d.status == "no_consent"
    inbox = (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()
    assert [n["kind"] for n in inbox["items"]] == ["badge_unlocked"] and inbox["unread_count"] == 1


async def test_43101_sets_the_members_credits_for_the_template_to_zero(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    await _visit_badge(kit)
    m = await kit.member()
    await kit.credit(m, n=3)
    wechat.fail_openids[m.openid] = 43101
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    assert await kit.dispatch() == 1
    (d,) = await kit.deliveries()
    assert d.status == "dropped" and d.last_errcode == 43101  # "43101 → credit reset to 0, dropped"
    assert await kit.credits(m) == 0
    assert wechat.sent == []


async def test_47003_is_dropped_naming_the_field_and_the_credit_is_refunded(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    await _visit_badge(kit)
    m = await kit.member()
    await kit.credit(m)
    wechat.script.append(47003)
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    assert await kit.dispatch() == 1
    (d,) = await kit.deliveries()
    assert d.status == "dropped" and d.last_errcode == 47003 and "data.thing1" in (d.last_errmsg or "")
    assert await kit.credits(m) == 1
    # Dropped means dropped: a later run does not retry it.
    assert await kit.dispatch(now=NOW + timedelta(hours=1)) == 0


async def test_values_wechat_would_refuse_are_dropped_before_queueing(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template(fields={"phrase1": "{badge_name}"})  # phrase: at most 5 Chinese characters
    await _visit_badge(kit, name="First Visit")
    m = await kit.member()
    await kit.credit(m)
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    (d,) = await kit.deliveries()
    assert d.status == "dropped" and "phrase1" in (d.last_errmsg or "")
    assert await kit.dispatch() == 0 and wechat.count("/cgi-bin/message/subscribe/send") == 0
    assert await kit.credits(m) == 1


async def test_token_expiry_mid_run_refreshes_once_and_sends(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    await _visit_badge(kit, "a")
    await _visit_badge(kit, "b")
    first, second = await kit.member(), await kit.member()
    await kit.credit(first)
    await kit.credit(second)
    await event(kit.client, first.external_id, "visit", NOW)
    await kit.fanout()
    assert await kit.dispatch() == 1
    fetches = wechat.token_fetches
    wechat.expire_token()
    await event(kit.client, second.external_id, "visit", NOW)
    await kit.fanout()
    assert await kit.dispatch() == 1
    assert wechat.token_fetches == fetches + 1
    assert {s["touser"] for s in wechat.sent} == {first.openid, second.openid}
    assert all(d.status == "sent" for d in await kit.deliveries())


async def test_wechat_down_for_a_while_is_retried_and_delivered_once_when_back(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    await _visit_badge(kit)
    m = await kit.member()
    await kit.credit(m, n=2)
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    wechat.down = True
    clock = datetime.now(UTC)
    for _ in range(3):
        assert await kit.dispatch(now=clock) == 1
        (d,) = await kit.deliveries()
        assert d.status == "pending" and d.next_attempt_at > clock
        assert await kit.credits(m) == 2  # refunded: nothing was delivered
        clock = d.next_attempt_at
    wechat.down = False
    assert await kit.dispatch(now=clock) == 1
    (d,) = await kit.deliveries()
    assert d.status == "sent" and d.attempts == 4
    assert len(wechat.sent) == 1 and await kit.credits(m) == 1
    assert await kit.dispatch(now=clock + timedelta(hours=1)) == 0
    admin = await kit.client.get("/v1/admin/notifications", headers=ADMIN)
    assert admin.json()["counts"] == {"sent": 1}


async def test_network_failures_give_up_after_max_attempts(kit: Kit, wechat: FakeWeChat) -> None:
    settings = kit.settings.model_copy(update={"wechat_max_attempts": 2})
    m = await _one_queued(kit)
    wechat.script.extend([-1, -1])
    t0 = datetime.now(UTC)
    assert await kit.dispatch(now=t0, settings=settings) == 1
    assert await kit.dispatch(now=t0 + timedelta(minutes=1), settings=settings) == 1
    (d,) = await kit.deliveries()
    assert d.status == "failed" and d.last_errcode == -1 and d.attempts == 2
    assert await kit.credits(m) == 1


async def test_rate_limits_do_not_count_towards_giving_up(kit: Kit, wechat: FakeWeChat) -> None:
    # Two 45011s, then a network error: one transient failure of two allowed, so it is retried (and its backoff
    # is the first step, 5 s, not the third's).
    settings = kit.settings.model_copy(update={"wechat_max_attempts": 2})
    await _one_queued(kit)
    wechat.script.extend([45011, 45011, -1])
    clock = datetime.now(UTC)
    for _ in range(3):
        sent_at = clock
        assert await kit.dispatch(now=clock, settings=settings) == 1
        (d,) = await kit.deliveries()
        assert d.status == "pending", (d.status, d.last_errcode)
        clock = d.next_attempt_at
    assert d.last_errcode == -1 and d.attempts == 3
    assert clock - sent_at == timedelta(seconds=5)
    assert await kit.dispatch(now=clock, settings=settings) == 1
    (d,) = await kit.deliveries()
    assert d.status == "sent" and len(wechat.sent) == 1


async def test_three_badges_from_one_event_become_one_bundled_message(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    for key in ("a", "b", "c"):
        await _visit_badge(kit, key, name=f"徽章{key}")
    m = await kit.member()
    await kit.credit(m, n=2)
    out = await event(kit.client, m.external_id, "visit", NOW)
    assert len(out["badges_awarded"]) == 3
    await kit.fanout()
    assert await kit.dispatch() == 1
    assert len(wechat.sent) == 1
    assert wechat.sent[0]["data"]["thing1"]["value"] == "你解锁了3枚徽章"
    assert await kit.credits(m) == 1
    rows = await kit.deliveries()
    assert [r.status for r in rows] == ["sent"] * 3
    lead = rows[0]
    assert lead.bundle_size == 3 and all(r.bundle_id == lead.id for r in rows[1:])
    inbox = (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()
    assert inbox["total"] == 3  # the detail stays in the inbox


async def test_quiet_hours_hold_a_send_until_morning(kit: Kit, wechat: FakeWeChat) -> None:
    settings = kit.settings.model_copy(update={"quiet_hours": "22:00-08:00"})
    await _one_queued(kit)
    tz = settings.tz
    night = datetime.combine(NOW.astimezone(tz).date(), time(23), tz)  # the next 23:00 (program time) after NOW:
    if night <= NOW:  # the next morning stays well within the 48 hours a delivery waits at most
        night += timedelta(days=1)
    assert await kit.dispatch(now=night, settings=settings) == 0
    (d,) = await kit.deliveries()
    morning = (night + timedelta(days=1)).replace(hour=8, minute=0)
    assert d.status == "pending" and d.next_attempt_at == morning
    assert await kit.dispatch(now=morning - timedelta(minutes=1), settings=settings) == 0
    assert wechat.sent == []
    assert await kit.dispatch(now=morning + timedelta(minutes=1), settings=settings) == 1
    assert len(wechat.sent) == 1


async def test_45009_pauses_every_send_until_the_next_day(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    await _visit_badge(kit)
    a, b = await kit.member(), await kit.member()
    for m in (a, b):
        await kit.credit(m)
        await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    wechat.script.extend([45009, 45009])
    t0 = datetime.now(UTC)
    if t0.astimezone(kit.settings.tz).time() >= time(23, 50):
        t0 += timedelta(minutes=20)  # not minutes before midnight (program time), when the pause would end at once
    assert await kit.dispatch(now=t0) == 2
    assert await kit.dispatch(now=t0 + timedelta(minutes=5)) == 0  # paused
    tomorrow = datetime.combine(t0.astimezone(kit.settings.tz).date() + timedelta(days=1), datetime.min.time(),
                                kit.settings.tz)
    assert await kit.dispatch(now=tomorrow + timedelta(seconds=1)) == 2
    assert len(wechat.sent) == 2


async def test_45011_retries_after_a_minute(kit: Kit, wechat: FakeWeChat) -> None:
    await _one_queued(kit)
    wechat.script.append(45011)
    t0 = datetime.now(UTC)
    assert await kit.dispatch(now=t0) == 1
    (d,) = await kit.deliveries()
    assert d.status == "pending" and timedelta(seconds=60) <= d.next_attempt_at - t0 <= timedelta(seconds=71)
    assert await kit.dispatch(now=t0 + timedelta(seconds=30)) == 0
    assert await kit.dispatch(now=t0 + timedelta(seconds=75)) == 1
    assert len(wechat.sent) == 1


async def test_two_dispatchers_at_once_never_send_twice(kit: Kit, wechat: FakeWeChat, backend: str) -> None:
    assert backend == "postgresql"
    await kit.template()
    await _visit_badge(kit)
    members = [await kit.member() for _ in range(30)]
    for m in members:
        await kit.credit(m)
        await event(kit.client, m.external_id, "visit", NOW)
    await asyncio.gather(kit.fanout(), kit.fanout())
    assert len(await kit.deliveries()) == 30
    while sum(await asyncio.gather(*(kit.dispatch() for _ in range(3)))):
        pass
    assert sorted(s["touser"] for s in wechat.sent) == sorted(m.openid for m in members)
    assert all(d.status == "sent" for d in await kit.deliveries())



async def test_a_template_disabled_after_queueing_drops_the_delivery_and_keeps_the_credit(
    kit: Kit, wechat: FakeWeChat
) -> None:
    m = await _one_queued(kit)
    await kit.template(enabled=False)  # the operator turns the message off before it is sent
    assert await kit.dispatch() == 0
    assert wechat.count("/cgi-bin/message/subscribe/send") == 0
    (d,) = await kit.deliveries()
    assert d.status == "dropped" and "no longer mapped or disabled" in (d.last_errmsg or "")
    assert await kit.credits(m) == 1  # consent is not spent on a message that was never sent


async def _a_queued_and_failing_twice(kit: Kit, wechat: FakeWeChat) -> Member:
    """Notification A queued for a member with one credit, the next two sends failing (-1); a purchase will
    queue B (another badge) for the same template."""
    await kit.template()
    await _visit_badge(kit, "first-visit", name="A")
    await badge(kit.client, "first-buy", [{"event": "purchase", "threshold": 1}], name="B")
    m = await kit.member()
    await kit.credit(m)
    await event(kit.client, m.external_id, "visit", NOW)
    await kit.fanout()
    wechat.script.extend([-1, -1])
    return m


async def test_each_bundled_delivery_counts_its_own_failures(kit: Kit, wechat: FakeWeChat) -> None:
    # A has failed once; B is new and rides in A's retry, which fails too: A has used its two attempts, B one.
    settings = kit.settings.model_copy(update={"wechat_max_attempts": 2})
    m = await _a_queued_and_failing_twice(kit, wechat)
    assert await kit.dispatch(now=datetime.now(UTC), settings=settings) == 1
    (a,) = await kit.deliveries()
    assert a.status == "pending"
    await event(kit.client, m.external_id, "purchase", NOW)
    await kit.fanout()
    assert await kit.dispatch(now=a.next_attempt_at, settings=settings) == 1  # one call carrying both
    a, b = await kit.deliveries()
    assert (a.status, b.status) == ("failed", "pending")
    assert b.attempts == 1 and b.next_attempt_at is not None
    assert await kit.dispatch(now=b.next_attempt_at, settings=settings) == 1
    a, b = await kit.deliveries()
    assert b.status == "sent" and len(wechat.sent) == 1


async def test_rate_limits_are_waited_out_for_two_days_at_most(kit: Kit, wechat: FakeWeChat) -> None:
    m = await _one_queued(kit)
    wechat.script.extend([45011, 45011])
    (d,) = await kit.deliveries()
    assert await kit.dispatch(now=d.created_at + timedelta(hours=47)) == 1
    (d,) = await kit.deliveries()
    assert d.status == "pending"  # waiting is not failing
    # Due again past 48 h (after a quota pause, say): failed when claimed, not sent days late.
    assert await kit.dispatch(now=d.created_at + timedelta(hours=49)) == 0
    (d,) = await kit.deliveries()
    assert d.status == "failed" and "not sent within" in (d.last_errmsg or "")
    assert await kit.credits(m) == 1 and wechat.sent == []


async def test_a_bundle_that_fails_once_is_retried_together_for_one_credit(kit: Kit, wechat: FakeWeChat) -> None:
    # A has failed once, B is new; the bundle [A, B] fails: both come back at one time, as one message.
    m = await _a_queued_and_failing_twice(kit, wechat)
    assert await kit.dispatch(now=datetime.now(UTC)) == 1
    (a,) = await kit.deliveries()
    await event(kit.client, m.external_id, "purchase", NOW)
    await kit.fanout()
    assert await kit.dispatch(now=a.next_attempt_at) == 1
    a, b = await kit.deliveries()
    assert a.status == b.status == "pending" and a.next_attempt_at == b.next_attempt_at
    assert a.bundle_id is None and b.bundle_id is None
    assert await kit.dispatch(now=a.next_attempt_at) == 1
    a, b = await kit.deliveries()
    assert {a.status, b.status} == {"sent"} and len(wechat.sent) == 1 and await kit.credits(m) == 0


async def test_a_badge_revoked_before_its_message_goes_out_is_not_announced(kit: Kit, wechat: FakeWeChat) -> None:
    await kit.template()
    for key in ("a", "b"):
        await _visit_badge(kit, key, name=f"徽章{key}")
    m = await kit.member()
    await kit.credit(m, n=2)
    out = await event(kit.client, m.external_id, "visit", NOW)
    assert len(out["badges_awarded"]) == 2
    await kit.fanout()  # queued (held by quiet hours, say), then revoked by an operator
    r = await kit.client.request("DELETE", f"/v1/admin/users/{m.external_id}/badges/a", json={"reason": "fraud"},
                                 headers=ADMIN)
    assert r.status_code == 200, r.text
    assert await kit.dispatch() == 1
    assert [s["data"]["thing1"]["value"] for s in wechat.sent] == ["徽章b"]  # alone, not "2 badges"
    assert await kit.credits(m) == 1
    rows = await kit.deliveries()
    assert [(r.status, r.last_errmsg) for r in rows] == [
        ("dropped", "badge revoked before the message was sent"), ("sent", None)]
    # A member whose only queued badge is revoked gets no message, and keeps the credit.
    other = await kit.member()
    await kit.credit(other)
    await event(kit.client, other.external_id, "visit", NOW)
    await kit.fanout()
    for key in ("a", "b"):
        r = await kit.client.request("DELETE", f"/v1/admin/users/{other.external_id}/badges/{key}",
                                     json={"reason": "fraud"}, headers=ADMIN)
        assert r.status_code == 200, r.text
    assert await kit.dispatch() == 0 and len(wechat.sent) == 1 and await kit.credits(other) == 1
