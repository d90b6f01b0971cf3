"""The product's own challenges, end to end through the API (join, post events, read progress)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.challenges.conftest import step

PROFILE_STEPS = ["profile.image", "profile.banner", "profile.intro", "profile.bio", "profile.skills",
                 "profile.experience"]


async def me_challenges(client: httpx.AsyncClient, m: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/me/challenges", headers=m.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def points(client: httpx.AsyncClient, m: Any) -> int:
    r = await client.get("/v1/me", headers=m.headers)
    assert r.status_code == 200, r.text
    return int(r.json()["points"])


async def test_complete_your_profile_credits_steps_and_bonus_once(
    client: httpx.AsyncClient, member: Any, send: Any, make_challenge: Any, outbox: Any, clock: Any
) -> None:
    await make_challenge("complete-profile", [step(f"Step {e}", e) for e in PROFILE_STEPS],
                         rewards={"points_per_step": 5, "bonus_points": 20, "badge": None, "voucher": None})
    m = await member()
    await send(m, "profile.image", "2026-11-20T09:00:00+08:00")  # before joining: must not count
    clock.set("2026-11-20T10:00:00+08:00")
    r = await client.post("/v1/challenges/complete-profile/join", headers=m.headers)
    assert r.status_code == 201, r.text
    assert r.json()["steps"][0]["current"] == 0 and r.json()["status"] == "active"

    first = await send(m, "profile.image", "2026-11-20T10:05:00+08:00")
    assert first["challenges"] == [{"challenge": "complete-profile", "instance": "once", "step": 0, "current": 1,
                                    "target": 1, "done": True, "status": "active"}]
    assert first["points_credited"] == 5
    for i, event in enumerate(PROFILE_STEPS[1:-1], start=1):
        await send(m, event, f"2026-11-20T10:1{i}:00+08:00")
    mine = await me_challenges(client, m)
    assert mine[0]["key"] == "complete-profile" and mine[0]["steps_done"] == 5 and mine[0]["percent"] == 83
    last = await send(m, "profile.experience", "2026-11-20T11:00:00+08:00")
    assert last["challenges"][-1]["status"] == "completed"
    assert last["points_credited"] == 25
    again = await send(m, "profile.experience", "2026-11-20T11:05:00+08:00")  # a later event changes nothing
    assert again["challenges"] == [] and again["points_credited"] == 0

    assert await points(client, m) == 6 * 5 + 20
    mine = await me_challenges(client, m)
    assert mine[0]["status"] == "completed" and mine[0]["percent"] == 100
    assert all(s["done"] for s in mine[0]["steps"])
    assert len(await outbox("challenge.step_completed", m.external_id)) == 6
    completed = await outbox("challenge.completed", m.external_id)
    assert len(completed) == 1 and completed[0]["challenge"] == "complete-profile"


async def test_make_5_posts_this_week_uses_the_china_week_boundary(
    client: httpx.AsyncClient, member: Any, send: Any, make_challenge: Any, outbox: Any, clock: Any
) -> None:
    await make_challenge("five-posts-week", [step("Post 5 times", "post", 5)],
                         schedule={"type": "recurring", "recurrence": "weekly"},
                         rewards={"points_per_step": 0, "bonus_points": 10})
    a, b = await member(), await member()
    clock.set("2026-11-16T10:00:00+08:00")  # Monday of 2026-W47
    for m in (a, b):
        r = await client.post("/v1/challenges/five-posts-week/join", headers=m.headers)
        assert r.status_code == 201 and r.json()["instance"] == "2026-W47"
        assert r.json()["deadline"] == "2026-11-23T00:00:00+08:00"  # Monday midnight, in program time
        for day in range(17, 21):
            await send(m, "post", f"2026-11-{day}T12:00:00+08:00")
    done = await send(a, "post", "2026-11-22T23:59:00+08:00")  # Sunday 23:59 China time: still this week
    assert done["challenges"][-1]["status"] == "completed"
    late = await send(b, "post", "2026-11-23T00:00:00+08:00")  # Monday 00:00: next week, does not count
    assert late["challenges"] == []

    clock.set("2026-11-23T09:00:00+08:00")
    mine_b = await me_challenges(client, b)
    assert [(p["instance"], p["status"], p["steps"][0]["current"]) for p in mine_b] == [("2026-W47", "expired", 4)]
    assert len(await outbox("challenge.expired", b.external_id)) == 1
    await me_challenges(client, b)
    assert len(await outbox("challenge.expired", b.external_id)) == 1  # written once
    # The next period is a fresh instance the member joins again.
    r = await client.post("/v1/challenges/five-posts-week/join", headers=b.headers)
    assert r.status_code == 201 and r.json()["instance"] == "2026-W48" and r.json()["steps"][0]["current"] == 0
    assert (await me_challenges(client, a))[0]["status"] == "completed"


async def test_visit_5_stores_this_month_counts_distinct_stores(
    client: httpx.AsyncClient, member: Any, send: Any, make_challenge: Any, clock: Any
) -> None:
    await make_challenge("five-stores-month",
                         [step("Visit 5 stores", "visit", 5, aggregate="count_distinct", field="store_id")],
                         schedule={"type": "recurring", "recurrence": "monthly"},
                         rewards={"points_per_step": 50, "bonus_points": 0})
    m = await member()
    clock.set("2026-11-02T10:00:00+08:00")
    r = await client.post("/v1/challenges/five-stores-month/join", headers=m.headers)
    assert r.json()["instance"] == "2026-11"
    for i, store in enumerate(["S1", "S2", "S2", "S3", "S1", "S4"]):
        await send(m, "visit", f"2026-11-0{3 + i}T12:00:00+08:00", store_id=store)
    assert (await me_challenges(client, m))[0]["steps"][0]["current"] == 4
    out = await send(m, "visit", "2026-11-10T12:00:00+08:00", store_id="S5")
    assert out["challenges"][0] | {} == {"challenge": "five-stores-month", "instance": "2026-11", "step": 0,
                                         "current": 5, "target": 5, "done": True, "status": "completed",
                                         "rewards": {"bonus_points": 0, "badge": None, "voucher": None}}
    assert await points(client, m) == 50


async def test_spend_1000_in_7_days_ignores_day_8(
    client: httpx.AsyncClient, member: Any, send: Any, make_challenge: Any, outbox: Any, clock: Any, app: Any
) -> None:
    await make_challenge("spend-1000-7d", [step("Spend 1,000 CNY", "purchase", 1000, aggregate="sum", field="amount")],
                         schedule={"type": "one_time", "time_limit_days": 7},
                         rewards={"points_per_step": 0, "bonus_points": 100})
    slow, quick = await member(), await member()
    clock.set("2026-11-10T10:00:00+08:00")
    for m in (slow, quick):
        r = await client.post("/v1/challenges/spend-1000-7d/join", headers=m.headers)
        assert r.json()["deadline"] == "2026-11-17T10:00:00+08:00"
        await send(m, "purchase", "2026-11-11T12:00:00+08:00", amount=600)
    day8 = await send(slow, "purchase", "2026-11-17T10:00:00+08:00", amount=500)  # the deadline instant itself
    assert day8["challenges"] == []
    ok = await send(quick, "purchase", "2026-11-17T09:59:59+08:00", amount=400.5)
    assert ok["challenges"][-1]["status"] == "completed" and ok["challenges"][-1]["current"] == 1000.5

    clock.set("2026-11-17T10:00:00+08:00")
    from app.challenges import tasks
    async with app.state.db.sessionmaker() as s, s.begin():
        assert await tasks.expire_participations(s, app.state.settings) == 1
    async with app.state.db.sessionmaker() as s, s.begin():
        assert await tasks.expire_participations(s, app.state.settings) == 0
    mine = await me_challenges(client, slow)
    assert mine[0]["status"] == "expired" and mine[0]["steps"][0]["current"] == 600
    assert mine[0]["time_left_seconds"] is None
    expired = await outbox("challenge.expired", slow.external_id)
    assert len(expired) == 1 and expired[0]["challenge"] == "spend-1000-7d"
    assert await outbox("challenge.expired", quick.external_id) == []


async def test_engaged_member_level_gate(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any
) -> None:
    await make_challenge("engaged-only", [step("Comment", "comment")],
                         eligibility={"tiers": [], "segments": [], "min_level": "Engaged Member",
                                      "required_badge": None})
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "big-spender", "name": "Big Spender", "criteria": [{"event": "purchase", "threshold": 1}],
        "points": 50, "status": "active"})
    assert r.status_code == 201, r.text
    m = await member()
    listed = (await client.get("/v1/challenges", headers=m.headers)).json()
    assert listed[0]["eligible"] is False and listed[0]["joined"] is False
    assert listed[0]["reasons"] == [{"rule": "min_level", "required": "Engaged Member",
                                     "text": "Requires Engaged Member level"}]
    assert listed[0]["reason_text"] == "Requires Engaged Member level"
    zh = {**m.headers, "Accept-Language": "zh_CN"}
    assert (await client.get("/v1/challenges", headers=zh)).json()[0]["reason_text"] == "需达到Engaged Member等级"
    r = await client.post("/v1/challenges/engaged-only/join", headers=zh)
    assert r.status_code == 403 and r.json()["error"]["message"] == "需达到Engaged Member等级"
    r = await client.post("/v1/challenges/engaged-only/join", headers=m.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "not_eligible"
    assert r.json()["error"]["details"]["reasons"][0]["rule"] == "min_level"

    await send(m, "purchase", "2026-11-20T10:00:00+08:00", amount=10)  # badge worth 50 points → Engaged Member
    one = (await client.get("/v1/challenges/engaged-only", headers=m.headers)).json()
    assert one["eligible"] is True and one["reasons"] == [] and one["reason_text"] is None
    r = await client.post("/v1/challenges/engaged-only/join", headers=m.headers)
    assert r.status_code == 201, r.text


async def test_tier_exclusive_challenge(client: httpx.AsyncClient, member: Any, make_challenge: Any) -> None:
    await make_challenge("premium-only", [step("Check in", "checkin")],
                         eligibility={"tiers": ["premium"], "segments": [], "min_level": None, "required_badge": None})
    basic, premium = await member(tier="basic"), await member(tier="premium")
    r = await client.post("/v1/challenges/premium-only/join", headers=basic.headers)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "Premium members only"
    assert r.json()["error"]["details"]["reasons"] == [{"rule": "tier", "required": ["premium"],
                                                        "text": "Premium members only"}]
    r = await client.post("/v1/challenges/premium-only/join", headers=premium.headers)
    assert r.status_code == 201
    again = await client.post("/v1/challenges/premium-only/join", headers=premium.headers)
    assert again.status_code == 200 and again.json()["joined_at"] == r.json()["joined_at"]
    view = (await client.get("/v1/challenges/premium-only", headers=premium.headers)).json()
    assert view["eligible"] is True and view["joined"] is True and view["participation_status"] == "active"


async def test_events_before_joining_do_not_count_but_clock_skew_is_tolerated(
    client: httpx.AsyncClient, member: Any, send: Any, make_challenge: Any, clock: Any
) -> None:
    """Only events after joining count; one received after the join whose occurred_at is a few seconds
    (up to a minute) before joined_at — the integrator's clock behind ours — still counts."""
    await make_challenge("post-four", [step("Post", "post", 4)])
    m = await member()
    await send(m, "post", "2026-11-20T09:59:59+08:00")  # received before joining: never counts
    clock.set("2026-11-20T10:00:00.750000+08:00")
    assert (await client.post("/v1/challenges/post-four/join", headers=m.headers)).status_code == 201

    day_before = await send(m, "post", "2026-11-19T10:00:00+08:00")
    hour_before = await send(m, "post", "2026-11-20T09:00:00+08:00")
    two_minutes_before = await send(m, "post", "2026-11-20T09:58:00+08:00")
    assert day_before["challenges"] == hour_before["challenges"] == two_minutes_before["challenges"] == []

    same_second = await send(m, "post", "2026-11-20T10:00:00+08:00")  # second precision, before joined_at
    assert same_second["challenges"][0]["current"] == 1
    skewed = await send(m, "post", "2026-11-20T09:59:20+08:00")  # forty seconds behind
    assert skewed["challenges"][0]["current"] == 2
    after = await send(m, "post", "2026-11-20T10:05:00+08:00")
    assert after["challenges"][0]["current"] == 3
    mine = await me_challenges(client, m)
    assert mine[0]["steps"][0]["current"] == 3 and mine[0]["status"] == "active"


