"""The product's badges, end to end through the HTTP API (criteria → counters → awards)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.api import ADMIN, awarded, badge, event, post_event

CN = ZoneInfo("Asia/Shanghai")
TODAY = (datetime.now(CN) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def day(n: int, hour: int = 12) -> datetime:
    """n days before yesterday, program time (all safely in the past)."""
    return (TODAY - timedelta(days=n)).replace(hour=hour)


@pytest.mark.sqlite_too
async def test_first_purchase(client: httpx.AsyncClient) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "aggregate": "count", "threshold": 1}], points=5)
    out = await event(client, "M", "purchase", day(1), amount=99)
    assert awarded(out) == ["first-purchase"]
    assert out["levels_reached"] == [{"rank": 1, "name": "Community Starter"}]
    assert awarded(await event(client, "M", "purchase", day(0), amount=99)) == []


async def test_tenth_order(client: httpx.AsyncClient) -> None:
    await badge(client, "tenth-order", [{"event": "purchase", "threshold": 10, "window": {"type": "lifetime"}}])
    for i in range(9):
        out = await event(client, "M", "purchase", day(20 - i), amount=1)
        assert awarded(out) == []
    assert out["progress"] == [{"badge": "tenth-order", "criterion": 0, "current": 9, "target": 10, "window_end": None}]
    assert awarded(await event(client, "M", "purchase", day(2), amount=1)) == ["tenth-order"]


async def test_festival_shopper_fixed_window(client: httpx.AsyncClient) -> None:
    # Spring Festival 2026 (the 2027 window of the product docs is in the future, where events are refused).
    window = {"type": "fixed", "start": "2026-02-10T00:00:00+08:00", "end": "2026-02-24T00:00:00+08:00"}
    await badge(client, "festival-shopper", [{"event": "purchase", "threshold": 1, "window": window}])
    assert awarded(await event(client, "M", "purchase", "2026-02-09T23:59:00+08:00", amount=5)) == []
    assert awarded(await event(client, "M", "purchase", "2026-02-24T00:00:00+08:00", amount=5)) == []
    assert awarded(await event(client, "M", "purchase", "2026-02-17T10:00:00+08:00", amount=5)) == ["festival-shopper"]


async def test_festival_window_in_2027_is_accepted_and_shown(client: httpx.AsyncClient, login: object) -> None:
    window = {"type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-20T00:00:00+08:00"}
    b = await badge(client, "festival-2027", [{"event": "purchase", "threshold": 1, "window": window}])
    assert b["criteria"][0]["window"]["type"] == "fixed"


async def test_store_explorer_needs_three_stores_in_one_month(client: httpx.AsyncClient) -> None:
    crit = {
        "event": "visit",
        "where": [{"field": "store_id", "op": "exists"}],
        "aggregate": "count_distinct",
        "field": "store_id",
        "threshold": 3,
        "window": {"type": "calendar", "unit": "month"},
    }
    await badge(client, "store-explorer", [crit])
    # Three stores across two months (September 30 and October 1, China time) do not count.
    await event(client, "M", "visit", "2026-09-30T20:00:00+08:00", store_id="S1")
    await event(client, "M", "visit", "2026-09-30T23:59:00+08:00", store_id="S2")
    out = await event(client, "M", "visit", "2026-10-01T00:00:00+08:00", store_id="S3")
    assert awarded(out) == []
    assert out["progress"][0]["current"] == 1
    assert awarded(await event(client, "M", "visit", "2026-10-02T10:00:00+08:00", store_id="S3")) == []  # repeat
    assert awarded(await event(client, "M", "visit", "2026-10-05T10:00:00+08:00", store_id="S4")) == []
    assert awarded(await event(client, "M", "visit", "2026-10-06T10:00:00+08:00", store_id="S5")) == ["store-explorer"]


async def test_big_spender_rolling_seven_days(client: httpx.AsyncClient) -> None:
    crit = {
        "event": "purchase",
        "aggregate": "sum",
        "field": "amount",
        "threshold": 1000,
        "window": {"type": "rolling", "days": 7},
    }
    await badge(client, "big-spender", [crit])
    await event(client, "A", "purchase", day(30), amount=600)
    assert awarded(await event(client, "A", "purchase", day(22), amount=500)) == []  # 8 days apart
    await event(client, "B", "purchase", day(10), amount=600)
    assert awarded(await event(client, "B", "purchase", day(9), amount=-200)) == []  # refund
    assert awarded(await event(client, "B", "purchase", day(4), amount=500)) == []  # 900 in window
    assert awarded(await event(client, "B", "purchase", day(4), amount=200)) == ["big-spender"]


async def test_first_referral(client: httpx.AsyncClient) -> None:
    await badge(client, "first-referral", [{"event": "referral", "threshold": 1}], points=20)
    assert awarded(await event(client, "M", "purchase", day(3), amount=1)) == []
    out = await event(client, "M", "referral", day(2), referred="M2")
    assert awarded(out) == ["first-referral"] and out["points_credited"] == 20


async def test_seven_day_check_in_streak_with_one_grace_day(client: httpx.AsyncClient) -> None:
    crit = {
        "event": "check_in",
        "aggregate": "streak",
        "threshold": 7,
        "grace": 1,
        "window": {"type": "calendar", "unit": "day"},
    }
    await badge(client, "streak-7", [crit])
    for n in (20, 19, 18, 16, 15, 14):  # day 17 missed: bridged by the grace day
        assert awarded(await event(client, "A", "check_in", day(n))) == []
    assert awarded(await event(client, "A", "check_in", day(13))) == ["streak-7"]
    # Two missed days in a row break the streak.
    for n in (20, 19, 18, 15, 14, 13):
        assert awarded(await event(client, "B", "check_in", day(n))) == []
    assert awarded(await event(client, "B", "check_in", day(12))) == []
    # A late check-in for day 17 joins the halves: 20..12 with day 16 bridged → 8 active days.
    assert awarded(await event(client, "B", "check_in", day(17))) == ["streak-7"]


async def test_collector_counts_awards_without_counting_itself(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await badge(client, f"b{i}", [{"event": f"task.t{i}", "threshold": 1}])
    await badge(client, "collector", [{"event": "badge.awarded", "threshold": 5}])
    await badge(client, "super-collector", [{"event": "badge.awarded", "threshold": 7}])
    for i in range(4):
        assert awarded(await event(client, "M", f"task.t{i}", day(1))) == [f"b{i}"]
    out = await event(client, "M", "task.t4", day(1))
    assert awarded(out) == ["b4", "collector"]
    held = (await client.get("/v1/admin/users/M/badges", headers=ADMIN)).json()
    assert sorted(a["badge"] for a in held) == ["b0", "b1", "b2", "b3", "b4", "collector"]


async def test_a_tower_of_collectors_counts_every_award_of_one_event(client: httpx.AsyncClient) -> None:
    # "Badge Hunter I-VI": each earned for 1..6 badges. One purchase cascades up the whole tower; no award event
    # of the chain is left uncounted, however many collectors it climbs.
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}])
    for n in range(1, 7):
        await badge(client, f"hunter-{n}", [{"event": "badge.awarded", "threshold": n}])
    out = await event(client, "TOWER", "purchase", day(1))
    assert awarded(out) == ["first-purchase", *(f"hunter-{n}" for n in range(1, 7))]


async def test_repeatable_badges_counting_each_others_awards_do_not_run_away(client: httpx.AsyncClient) -> None:
    # Seven repeatable badges, each earned again for every badge.awarded: each award is counted by the six others,
    # and the chain rule only keeps a badge from re-triggering itself, so the chains are every ordering of the
    # seven (13,700 awards and seconds of work for one purchase; 109,601 and minutes for eight). However deep a
    # chain may go, a run follows a bounded number of award events.
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}])
    for n in range(7):
        await badge(client, f"echo-{n}", [{"event": "badge.awarded", "threshold": 1}], repeatable=True)
    out = await event(client, "ECHO", "purchase", day(1))
    assert awarded(out)[0] == "first-purchase"
    assert 8 <= len(awarded(out)) <= 1000, len(awarded(out))


@pytest.mark.sqlite_too
async def test_a_batch_of_one_members_events_follows_every_events_award(client: httpx.AsyncClient) -> None:
    # The bound on award events followed is per event, not per member of a batch (one engine run serves them all).
    await badge(client, "every-visit", [{"event": "visit", "threshold": 1}], repeatable=True)
    await badge(client, "regular-80", [{"event": "badge.awarded", "threshold": 80}])
    items = [{"id": f"v{i}", "user_id": "BATCH", "type": "visit", "occurred_at": day(1, hour=12).isoformat(),
              "attributes": {"n": i}} for i in range(100)]
    r = await client.post("/v1/events/batch", json={"events": items}, headers=ADMIN)
    assert r.status_code == 200, r.text
    held = (await client.get("/v1/admin/users/BATCH/badges", headers=ADMIN)).json()
    assert "regular-80" in {a["badge"] for a in held}


@pytest.mark.sqlite_too
async def test_a_badge_counting_levels_is_not_retriggered_by_the_level_its_own_points_reach(
    client: httpx.AsyncClient,
) -> None:
    # Each award of "level-bonus" credits 100 points, enough for the next level; were it to count the levels
    # it causes itself, one visit would climb the whole ladder.
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=10)
    await badge(client, "level-bonus", [{"event": "level.reached", "threshold": 1}], points=100, repeatable=True)
    out = await event(client, "L", "visit", day(1))
    assert awarded(out) == ["first-visit", "level-bonus"]
    assert out["points_credited"] == 110
    assert [lvl["name"] for lvl in out["levels_reached"]] == [
        "Community Starter", "Community Contributor", "Active Member", "Engaged Member", "Community Champion",
    ]
    held = (await client.get("/v1/admin/users/L/badges", headers=ADMIN)).json()
    assert sorted(a["badge"] for a in held) == ["first-visit", "level-bonus"]


@pytest.mark.sqlite_too
async def test_a_repeatable_collector_counts_the_badges_its_own_award_led_to_and_earns_again_later(
    client: httpx.AsyncClient,
) -> None:
    for i in range(3):
        await badge(client, f"b{i}", [{"event": f"task.t{i}", "threshold": 1}])
    await badge(client, "collector", [{"event": "badge.awarded", "threshold": 2}], points=5, repeatable=True)
    await badge(client, "climber", [{"event": "level.reached", "threshold": 1}])
    assert awarded(await event(client, "M", "task.t0", day(1))) == ["b0"]
    # collector's 5 points reach the first level, which earns climber: counted, though it cannot re-award
    # collector within the chain its own award started.
    assert awarded(await event(client, "M", "task.t1", day(1))) == ["b1", "collector", "climber"]
    # b0, b1, climber and now b2: four awards besides collector's own, so it is earned a second time.
    assert awarded(await event(client, "M", "task.t2", day(1))) == ["b2", "collector"]


@pytest.mark.sqlite_too
async def test_a_manual_grant_counts_for_collector_and_an_admins_credit_for_level_badges(
    client: httpx.AsyncClient,
) -> None:
    await badge(client, "b0", [{"event": "task.t0", "threshold": 1}])
    await badge(client, "vip", [], visibility="invite_only")
    await badge(client, "collector", [{"event": "badge.awarded", "threshold": 2}])
    await badge(client, "climber", [{"event": "level.reached", "threshold": 1}])
    assert awarded(await event(client, "M", "task.t0", day(1))) == ["b0"]
    r = await client.post("/v1/admin/users/M/badges/vip", json={"reason": "guest"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/users/M/points", json={"amount": 5, "reason": "welcome"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    held = (await client.get("/v1/admin/users/M/badges", headers=ADMIN)).json()
    assert sorted(a["badge"] for a in held) == ["b0", "climber", "collector", "vip"]


async def revoke(client: httpx.AsyncClient, member: str, key: str) -> None:
    r = await client.request(
        "DELETE", f"/v1/admin/users/{member}/badges/{key}", json={"reason": "fraud"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text


@pytest.mark.sqlite_too
async def test_the_award_after_a_revoke_takes_a_new_id_and_credits_its_points(client: httpx.AsyncClient) -> None:
    # On SQLite the revoked award's id was handed out again, colliding with the ledger source and the
    # badge.awarded event its first holder left behind: every later award of the member failed.
    await badge(client, "b0", [{"event": "task.t0", "threshold": 1}], points=5)
    await badge(client, "b1", [{"event": "task.t1", "threshold": 1}], points=7)
    assert awarded(await event(client, "M", "task.t0", day(1))) == ["b0"]
    await revoke(client, "M", "b0")
    out = await event(client, "M", "task.t1", day(1))
    assert awarded(out) == ["b1"] and out["points_credited"] == 7
    held = (await client.get("/v1/admin/users/M/badges", headers=ADMIN)).json()
    assert [a["badge"] for a in held] == ["b1"]


@pytest.mark.sqlite_too
async def test_a_revoked_badge_no_longer_counts_toward_collector(client: httpx.AsyncClient) -> None:
    for i in range(4):
        await badge(client, f"b{i}", [{"event": f"task.t{i}", "threshold": 1}])
    await badge(client, "collector", [{"event": "badge.awarded", "threshold": 3}])
    assert awarded(await event(client, "M", "task.t0", day(1))) == ["b0"]
    assert awarded(await event(client, "M", "task.t1", day(1))) == ["b1"]
    await revoke(client, "M", "b1")
    # Two awards, one revoked: the third badge makes two standing, not three.
    out = await event(client, "M", "task.t2", day(1))
    assert awarded(out) == ["b2"]
    assert {"badge": "collector", "criterion": 0, "current": 2, "target": 3, "window_end": None} in out["progress"]
    assert awarded(await event(client, "M", "task.t3", day(1))) == ["b3", "collector"]


@pytest.mark.sqlite_too
async def test_a_distinct_collector_keeps_a_badge_another_standing_award_still_supplies(
    client: httpx.AsyncClient,
) -> None:
    distinct = {"event": "badge.awarded", "aggregate": "count_distinct", "field": "badge", "threshold": 3}
    await badge(client, "again", [{"event": "task.again", "threshold": 1}], repeatable=True)
    await badge(client, "b1", [{"event": "task.t1", "threshold": 1}])
    await badge(client, "b2", [{"event": "task.t2", "threshold": 1}])
    await badge(client, "variety", [distinct])
    assert awarded(await event(client, "M", "task.t1", day(1))) == ["b1"]
    r = await client.post("/v1/admin/users/M/badges/again", json={"reason": "one"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/users/M/badges/again", json={"reason": "two"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    await revoke(client, "M", "again")  # one "again" award still stands: still two distinct badges
    await revoke(client, "M", "b1")  # now one
    out = await event(client, "M", "task.t2", day(1))
    assert awarded(out) == ["b2"]
    assert {"badge": "variety", "criterion": 0, "current": 2, "target": 3, "window_end": None} in out["progress"]


@pytest.mark.sqlite_too
async def test_an_award_that_counted_nowhere_does_not_keep_a_revoked_badge_counted(client: httpx.AsyncClient) -> None:
    distinct = {"event": "badge.awarded", "aggregate": "count_distinct", "field": "badge", "threshold": 2}
    await badge(client, "again", [{"event": "task.again", "threshold": 1}], repeatable=True)
    await badge(client, "b1", [{"event": "task.t1", "threshold": 1}])
    await event(client, "M", "visit", day(3))
    r = await client.post("/v1/admin/users/M/badges/again", json={"reason": "before variety"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    await badge(client, "variety", [distinct])  # the first award was never counted by it
    r = await client.post("/v1/admin/users/M/badges/again", json={"reason": "counted"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    await revoke(client, "M", "again")  # the counted one: "again" leaves variety's distinct badges
    out = await event(client, "M", "task.t1", day(1))
    assert awarded(out) == ["b1"]
    assert {"badge": "variety", "criterion": 0, "current": 1, "target": 2, "window_end": None} in out["progress"]


@pytest.mark.sqlite_too
async def test_a_revoke_can_reset_progress_so_only_new_activity_earns_the_badge_again(
    client: httpx.AsyncClient,
) -> None:
    await badge(client, "two-visits", [{"event": "visit", "threshold": 2}], points=5)
    for member in ("KEEP", "RESET"):
        await event(client, member, "visit", day(3))
        assert awarded(await event(client, member, "visit", day(2))) == ["two-visits"]
    await revoke(client, "KEEP", "two-visits")
    r = await client.request("DELETE", "/v1/admin/users/RESET/badges/two-visits",
                             json={"reason": "fake visits", "reset_progress": True}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["progress_reset"] is True and r.json()["points_reversed"] == 5
    # The counters stayed for KEEP: the next visit re-awards. RESET starts again from zero.
    assert awarded(await event(client, "KEEP", "visit", day(1))) == ["two-visits"]
    out = await event(client, "RESET", "visit", day(1))
    assert awarded(out) == [] and out["progress"][0]["current"] == 1
    assert awarded(await event(client, "RESET", "visit", day(0))) == ["two-visits"]
    audit = (await client.get("/v1/admin/audit", params={"user_id": "RESET"}, headers=ADMIN)).json()["items"]
    assert audit[0]["details"]["progress_reset"] is True
    r = await client.request("DELETE", "/v1/admin/users/RESET/badges/two-visits",
                             json={"reason": "x", "reset_progress": "yes"}, headers=ADMIN)
    assert r.status_code == 422, r.text


@pytest.mark.sqlite_too
async def test_a_reset_clears_every_version_of_the_badges_criteria_and_is_refused_on_a_repeatable_badge(
    client: httpx.AsyncClient,
) -> None:
    two = [{"event": "visit", "threshold": 2}]
    await badge(client, "two-visits", two)
    await event(client, "M", "visit", day(4))
    assert awarded(await event(client, "M", "visit", day(3))) == ["two-visits"]
    r = await client.patch("/v1/admin/badges/two-visits", json={"criteria": [{"event": "visit", "threshold": 5}]},
                           headers=ADMIN)
    assert r.status_code == 200, r.text
    # Asked in the query while the body says nothing of it: still a reset.
    r = await client.request("DELETE", "/v1/admin/users/M/badges/two-visits", params={"reset_progress": "true"},
                             json={"reason": "fake"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["progress_reset"] is True, r.text
    r = await client.patch("/v1/admin/badges/two-visits", json={"criteria": two}, headers=ADMIN)
    assert r.status_code == 200, r.text
    # The counters of the first criteria went too: one new visit is one, not three.
    assert awarded(await event(client, "M", "visit", day(2))) == []
    assert awarded(await event(client, "M", "visit", day(1))) == ["two-visits"]

    await badge(client, "every-visit", [{"event": "visit", "threshold": 1}], repeatable=True)
    assert awarded(await event(client, "M", "visit", day(0))) == ["every-visit"]
    r = await client.request("DELETE", "/v1/admin/users/M/badges/every-visit",
                             json={"reason": "x", "reset_progress": True}, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "reset_progress_unsupported"
    held = (await client.get("/v1/admin/users/M/badges", headers=ADMIN)).json()
    assert "every-visit" in [a["badge"] for a in held]  # refused whole: nothing revoked


async def test_award_evidence_names_criteria_bucket_and_event(client: httpx.AsyncClient) -> None:
    crit = {
        "event": "visit",
        "aggregate": "count_distinct",
        "field": "store_id",
        "threshold": 2,
        "window": {"type": "calendar", "unit": "month"},
    }
    await badge(client, "two-stores", [crit])
    await event(client, "M", "visit", "2026-10-03T10:00:00+08:00", store_id="S1")
    out = await event(client, "M", "visit", "2026-10-04T10:00:00+08:00", key="completing", store_id="S2")
    held = (await client.get("/v1/admin/users/M/badges", headers=ADMIN)).json()
    ev = held[0]["evidence"]
    assert held[0]["event_id"] == out["event_id"] and ev["event_key"] == "completing"
    assert ev["criteria"][0]["bucket"] == "2026-10" and ev["criteria"][0]["value"] == 2


async def test_invite_only_is_never_auto_awarded_and_seasonal_only_in_season(client: httpx.AsyncClient) -> None:
    await badge(client, "vip", [{"event": "visit", "threshold": 1}], visibility="invite_only")
    await badge(
        client,
        "autumn",
        [{"event": "visit", "threshold": 1}],
        visibility="seasonal",
        available_from="2026-09-01T00:00:00+08:00",
        available_until="2026-10-01T00:00:00+08:00",
    )
    assert awarded(await event(client, "M", "visit", "2026-10-02T10:00:00+08:00")) == []
    assert awarded(await event(client, "M", "visit", "2026-09-15T10:00:00+08:00")) == ["autumn"]


async def test_a_season_is_refused_on_a_public_badge_and_dropped_when_a_seasonal_one_goes_public(
    client: httpx.AsyncClient,
) -> None:
    crit = [{"event": "visit", "threshold": 1}]
    body = {"key": "pub", "name": "Pub", "criteria": crit, "available_from": "2026-09-01T00:00:00+08:00"}
    r = await client.post("/v1/admin/badges", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "body.available_from"
    await badge(client, "autumn", crit, visibility="seasonal", available_from="2026-09-01T00:00:00+08:00",
                available_until="2026-10-01T00:00:00+08:00")
    r = await client.patch("/v1/admin/badges/autumn", json={"visibility": "public"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["available_from"], r.json()["available_until"]) == (None, None)
    assert awarded(await event(client, "M", "visit", "2026-10-02T10:00:00+08:00")) == ["autumn"]


async def test_activating_a_badge_does_not_award_history(client: httpx.AsyncClient) -> None:
    await event(client, "M", "purchase", day(5), amount=1)
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}])
    held = (await client.get("/v1/admin/users/M/badges", headers=ADMIN)).json()
    assert held == []


@pytest.mark.sqlite_too
async def test_badge_created_without_status_is_active_and_awarded(client: httpx.AsyncClient) -> None:
    body = {"key": "first-visit", "name": "First Visit", "criteria": [{"event": "visit", "threshold": 1}],
            "points": 5}
    r = await client.post("/v1/admin/badges", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active" and r.json()["activated_at"] is not None
    assert awarded(await event(client, "M", "visit", datetime.now(UTC) - timedelta(seconds=5))) == ["first-visit"]


@pytest.mark.sqlite_too
async def test_replacing_a_badge_without_status_keeps_its_status(client: httpx.AsyncClient) -> None:
    await badge(client, "later", [{"event": "visit", "threshold": 1}], status="draft")
    body = {"name": "Later", "criteria": [{"event": "visit", "threshold": 2}]}
    r = await client.put("/v1/admin/badges/later", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "draft"
    r = await client.put("/v1/admin/badges/later", json={**body, "status": "active"}, headers=ADMIN)
    assert r.json()["status"] == "active"
    r = await client.put("/v1/admin/badges/later", json={**body, "name": "Later on"}, headers=ADMIN)
    assert r.json()["status"] == "active" and r.json()["name"] == "Later on"


async def test_draft_badges_are_not_evaluated(client: httpx.AsyncClient) -> None:
    await badge(client, "later", [{"event": "visit", "threshold": 1}], status="draft")
    assert awarded(await event(client, "M", "visit", day(1))) == []


async def test_repeatable_badge_awards_once_per_calendar_period(client: httpx.AsyncClient) -> None:
    crit = {"event": "visit", "threshold": 2, "window": {"type": "calendar", "unit": "month"}}
    await badge(client, "monthly-regular", [crit], repeatable=True, points=1)
    await event(client, "M", "visit", "2026-09-01T10:00:00+08:00")
    assert awarded(await event(client, "M", "visit", "2026-09-02T10:00:00+08:00")) == ["monthly-regular"]
    assert awarded(await event(client, "M", "visit", "2026-09-03T10:00:00+08:00")) == []
    await event(client, "M", "visit", "2026-10-01T10:00:00+08:00")
    assert awarded(await event(client, "M", "visit", "2026-10-02T10:00:00+08:00")) == ["monthly-regular"]


@pytest.mark.parametrize(
    ("criteria", "where"),
    [
        ([{"event": "visit", "aggregate": "sum", "threshold": 3}], "criteria.0.field"),
        ([{"event": "visit", "aggregate": "streak", "threshold": 3}], "criteria.0.window"),
        ([{"event": "visit", "threshold": 3, "grace": 1}], "criteria.0.grace"),
        (
            [{"event": "visit", "threshold": 3, "where": [{"field": "x", "op": "in", "value": 3}]}],
            "criteria.0.where.0.value",
        ),
        ([{"event": "visit", "threshold": 3, "window": {"type": "weekly"}}], "criteria.0.window"),
        ([], "body.criteria"),
    ],
)
async def test_invalid_criteria_are_422_saying_which_part(
    client: httpx.AsyncClient, criteria: list[object], where: str
) -> None:
    r = await client.post("/v1/admin/badges", json={"key": "bad", "name": "Bad", "criteria": criteria}, headers=ADMIN)
    assert r.status_code == 422, r.text
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert any(f.startswith(f"body.{where}") or f == where for f in fields), fields


async def test_same_event_posted_50_times_at_once_counts_once(client: httpx.AsyncClient) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=10)
    await client.put("/v1/users/C", json={}, headers=ADMIN)
    at = datetime.now(UTC) - timedelta(minutes=1)
    results = await asyncio.gather(*(post_event(client, "C", "purchase", at, key="same", amount=1) for _ in range(50)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
    bodies = [r.json() for r in results]
    assert sum(not b["duplicate"] for b in bodies) == 1
    assert {b["event_id"] for b in bodies} == {bodies[0]["event_id"]}
    history = (await client.get("/v1/admin/users/C/events?limit=200", headers=ADMIN)).json()
    assert [e["id"] for e in history["items"]] == ["same"]
    history = (await client.get("/v1/admin/users/C/events?limit=200&include_internal=true", headers=ADMIN)).json()
    assert len((await client.get("/v1/admin/users/C/badges", headers=ADMIN)).json()) == 1
    ledger = [e for e in history["items"] if e["type"] == "badge.awarded"]
    assert len(ledger) == 1


async def test_fifty_qualifying_events_at_once_award_once(client: httpx.AsyncClient, login: object) -> None:
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=10)
    await client.put("/v1/users/C", json={}, headers=ADMIN)
    at = datetime.now(UTC) - timedelta(minutes=1)
    results = await asyncio.gather(*(post_event(client, "C", "purchase", at, key=f"p{i}", amount=1) for i in range(50)))
    assert all(r.status_code == 200 for r in results)
    assert sum(len(r.json()["badges_awarded"]) for r in results) == 1
    assert sum(r.json()["points_credited"] for r in results) == 10
    assert len((await client.get("/v1/admin/users/C/badges", headers=ADMIN)).json()) == 1


async def test_big_spender_window_is_the_seven_days_up_to_the_event(client: httpx.AsyncClient) -> None:
    crit = {"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 1000,
            "window": {"type": "rolling", "days": 7}}
    await badge(client, "big-spender", [crit])
    first = day(10).replace(hour=5, minute=58)
    await event(client, "R", "purchase", first, amount=600)
    # 6 days 23 hours later spans eight calendar days but is inside the 7 days up to the event.
    assert awarded(await event(client, "R", "purchase", first + timedelta(days=6, hours=23), amount=500)) == [
        "big-spender"
    ]


BIG_SPENDER = {"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 1000,
               "window": {"type": "rolling", "days": 7}}


@pytest.mark.sqlite_too
async def test_a_late_purchase_completes_big_spender_whatever_the_order_of_arrival(client: httpx.AsyncClient) -> None:
    await badge(client, "big-spender", [BIG_SPENDER], points=50)
    # In order: the second purchase completes (day 10, day 5]. Late: the same two purchases, the earlier one last.
    assert awarded(await event(client, "IN-ORDER", "purchase", day(10), amount=500)) == []
    assert awarded(await event(client, "IN-ORDER", "purchase", day(5), amount=600)) == ["big-spender"]
    assert awarded(await event(client, "LATE", "purchase", day(5), amount=600)) == []
    out = await event(client, "LATE", "purchase", day(10), amount=500)
    assert awarded(out) == ["big-spender"] and out["points_credited"] == 50
    # The evidence records the window that was met: the seven days up to the later purchase.
    r = await client.get("/v1/admin/users/LATE/badges", headers=ADMIN)
    (criterion,) = r.json()[0]["evidence"]["criteria"]
    assert (criterion["value"], criterion["met"]) == (1100, True)
    assert datetime.fromisoformat(criterion["window_end"]) == day(5)
    # Too far apart either way: no award.
    await event(client, "APART", "purchase", day(3), amount=600)
    assert awarded(await event(client, "APART", "purchase", day(10), amount=500)) == []


async def test_a_late_purchase_in_a_batch_completes_big_spender(
    client: httpx.AsyncClient,
) -> None:
    await badge(client, "big-spender", [BIG_SPENDER])
    await event(client, "B1", "purchase", day(5), amount=600)
    events = [{"id": f"late-{i}", "user_id": "B1", "type": "purchase", "occurred_at": day(10 + i).isoformat(),
               "source": "pos", "attributes": {"amount": 500 - i}} for i in range(2)]
    r = await client.post("/v1/events/batch", json={"events": events}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [awarded(item["result"]) for item in r.json()["results"]] == [["big-spender"], []]


async def test_a_repeatable_streak_badge_is_earned_again_by_a_new_run(client: httpx.AsyncClient) -> None:
    crit = {"event": "check_in", "aggregate": "streak", "threshold": 3, "window": {"type": "calendar", "unit": "day"}}
    await badge(client, "streak-3", [crit], points=10, repeatable=True)
    got = []
    for n in (30, 29, 28, 20, 19, 18, 17, 16, 15):  # a 3-day run, then a 6-day run
        got += awarded(await event(client, "RS", "check_in", day(n)))
    assert got == ["streak-3"] * 3  # once for the first run, twice for the second (3 and 6 days)
    again = await event(client, "RS", "check_in", day(14, hour=9))
    assert awarded(again) == [] and awarded(await event(client, "RS", "check_in", day(14, hour=20))) == []


async def test_a_streak_completed_by_a_late_check_in_records_the_run_it_completed(client: httpx.AsyncClient) -> None:
    crit = {"event": "check_in", "aggregate": "streak", "threshold": 3, "window": {"type": "calendar", "unit": "day"}}
    await badge(client, "streak-3", [crit])
    for n in (12, 10):
        assert awarded(await event(client, "EV", "check_in", day(n))) == []
    assert awarded(await event(client, "EV", "check_in", day(11))) == ["streak-3"]  # late: fills the hole
    r = await client.get("/v1/admin/users/EV/badges", headers=ADMIN)
    (criterion,) = r.json()[0]["evidence"]["criteria"]
    assert (criterion["value"], criterion["threshold"], criterion["met"]) == (3, 3, True)
    assert criterion["streak_start"] == day(12).date().isoformat()


async def test_a_fixed_windows_progress_says_whether_it_is_ahead_open_or_over(
    client: httpx.AsyncClient, login: object
) -> None:
    windows = {
        "ahead": ((TODAY + timedelta(days=30)), (TODAY + timedelta(days=44))),
        "open": ((TODAY - timedelta(days=5)), (TODAY + timedelta(days=5))),
        "over": ((TODAY - timedelta(days=40)), (TODAY - timedelta(days=20))),
    }
    for key, (start, end) in windows.items():
        window = {"type": "fixed", "start": start.isoformat(), "end": end.isoformat()}
        await badge(client, f"window-{key}", [{"event": "purchase", "threshold": 2, "window": window}])
    await client.put("/v1/users/FW", json={"openid": "o-fw"}, headers=ADMIN)
    headers = await login("o-fw")  # type: ignore[operator]
    mine = {b["key"]: b for b in (await client.get("/v1/me/badges", headers=headers)).json()}
    texts = {key: mine[f"window-{key}"]["progress"]["text"] for key in windows}
    d = {key: (s.date().isoformat(), e.date().isoformat()) for key, (s, e) in windows.items()}
    assert texts == {
        "ahead": f"0 of 2 purchases, from {d['ahead'][0]} until {d['ahead'][1]}",
        "open": f"0 of 2 purchases until {d['open'][1]}",
        "over": f"0 of 2 purchases, ended {d['over'][1]}",
    }


async def test_a_fixed_window_of_bare_dates_shows_its_last_day_not_the_day_after(
    client: httpx.AsyncClient, login: object
) -> None:
    """A bare end date is inclusive (events count through that whole day): the member is told that day, not the
    next one ("until 2027-02-20", not "until 2027-02-21", which promised a day on which nothing counts)."""
    today = TODAY.date()
    windows = {
        "ahead": (today + timedelta(days=30), today + timedelta(days=44)),
        "open": (today - timedelta(days=5), today + timedelta(days=5)),
        "over": (today - timedelta(days=40), today - timedelta(days=20)),
    }
    for key, (start, end) in windows.items():
        window = {"type": "fixed", "start": start.isoformat(), "end": end.isoformat()}
        await badge(client, f"days-{key}", [{"event": "purchase", "threshold": 2, "window": window}])
    await client.put("/v1/users/FD", json={"openid": "o-fd"}, headers=ADMIN)
    headers = await login("o-fd")  # type: ignore[operator]
    d = {key: (s.isoformat(), e.isoformat()) for key, (s, e) in windows.items()}
    mine = {b["key"]: b for b in (await client.get("/v1/me/badges", headers=headers)).json()}
    assert {key: mine[f"days-{key}"]["progress"]["text"] for key in windows} == {
        "ahead": f"0 of 2 purchases, from {d['ahead'][0]} until {d['ahead'][1]}",
        "open": f"0 of 2 purchases until {d['open'][1]}",
        "over": f"0 of 2 purchases, ended {d['over'][1]}",
    }
    r = await client.get("/v1/me/badges", headers={**headers, "Accept-Language": "zh-CN"})
    zh = {b["key"]: b for b in r.json()}
    assert {key: zh[f"days-{key}"]["progress"]["text"] for key in windows} == {
        "ahead": f"0/2，{d['ahead'][0]} 至 {d['ahead'][1]}",
        "open": f"0/2，截至 {d['open'][1]}",
        "over": f"0/2，已于 {d['over'][1]} 结束",
    }


async def test_a_late_check_in_reports_the_length_of_the_run_it_joined(client: httpx.AsyncClient) -> None:
    crit = {"event": "check_in", "aggregate": "streak", "threshold": 7, "window": {"type": "calendar", "unit": "day"}}
    await badge(client, "streak-7", [crit])
    for n in (10, 9, 7):
        await event(client, "LP", "check_in", day(n))
    out = await event(client, "LP", "check_in", day(8))  # late: joins 10, 9 and 7 into one run of four
    assert [(p["badge"], p["current"], p["target"]) for p in out["progress"]] == [("streak-7", 4, 7)]


async def test_a_bare_date_in_a_fixed_window_is_that_day_in_the_apps_time_zone(
    app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zone of the app that saves the rule, not the environment's default (Asia/Shanghai)."""
    monkeypatch.setattr(app.state.settings, "timezone", "Europe/London")
    window = {"type": "fixed", "start": "2026-02-06", "end": "2026-02-20"}
    body = await badge(client, "festival", [{"event": "purchase", "threshold": 1, "window": window}])
    stored = body["criteria"][0]["window"]
    assert datetime.fromisoformat(stored["start"]) == datetime(2026, 2, 6, tzinfo=UTC)  # London: UTC in February
    assert datetime.fromisoformat(stored["end"]) == datetime(2026, 2, 21, tzinfo=UTC)  # the end day is inclusive
