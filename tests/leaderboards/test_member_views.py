"""Members' leaderboard views: periods, ties, late events, privacy, filters, friends, metrics, neighbours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.leaderboards.helpers import SH, World, make_board, names, week_start


async def test_weekly_board_resets_at_monday_midnight_china_time(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    await world.member("A")
    monday = week_start()
    await world.buy("A", 80, monday - timedelta(minutes=1))  # Sunday 23:59 +08:00: last week
    await world.buy("A", 5, monday)  # Monday 00:00 +08:00: this week
    current = await world.view("top-spenders-weekly", "A")
    assert current["period"] == monday.strftime("%G-W%V")
    assert datetime.fromisoformat(current["period_start"]) == monday
    assert datetime.fromisoformat(current["period_end"]) == monday + timedelta(days=7)
    assert current["me"]["score"] == 5
    previous = await world.view("top-spenders-weekly", "A", period="previous")
    assert previous["period"] == (monday - timedelta(days=1)).strftime("%G-W%V")
    assert previous["me"]["score"] == 80 and previous["entries"][0]["score"] == 80
    by_id = await world.view("top-spenders-weekly", "A", period=previous["period"])
    assert by_id["me"]["score"] == 80


async def test_ties_share_a_rank_and_whoever_got_there_first_is_listed_first(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    for m in ("A", "B", "C", "D"):
        await world.member(m)
    t0 = week_start() + timedelta(hours=1)
    await world.buy("A", 100, t0 + timedelta(minutes=5))
    await world.buy("B", 60, t0)
    await world.buy("B", 40, t0 + timedelta(minutes=1))  # B reached 100 at t0+1 min, before A
    await world.buy("C", 50, t0)
    await world.buy("D", 150, t0 + timedelta(minutes=9))
    v = await world.view("top-spenders-weekly", "C")
    assert names(v) == [(1, "nick-D", 150), (2, "nick-B", 100), (2, "nick-A", 100), (4, "nick-C", 50)]
    assert v["total"] == 4 and v["me"]["rank"] == 4
    page2 = await world.view("top-spenders-weekly", "C", offset=2, limit=2)
    assert names(page2) == [(2, "nick-A", 100), (4, "nick-C", 50)]


async def test_late_event_counts_in_its_own_period(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, key="visits-daily", period="daily",
                     metric={"type": "count", "event": "visit", "where": []})
    await world.member("A")
    now = datetime.now(UTC)
    await world.event("A", "visit", now)
    await world.event("A", "visit", now - timedelta(days=1))  # posted today, happened yesterday
    await world.event("A", "visit", now - timedelta(days=1, minutes=1))
    today = await world.view("visits-daily", "A")
    assert today["period"] == now.astimezone(SH).date().isoformat()
    assert today["me"]["score"] == 1
    yesterday = await world.view("visits-daily", "A", period="previous")
    assert yesterday["period"] == (now.astimezone(SH).date() - timedelta(days=1)).isoformat()
    assert yesterday["me"]["score"] == 2


async def test_refund_with_negative_amount_lowers_spend_score(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    await world.member("A")
    await world.member("B")
    t = week_start() + timedelta(hours=2)
    await world.buy("A", 100, t)
    await world.buy("B", 80, t)
    await world.buy("A", -30, t + timedelta(minutes=1))  # refund
    v = await world.view("top-spenders-weekly", "A")
    assert names(v) == [(1, "nick-B", 80), (2, "nick-A", 70)]
    assert v["me"]["rank"] == 2 and v["me"]["score"] == 70


async def test_anonymous_board_masks_everyone_but_the_caller(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, privacy="anonymous", display={"nickname": True, "avatar": True,
                                                                         "tier": True})
    await world.member("A", tier="gold")
    await world.member("B", tier="silver")
    t = week_start() + timedelta(hours=2)
    await world.buy("A", 10, t)
    await world.buy("B", 20, t)
    v = await world.view("top-spenders-weekly", "A")
    b, a = v["entries"]
    assert b["masked"] is True and b["is_me"] is False
    assert b["nickname"].startswith("Member ·") and len(b["nickname"]) == len("Member ·") + 4
    assert b["avatar_url"] is None and b["tier"] is None
    assert a == {"rank": 2, "score": 10, "nickname": "nick-A", "avatar_url": "https://img.test/A.png",
                 "avatar": "https://img.test/A.png", "tier": "gold", "masked": False, "is_me": True}
    again = await world.view("top-spenders-weekly", "A")
    assert again["entries"][0]["nickname"] == b["nickname"]  # stable mask


async def test_opted_out_member_is_masked_to_others_but_sees_own_rank(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    hb = await world.member("B")
    await world.member("A")
    t = week_start() + timedelta(hours=2)
    await world.buy("A", 10, t)
    await world.buy("B", 20, t)
    assert (await client.get("/v1/me/preferences", headers=hb)).json() == {"leaderboard_opt_out": False}
    r = await client.put("/v1/me/preferences", json={"leaderboard_opt_out": True}, headers=hb)
    assert r.status_code == 200 and r.json() == {"leaderboard_opt_out": True}
    assert (await client.get("/v1/me/preferences", headers=hb)).json() == {"leaderboard_opt_out": True}
    seen_by_a = await world.view("top-spenders-weekly", "A")
    top = seen_by_a["entries"][0]
    assert top["masked"] is True and top["nickname"].startswith("Member ·") and top["avatar_url"] is None
    assert seen_by_a["entries"][1]["nickname"] == "nick-A"
    seen_by_b = await world.view("top-spenders-weekly", "B")
    assert seen_by_b["entries"][0] == {"rank": 1, "score": 20, "nickname": "nick-B",
                                       "avatar_url": "https://img.test/B.png", "avatar": "https://img.test/B.png",
                                       "masked": False, "is_me": True}
    assert seen_by_b["me"]["rank"] == 1
    assert (await client.put("/v1/me/preferences", json={"opt_in": True}, headers=hb)).status_code == 422
    r = await client.put("/v1/me/preferences", json={"opt_out": False}, headers=hb)  # a name a front end may use
    assert r.status_code == 200 and r.json() == {"leaderboard_opt_out": False}
    r = await client.put("/v1/me/preferences", json={"hide_from_leaderboards": True}, headers=hb)
    assert r.status_code == 200 and r.json() == {"leaderboard_opt_out": True}
    assert (await client.put("/v1/me/preferences", json={"leaderboard_opt_out": "yes"}, headers=hb)).status_code == 422


async def test_friends_scope_ranks_the_member_among_their_friends(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    for m in ("A", "B", "C", "D"):
        await world.member(m)
    r = await client.put("/v1/users/A/friends", json={"friends": ["B", "C"]}, headers=admin_headers)
    assert r.status_code == 200
    t = week_start() + timedelta(hours=2)
    for m, amount in (("A", 30), ("B", 50), ("C", 10), ("D", 999)):
        await world.buy(m, amount, t)
    v = await world.view("top-spenders-weekly", "A", scope="friends")
    assert v["filter"] == {"scope": "friends"}
    assert names(v) == [(1, "nick-B", 50), (2, "nick-A", 30), (3, "nick-C", 10)]
    assert v["total"] == 3
    assert v["me"]["rank"] == 2
    assert [e["nickname"] for e in v["me"]["above"]] == ["nick-B"]
    assert [e["nickname"] for e in v["me"]["below"]] == ["nick-C"]
    everyone = await world.view("top-spenders-weekly", "A")
    assert everyone["me"]["rank"] == 3 and everyone["total"] == 4


async def test_city_filter_and_small_groups_show_no_names(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, min_group_size=3)
    for m, city in (("A", "Shanghai"), ("B", "Shanghai"), ("C", "Shanghai"), ("D", "Beijing"), ("E", "Beijing")):
        await world.member(m, city=city)
    t = week_start() + timedelta(hours=2)
    for m, amount in (("A", 10), ("B", 20), ("C", 30), ("D", 500), ("E", 5)):
        await world.buy(m, amount, t)
    sh = await world.view("top-spenders-weekly", "A", city="Shanghai")
    assert sh["filter"] == {"city": "Shanghai"}
    assert names(sh) == [(1, "nick-C", 30), (2, "nick-B", 20), (3, "nick-A", 10)]
    assert sh["total"] == 3 and sh["me"]["rank"] == 3
    bj = await world.view("top-spenders-weekly", "E", city="Beijing")  # 2 members < min_group_size 3
    assert bj["total"] == 2
    assert bj["entries"][0]["masked"] is True and bj["entries"][0]["nickname"].startswith("Member ·")
    assert bj["entries"][1]["masked"] is False and bj["entries"][1]["is_me"] is True
    assert bj["me"]["above"][0]["masked"] is True
    outsider = await world.view("top-spenders-weekly", "A", city="Beijing")
    assert outsider["me"] is None and all(e["masked"] for e in outsider["entries"])


async def test_category_dimension_ranks_spend_per_category(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    for m in ("A", "B"):
        await world.member(m)
    t = week_start() + timedelta(hours=2)
    await world.buy("A", 100, t, category="shoes")
    await world.buy("A", 500, t, category="bags")
    await world.buy("B", 300, t, category="shoes")
    await world.buy("B", 1, t)  # no category: whole board only
    shoes = await world.view("top-spenders-weekly", "A", category="shoes")
    assert shoes["filter"] == {"category": "shoes"}
    assert names(shoes) == [(1, "nick-B", 300), (2, "nick-A", 100)]
    whole = await world.view("top-spenders-weekly", "A")
    assert names(whole) == [(1, "nick-A", 600), (2, "nick-B", 301)]
    bad = await client.get("/v1/leaderboards/top-spenders-weekly", params={"city": "X", "category": "shoes"},
                           headers=world.headers["A"])
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "too_many_filters"


async def test_where_conditions_filter_what_counts(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, key="store-visits", period="monthly", dimensions=[],
                     metric={"type": "count", "event": "visit",
                             "where": [{"field": "store_id", "op": "in", "value": ["s1", "s2"]}]})
    await world.member("A")
    now = datetime.now(UTC)
    for store in ("s1", "s2", "s9"):
        await world.event("A", "visit", now, store_id=store)
    await world.event("A", "purchase", now, amount=10, store_id="s1")
    v = await world.view("store-visits", "A")
    assert v["me"]["score"] == 2 and v["period"] == now.astimezone(SH).strftime("%Y-%m")


async def test_points_and_badges_metrics(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, key="points-all", period="all_time", dimensions=["city"],
                     metric={"type": "points"})
    await make_board(client, admin_headers, key="badges-month", period="monthly", dimensions=[],
                     metric={"type": "badges"})
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "first-visit", "name": "First visit", "points": 10, "status": "active",
        "criteria": [{"event": "visit", "aggregate": "count", "threshold": 1}],
    })
    assert r.status_code == 201, r.text
    await world.member("A", city="Hangzhou")
    await world.member("B", city="Hangzhou")
    out = await world.event("A", "visit")
    assert [b["key"] for b in out["badges_awarded"]] == ["first-visit"]
    r = await client.post("/v1/admin/users/B/points", json={"amount": 25, "reason": "goodwill"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    points = await world.view("points-all", "A")
    assert points["period"] == "all" and points["period_start"] is None
    assert names(points) == [(1, "nick-B", 25), (2, "nick-A", 10)]
    assert (await world.view("points-all", "A", city="Hangzhou"))["total"] == 2
    badges = await world.view("badges-month", "A")
    assert badges["me"] == {"rank": 1, "score": 1, "above": [], "below": []}
    assert badges["total"] == 1


@pytest.mark.sqlite_too
async def test_a_late_events_points_score_in_its_own_period_and_a_revoke_takes_them_back_there(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World, backend: str
) -> None:
    """As a late purchase's spend lands in its own week, so do the points it earned."""
    await make_board(client, admin_headers, key="points-week", metric={"type": "points"}, dimensions=[])
    await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "first-visit", "name": "First visit", "points": 10, "status": "active",
        "criteria": [{"event": "visit", "threshold": 1}]})
    await world.member("A")
    last_week = week_start() - timedelta(days=3)
    out = await world.event("A", "visit", last_week)
    assert [b["key"] for b in out["badges_awarded"]] == ["first-visit"]
    assert (await world.view("points-week", "A", period="previous"))["me"]["score"] == 10
    assert (await world.view("points-week", "A"))["me"] is None
    r = await client.request("DELETE", "/v1/admin/users/A/badges/first-visit", json={"reason": "test"},
                             headers=admin_headers)
    assert r.status_code == 200 and r.json()["points_reversed"] == 10
    assert (await world.view("points-week", "A", period="previous"))["me"]["score"] == 0
    assert (await world.view("points-week", "A"))["me"] is None