async def test_an_event_inside_the_join_grace_completes_the_challenge_no_earlier_than_the_join(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any, clock: Any
) -> None:
    # The event occurred 30 s before the member joined (clock skew between the POS and the Mini Program): it
    # counts, but the challenge is not completed before it was joined, and its time to complete is not negative.
    await make_challenge("photo", [step("Add a photo", "profile.image", 1)],
                         rewards={"points_per_step": 1, "bonus_points": 5, "badge": None, "voucher": None})
    m = await member()
    clock.set("2026-11-20T10:00:30+08:00")
    joined = await client.post("/v1/challenges/photo/join", headers=m.headers)
    assert joined.status_code == 201, joined.text
    out = await send(m, "profile.image", "2026-11-20T10:00:00+08:00")
    assert out["challenges"][-1]["status"] == "completed"
    (mine,) = (await client.get("/v1/me/challenges", headers=m.headers)).json()
    assert mine["completed_at"] == mine["joined_at"]
    assert mine["steps"][0]["done_at"] == mine["joined_at"]  # nor is a step done before it was joined
    stats = (await client.get("/v1/admin/challenges/photo/stats", headers=admin_headers)).json()
    assert stats["median_time_to_complete_seconds"] == 0


async def test_joining_again_after_the_deadline_answers_expired_not_active(
    client: httpx.AsyncClient, member: Any, make_challenge: Any, outbox: Any, clock: Any
) -> None:
    # The expiry job runs every minute; until it does, a second join must not tell the member that a participation
    # whose deadline has passed is still active with 0 seconds left (every other member view expires it first).
    await make_challenge("post-3-in-a-day", [step("Post 3 times", "post", 3)],
                         schedule={"type": "one_time", "time_limit_days": 1})
    m = await member()
    clock.set("2026-11-20T10:00:00+08:00")
    assert (await client.post("/v1/challenges/post-3-in-a-day/join", headers=m.headers)).status_code == 201
    clock.set("2026-11-21T10:00:01+08:00")
    again = await client.post("/v1/challenges/post-3-in-a-day/join", headers=m.headers)
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["time_left_seconds"]) == ("expired", None)
    assert len(await outbox("challenge.expired", m.external_id)) == 1
    await client.post("/v1/challenges/post-3-in-a-day/join", headers=m.headers)
    assert len(await outbox("challenge.expired", m.external_id)) == 1