@pytest.mark.sqlite_too
async def test_badges_boards_count_manual_grants_and_drop_revoked_badges(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, key="badges-all", period="all_time", dimensions=[],
                     metric={"type": "badges"})
    for key, crit in (("auto", [{"event": "visit", "threshold": 1}]), ("man", [])):
        r = await client.post("/v1/admin/badges", headers=admin_headers, json={
            "key": key, "name": key, "criteria": crit, "visibility": "public" if crit else "invite_only"})
        assert r.status_code == 201, r.text
    await world.member("A")
    await world.member("B")
    await world.event("A", "visit")
    r = await client.post("/v1/admin/users/B/badges/man", json={"reason": "launch guest"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    r = await client.post("/v1/admin/users/A/badges/man", json={"reason": "launch guest"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert names(await world.view("badges-all", "A")) == [(1, "nick-A", 2), (2, "nick-B", 1)]
    r = await client.request("DELETE", "/v1/admin/users/A/badges/auto", json={"reason": "mistake"},
                             headers=admin_headers)
    assert r.status_code == 200, r.text
    view = await world.view("badges-all", "A")
    assert view["me"]["score"] == 1
    assert sorted(score for _rank, _name, score in names(view)) == [1, 1]


async def test_revoking_a_badge_a_board_never_counted_leaves_that_board_alone(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "auto", "name": "auto", "criteria": [{"event": "visit", "threshold": 1}]})
    assert r.status_code == 201, r.text
    await world.member("A")
    await world.member("B")
    await world.event("A", "visit")
    await world.event("B", "visit")
    # Created after both awards: boards do not count what came before them.
    await make_board(client, admin_headers, key="badges-late", period="all_time", dimensions=[],
                     metric={"type": "badges"})
    await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "later", "name": "later", "criteria": [{"event": "post", "threshold": 1}]})
    await world.event("A", "post")
    r = await client.request("DELETE", "/v1/admin/users/A/badges/auto", json={"reason": "fraud"},
                             headers=admin_headers)
    assert r.status_code == 200, r.text
    view = await world.view("badges-late", "A")
    assert names(view) == [(1, "nick-A", 1)]  # "later" still counts; "auto" was never counted here


async def test_me_comes_with_the_members_just_above_and_below(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    t = week_start() + timedelta(hours=2)
    scores = {"A": 70, "B": 60, "C": 50, "D": 50, "E": 40, "F": 30, "G": 20}
    for m, s in scores.items():
        await world.member(m)
        await world.buy(m, s, t + timedelta(minutes=len(m) + ord(m)))
    v = await world.view("top-spenders-weekly", "D", limit=2)
    me = v["me"]
    assert (me["rank"], me["score"]) == (3, 50)
    assert [(e["rank"], e["nickname"]) for e in me["above"]] == [(2, "nick-B"), (3, "nick-C")]
    assert [(e["rank"], e["nickname"]) for e in me["below"]] == [(5, "nick-E"), (6, "nick-F")]
    assert len(v["entries"]) == 2 and v["total"] == 7
    top = await world.view("top-spenders-weekly", "A")
    assert top["me"]["above"] == [] and [e["rank"] for e in top["me"]["below"]] == [2, 3]
    bottom = await world.view("top-spenders-weekly", "G")
    assert [e["rank"] for e in bottom["me"]["above"]] == [5, 6] and bottom["me"]["below"] == []


async def test_member_not_on_board_gets_null_me(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    await world.member("A")
    v = await world.view("top-spenders-weekly", "A")
    assert v["me"] is None and v["entries"] == [] and v["total"] == 0


async def test_request_validation_and_visibility(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    await make_board(client, admin_headers, key="secret-draft", status="draft")
    await make_board(client, admin_headers, key="old-one", status="archived")
    h = await world.member("A")
    listed = await client.get("/v1/leaderboards", headers=h)
    assert listed.status_code == 200
    assert [b["key"] for b in listed.json()] == ["top-spenders-weekly"]
    assert listed.json()[0]["current_period"] == week_start().strftime("%G-W%V")
    assert (await client.get("/v1/leaderboards/top-spenders-weekly?limit=101", headers=h)).status_code == 422
    assert (await client.get("/v1/leaderboards/top-spenders-weekly?limit=100", headers=h)).status_code == 200
    r = await client.get("/v1/leaderboards/nope", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "leaderboard_not_found"
    assert (await client.get("/v1/leaderboards/secret-draft", headers=h)).status_code == 404
    assert (await client.get("/v1/leaderboards/old-one", headers=h)).status_code == 200  # past periods readable
    for bad in ("2026-13", "W48", "garbage"):
        r = await client.get(f"/v1/leaderboards/top-spenders-weekly?period={bad}", headers=h)
        assert r.status_code == 422, bad
    r = await client.get("/v1/leaderboards/top-spenders-weekly?scope=enemies", headers=h)
    assert r.status_code == 422
    assert (await client.get("/v1/leaderboards/top-spenders-weekly")).status_code == 401
    assert (await client.get("/v1/leaderboards/top-spenders-weekly", headers=admin_headers)).status_code == 403


async def test_draft_board_collects_nothing_and_unknown_dimension_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, status="draft", dimensions=[])
    await world.member("A", city="Shanghai")
    await world.buy("A", 10)
    r = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"status": "active"},
                           headers=admin_headers)
    assert r.status_code == 200
    v = await world.view("top-spenders-weekly", "A")
    assert v["total"] == 0
    r = await client.get("/v1/leaderboards/top-spenders-weekly?city=Shanghai", headers=world.headers["A"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_dimension"
    # A client's cache buster ("_t") is no dimension and no mistake: ignored, the whole board answers.
    r = await client.get("/v1/leaderboards/top-spenders-weekly?_t=1732550400", headers=world.headers["A"])
    assert r.status_code == 200 and r.json()["filter"] == {}, r.text
    # An empty period is the current one, as an empty city is no filter.
    r = await client.get("/v1/leaderboards/top-spenders-weekly?period=&city=", headers=world.headers["A"])
    assert r.status_code == 200 and r.json()["period"] == v["period"], r.text


async def test_a_view_value_no_event_can_have_and_a_period_before_1970_are_422s(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """Refused, not dropped: an overlong filter answered with the whole board as if it were the view."""
    await make_board(client, admin_headers, dimensions=["store"])
    h = await world.member("A")
    await world.buy("A", 10, store="x" * 150)  # "store:" + 150 characters: a view can be 160 long
    r = await client.get("/v1/leaderboards/top-spenders-weekly", params={"store": "x" * 150}, headers=h)
    assert r.status_code == 200 and r.json()["filter"] == {"store": "x" * 150} and r.json()["total"] == 1, r.text
    r = await client.get("/v1/leaderboards/top-spenders-weekly", params={"store": "x" * 155}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.store", r.text
    r = await client.get("/v1/admin/leaderboards/top-spenders-weekly/top", params={"store": "x" * 155},
                         headers=admin_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_value"
    r = await client.get("/v1/leaderboards/top-spenders-weekly?period=1900-W01", headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period"
    r = await client.get("/v1/leaderboards/top-spenders-weekly?period=1970-W02", headers=h)
    assert r.status_code == 200 and r.json()["period_start"] == "1970-01-05T00:00:00+08:00"


@pytest.mark.sqlite_too
async def test_basic_ranking_on_both_backends(
    client: httpx.AsyncClient, admin_headers: dict[str, str], login: Any, backend: str
) -> None:
    world = World(client, admin_headers, login)
    await make_board(client, admin_headers)
    for m in ("A", "B", "C"):
        await world.member(m, city="Shanghai")
    t = week_start() + timedelta(hours=2)
    await world.buy("A", 12.5, t)
    await world.buy("B", 40, t)
    await world.buy("C", 12.5, t + timedelta(minutes=1))
    await world.buy("B", -0.25, t + timedelta(minutes=2))
    v = await world.view("top-spenders-weekly", "C", city="Shanghai")
    assert names(v) == [(1, "nick-B", 39.75), (2, "nick-A", 12.5), (2, "nick-C", 12.5)]
    assert v["me"]["rank"] == 2


async def test_a_refund_down_to_a_tie_ranks_behind_whoever_had_that_score_first(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    await world.member("A")
    await world.member("B")
    t = week_start() + timedelta(hours=2)
    await world.buy("A", 300, t)
    await world.buy("B", 50, t + timedelta(minutes=1))
    await world.buy("A", -250, t + timedelta(minutes=2))  # A drops to 50 after B got there
    entries = (await world.view("top-spenders-weekly", "A"))["entries"]
    assert [(e["rank"], e["score"], e["is_me"]) for e in entries] == [(1, 50, False), (1, 50, True)]


async def test_a_period_id_in_non_ascii_digits_is_a_422_not_an_empty_board_or_a_500(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """Python's \\d matches Arabic-Indic digits: "٢٠٢٦-W48" parsed as 2026-W48 but was echoed and looked up as
    itself (an empty board), and the CSV export put it in its Content-Disposition header (a 500). `$` let a
    trailing newline through the same way."""
    await make_board(client, admin_headers)
    await make_board(client, admin_headers, key="spend-daily", period="daily")
    h = await world.member("A")
    for key, period in (("top-spenders-weekly", "٢٠٢٦-W48"), ("top-spenders-weekly", "2026-W٤٨"),
                        ("spend-daily", "٢٠٢٦-11-23"), ("top-spenders-weekly", "2026-W48\n")):
        r = await client.get(f"/v1/leaderboards/{key}", params={"period": period}, headers=h)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period", r.text
        for report in ("top", "export.csv", "distribution"):
            r = await client.get(f"/v1/admin/leaderboards/{key}/{report}", params={"period": period},
                                 headers=admin_headers)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_period", (report, r.text)


async def test_a_period_in_year_9999_names_the_supported_range_like_year_1(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """"0001-W01" was refused as outside 1970-2199, but "9999-W52" (whose end is in year 10000) answered Python's
    own "year 10000 is out of range"."""
    await make_board(client, admin_headers)
    await make_board(client, admin_headers, key="spend-daily", period="daily")
    await make_board(client, admin_headers, key="spend-monthly", period="monthly")
    h = await world.member("A")
    for key, period in (("top-spenders-weekly", "9999-W52"), ("spend-daily", "9999-12-31"),
                        ("spend-monthly", "9999-12"), ("top-spenders-weekly", "0001-W01")):
        r = await client.get(f"/v1/leaderboards/{key}", params={"period": period}, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == {"code": "invalid_period", "message": "period must be between 1970 and 2199",
                                     "details": {"period": period}}, r.text


async def test_a_member_reads_every_category_view_an_event_can_land_in(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """`category` is a declared query parameter: its length cap (120) was below what a view holds (151 characters
    after "category:"), so a member got a 422 for a view that has scores and that an operator could read."""
    await make_board(client, admin_headers)
    h = await world.member("A")
    long = "c" * 151
    await world.buy("A", 10, week_start() + timedelta(hours=2), category=long)
    r = await client.get("/v1/leaderboards/top-spenders-weekly", params={"category": long}, headers=h)
    assert r.status_code == 200 and r.json()["total"] == 1 and r.json()["me"]["score"] == 10, r.text
    r = await client.get("/v1/leaderboards/top-spenders-weekly", params={"category": long + "c"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.category", r.text


async def test_friends_is_asked_for_with_scope_not_as_a_filter_value(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """`friends` is a dimension with no values: `?friends=1` answered 200 with an empty view ("friends:1", which no
    event can land in) as if it were the friends view, to members and in the admin reports."""
    await make_board(client, admin_headers)
    h = await world.member("A")
    await world.buy("A", 10, week_start() + timedelta(hours=2))
    r = await client.get("/v1/leaderboards/top-spenders-weekly", params={"friends": "1"}, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_value"
    assert r.json()["error"]["details"][0]["field"] == "query.friends"
    for report in ("top", "distribution", "export.csv"):
        r = await client.get(f"/v1/admin/leaderboards/top-spenders-weekly/{report}", params={"friends": "1"},
                             headers=admin_headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == "member_view_only", (report, r.text)
    assert (await world.view("top-spenders-weekly", "A", scope="friends"))["total"] == 1


async def test_revoking_an_award_from_before_a_points_board_leaves_that_board_alone(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """As on a badges board: the points of an award made before the board existed were never counted there, so
    taking them back must not put the member below zero on it (A showed -10 on a board they never scored on)."""
    r = await client.post("/v1/admin/badges", headers=admin_headers, json={
        "key": "first-visit", "name": "First visit", "points": 10, "status": "active",
        "criteria": [{"event": "visit", "threshold": 1}]})
    assert r.status_code == 201, r.text
    await world.member("A")
    await world.member("B")
    await world.event("A", "visit")  # before the board
    await make_board(client, admin_headers, key="points-week", metric={"type": "points"}, dimensions=["city"])
    await world.event("B", "visit")
    for m in ("A", "B"):
        r = await client.request("DELETE", f"/v1/admin/users/{m}/badges/first-visit", json={"reason": "test"},
                                 headers=admin_headers)
        assert r.status_code == 200 and r.json()["points_reversed"] == 10, r.text
    view = await world.view("points-week", "A")
    assert names(view) == [(1, "nick-B", 0)] and view["me"] is None
    r = await client.post("/v1/admin/users/A/points", json={"amount": 5, "reason": "goodwill"}, headers=admin_headers)
    assert r.status_code == 200, r.text
    r = await client.post("/v1/admin/users/A/points", json={"amount": -2, "reason": "correction"},
                          headers=admin_headers)
    assert r.status_code == 200, r.text
    assert (await world.view("points-week", "A"))["me"]["score"] == 3  # debits still net the period's ledger


async def test_a_count_board_of_badge_awards_drops_a_revoked_award(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """A `count` board of `badge.awarded` events (say, of one badge, with `where`) ranks awards as a badges board
    does: a revoked award left it counted there."""
    for key in ("first-visit", "first-post"):
        event = key.split("-")[1]
        r = await client.post("/v1/admin/badges", headers=admin_headers, json={
            "key": key, "name": key, "criteria": [{"event": event, "threshold": 1}]})
        assert r.status_code == 201, r.text
    await make_board(client, admin_headers, key="visit-badges", dimensions=[], metric={
        "type": "count", "event": "badge.awarded", "where": [{"field": "badge", "op": "eq", "value": "first-visit"}]})
    await world.member("A")
    await world.event("A", "visit")
    await world.event("A", "post")
    assert (await world.view("visit-badges", "A"))["me"]["score"] == 1
    r = await client.request("DELETE", "/v1/admin/users/A/badges/first-visit", json={"reason": "fraud"},
                             headers=admin_headers)
    assert r.status_code == 200, r.text
    assert (await world.view("visit-badges", "A"))["me"]["score"] == 0


async def test_an_archived_board_opens_on_its_final_standings(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    await world.member("A")
    last_week = week_start() - timedelta(days=3)
    await world.buy("A", 40, at=last_week)
    r = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"status": "archived"},
                           headers=admin_headers)
    assert r.status_code == 200, r.text
    v = await world.view("top-spenders-weekly", "A")
    assert v["period"] == last_week.strftime("%G-W%V") and [e["score"] for e in v["entries"]] == [40]
    # Any period can still be asked for.
    assert (await world.view("top-spenders-weekly", "A", period=week_start().strftime("%G-W%V")))["entries"] == []
    # The admin views open on the same final standings.
    top = (await client.get("/v1/admin/leaderboards/top-spenders-weekly/top", headers=admin_headers)).json()
    assert top["period"] == last_week.strftime("%G-W%V"), top