async def test_an_event_arriving_after_the_deadline_counts_for_no_one_whether_or_not_expiry_ran(
    client: httpx.AsyncClient, member: Any, send: Any, make_challenge: Any, clock: Any
) -> None:
    """A participation past its deadline is settled: an event that occurred in time but arrives after the deadline
    does not complete it, whether the expiry job (or a read) has expired it yet or not."""
    await make_challenge("post-in-a-day", [step("Post", "post")], schedule={"type": "one_time", "time_limit_days": 1},
                         rewards={"points_per_step": 0, "bonus_points": 20})
    untouched, looked = await member(), await member()
    clock.set("2026-11-20T10:00:00+08:00")
    for m in (untouched, looked):
        r = await client.post("/v1/challenges/post-in-a-day/join", headers=m.headers)
        assert r.status_code == 201, r.text
    clock.set("2026-11-21T11:00:00+08:00")
    assert (await me_challenges(client, looked))[0]["status"] == "expired"  # the read expired this one
    for m in (untouched, looked):
        out = await send(m, "post", "2026-11-21T09:00:00+08:00")  # in time, but it arrives after the deadline
        assert out["challenges"] == [] and out["points_credited"] == 0
    assert [c["status"] for c in await me_challenges(client, untouched)] == ["expired"]


async def test_a_recurring_challenge_says_its_one_time_badge_is_awarded_only_the_first_time(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any,
    outbox: Any, clock: Any,
) -> None:
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "weekly-poster", "name": "Weekly Poster", "visibility": "invite_only", "status": "active"})
    assert r.status_code == 201, r.text
    await make_challenge("post-weekly", [step("Post", "post")], schedule={"type": "recurring", "recurrence": "weekly"},
                         rewards={"points_per_step": 0, "bonus_points": 5, "badge": "weekly-poster"})
    m = await member()
    rewards = []
    for monday in ("2026-11-16", "2026-11-23"):
        clock.set(f"{monday}T10:00:00+08:00")
        assert (await client.post("/v1/challenges/post-weekly/join", headers=m.headers)).status_code == 201
        out = await send(m, "post", f"{monday}T11:00:00+08:00")
        rewards.append(out["challenges"][-1]["rewards"]["badge"])
    assert rewards[0]["key"] == "weekly-poster" and rewards[0]["award_id"] is not None
    assert rewards[1] is None  # held already: not awarded again, and not said to be
    assert [p["badge"] for p in await outbox("challenge.completed", m.external_id)] == ["weekly-poster", None]
