"""Admin leaderboards: the definition contract, validation, and reports on any period."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.leaderboards.helpers import World, board_body, make_board, week_start


async def test_crud_round_trip_with_the_admin_app_field_names(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    body = board_body(dimensions=["city"], min_group_size=5)
    r = await client.post("/v1/admin/leaderboards", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    created = r.json()
    for name, value in body.items():
        assert created[name] == value, name
    assert created["current_period"] == week_start().strftime("%G-W%V")
    dup = await client.post("/v1/admin/leaderboards", json=body, headers=admin_headers)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "leaderboard_exists"
    listed = await client.get("/v1/admin/leaderboards?status=active", headers=admin_headers)
    assert [b["key"] for b in listed.json()] == ["top-spenders-weekly"]
    assert (await client.get("/v1/admin/leaderboards?status=draft", headers=admin_headers)).json() == []
    got = await client.get("/v1/admin/leaderboards/top-spenders-weekly", headers=admin_headers)
    assert got.json()["metric"] == body["metric"]
    replaced = await client.put("/v1/admin/leaderboards/top-spenders-weekly",
                                json={**body, "title": "Big Spenders", "privacy": "anonymous"}, headers=admin_headers)
    assert replaced.status_code == 200 and replaced.json()["title"] == "Big Spenders"
    patched = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"status": "archived"},
                                 headers=admin_headers)
    assert patched.json()["status"] == "archived" and patched.json()["privacy"] == "anonymous"
    renamed = await client.put("/v1/admin/leaderboards/top-spenders-weekly", json={**body, "key": "other"},
                               headers=admin_headers)
    assert renamed.status_code == 422
    assert (await client.delete("/v1/admin/leaderboards/top-spenders-weekly", headers=admin_headers)).status_code == 204
    assert (await client.get("/v1/admin/leaderboards/top-spenders-weekly", headers=admin_headers)).status_code == 404
    assert (await client.delete("/v1/admin/leaderboards/top-spenders-weekly", headers=admin_headers)).status_code == 404


async def test_definitions_are_validated(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    bad = [
        {"metric": {"type": "sum", "event": "purchase"}},  # sum needs field
        {"metric": {"type": "count", "event": "visit", "field": "amount"}},
        {"metric": {"type": "count"}},  # needs event
        {"metric": {"type": "points", "event": "purchase"}},
        {"metric": {"type": "median", "event": "purchase"}},
        {"metric": {"type": "count", "event": "visit", "where": [{"field": "x", "op": "gt", "value": "a"}]}},
        {"period": "hourly"},
        {"dimensions": ["city", "city"]},
        {"dimensions": ["Bad Name"]},
        {"privacy": "secret"},
        {"min_group_size": 0},
        {"status": "live"},
        {"key": "Has Spaces"},
        {"colour": "red"},
    ]
    for overrides in bad:
        r = await client.post("/v1/admin/leaderboards", json=board_body(**overrides), headers=admin_headers)
        assert r.status_code == 422, overrides
    member = await client.get("/v1/admin/leaderboards", headers={"Authorization": "Bearer nope"})
    assert member.status_code == 401


async def test_metric_and_period_are_fixed_once_scores_exist(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers)
    r = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"period": "monthly"},
                           headers=admin_headers)
    assert r.status_code == 200  # no scores yet
    await world.member("A")
    await world.buy("A", 10)
    r = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"period": "weekly"},
                           headers=admin_headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "leaderboard_has_scores"
    r = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"title": "Renamed", "min_group_size": 9},
                           headers=admin_headers)
    assert r.status_code == 200


async def test_a_patch_naming_the_same_metric_without_its_defaults_changes_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """A PATCH that names the metric as the README's create body does (no `where`) stores it whole: the board's
    GET body can be PUT back once it has scores, and naming the same metric again is not a change."""
    path = "/v1/admin/leaderboards/top-spenders-weekly"
    await make_board(client, admin_headers)
    short = {"type": "sum", "event": "purchase", "field": "amount"}
    r = await client.patch(path, json={"metric": short, "display": {"tier": True}}, headers=admin_headers)
    assert r.status_code == 200, r.text
    await world.member("A")
    await world.buy("A", 10)
    for metric in (short, {**short, "where": []}):
        r = await client.patch(path, json={"metric": metric}, headers=admin_headers)
        assert r.status_code == 200, r.text
    got = (await client.get(path, headers=admin_headers)).json()
    assert got["display"] == {"nickname": True, "avatar": True, "tier": True}
    r = await client.put(path, json=got, headers=admin_headers)
    assert r.status_code == 200, r.text


async def test_a_view_cannot_be_added_to_a_board_with_scores_but_can_be_dropped(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """A city or attribute view counts only what arrives while it is listed: added (or listed again) on a board with
    scores it would rank fewer events than the whole board, and nothing would say so."""
    await make_board(client, admin_headers, dimensions=["city"])
    path = "/v1/admin/leaderboards/top-spenders-weekly"
    r = await client.patch(path, json={"dimensions": ["city", "category"]}, headers=admin_headers)
    assert r.status_code == 200  # no scores yet
    await world.member("A")
    await world.buy("A", 10)
    r = await client.patch(path, json={"dimensions": []}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["dimensions"] == []
    for dims in (["category"], ["city", "friends"]):
        r = await client.patch(path, json={"dimensions": dims}, headers=admin_headers)
        assert r.status_code == 409 and r.json()["error"]["code"] == "leaderboard_has_scores", r.text
    r = await client.patch(path, json={"dimensions": ["friends"]}, headers=admin_headers)
    assert r.status_code == 200, r.text  # a member's friends are ranked on the whole board's scores


async def test_a_null_in_a_patch_is_a_422_naming_the_field_like_any_other(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_board(client, admin_headers)
    for name in ("title", "description", "metric", "period", "dimensions", "display", "privacy", "min_group_size",
                 "status"):
        r = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={name: None},
                               headers=admin_headers)
        assert r.status_code == 422, (name, r.text)
        error = r.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"] == [{"field": f"body.{name}", "message": "cannot be null"}]


async def test_an_operator_reads_and_exports_a_city_or_attribute_view(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, dimensions=["city", "category", "friends"])
    for m, city, amount in (("A", "Shanghai", 10), ("B", "Beijing", 50), ("C", "Shanghai", 30)):
        await world.member(m, city=city)
        await world.buy(m, amount, category="shoes" if m != "C" else "bags")
    url = "/v1/admin/leaderboards/top-spenders-weekly"
    top = (await client.get(f"{url}/top", params={"city": "Shanghai"}, headers=admin_headers)).json()
    assert top["filter"] == {"city": "Shanghai"} and top["total"] == 2
    assert [(e["rank"], e["user_id"]) for e in top["entries"]] == [(1, "C"), (2, "A")]
    top = (await client.get(f"{url}/top", params={"category": "shoes"}, headers=admin_headers)).json()
    assert [e["user_id"] for e in top["entries"]] == ["B", "A"]
    assert (await client.get(f"{url}/top", headers=admin_headers)).json()["filter"] == {}
    csv_r = await client.get(f"{url}/export.csv", params={"city": "Shanghai"}, headers=admin_headers)
    assert csv_r.status_code == 200 and "-Shanghai.csv" in csv_r.headers["content-disposition"]
    assert [r[1] for r in list(csv.reader(io.StringIO(csv_r.text)))[1:]] == ["C", "A"]
    for bad, code in (({"city": "Shanghai", "category": "shoes"}, "too_many_filters"),
                      ({"tier": "gold"}, "unknown_dimension"), ({"scope": "friends"}, "member_view_only")):
        r = await client.get(f"{url}/top", params=bad, headers=admin_headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (bad, r.text)


async def test_the_score_distribution_of_a_view_is_that_views_not_the_whole_boards(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """`?city=` on the distribution was dropped without a word: the whole board's histogram came back as if it were
    the city's (an unknown view or scope=friends too, where `top` and the export refuse them)."""
    await make_board(client, admin_headers, dimensions=["city", "friends"])
    for m, city, amount in (("A", "Shanghai", 10), ("B", "Beijing", 100), ("C", "Shanghai", 30)):
        await world.member(m, city=city)
        await world.buy(m, amount)
    url = "/v1/admin/leaderboards/top-spenders-weekly/distribution"
    r = await client.get(url, params={"city": "Shanghai", "bins": 2}, headers=admin_headers)
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["participants"], d["min"], d["max"], d["filter"]) == (2, 10, 30, {"city": "Shanghai"})
    assert [(b["low"], b["high"], b["count"]) for b in d["bins"]] == [(10, 20, 1), (20, 30, 1)]
    whole = (await client.get(url, headers=admin_headers)).json()
    assert (whole["participants"], whole["max"], whole["filter"]) == (3, 100, {})
    for bad, code in (({"category": "shoes"}, "unknown_dimension"), ({"scope": "friends"}, "member_view_only")):
        r = await client.get(url, params=bad, headers=admin_headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (bad, r.text)


async def test_admin_reports_cover_past_periods(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    await make_board(client, admin_headers, dimensions=["city"])
    monday = week_start()
    last_week = monday - timedelta(days=3)
    for i, m in enumerate(("A", "B", "C", "D")):
        await world.member(m, city="Shanghai", nickname="=cmd()" if m == "D" else None)
        await world.buy(m, 10 * (i + 1), last_week)
    await world.buy("A", 5, monday + timedelta(hours=1))
    r = await client.get("/v1/admin/leaderboards/top-spenders-weekly/periods", headers=admin_headers)
    assert r.status_code == 200
    assert [(p["period"], p["participants"]) for p in r.json()] == [
        (monday.strftime("%G-W%V"), 1), (last_week.strftime("%G-W%V"), 4)]
    top = await client.get("/v1/admin/leaderboards/top-spenders-weekly/top",
                           params={"period": "previous", "limit": 3}, headers=admin_headers)
    assert top.status_code == 200
    body = top.json()
    assert body["total"] == 4
    assert [(e["rank"], e["user_id"], e["score"], e["city"]) for e in body["entries"]] == [
        (1, "D", 40, "Shanghai"), (2, "C", 30, "Shanghai"), (3, "B", 20, "Shanghai")]
    dist = await client.get("/v1/admin/leaderboards/top-spenders-weekly/distribution",
                            params={"period": "previous", "bins": 3}, headers=admin_headers)
    assert dist.status_code == 200
    d = dist.json()
    assert (d["participants"], d["min"], d["max"]) == (4, 10, 40)
    assert [b["count"] for b in d["bins"]] == [2, 1, 1]  # [10, 20] holds 10 and 20; (20, 30]; (30, 40]
    assert sum(b["count"] for b in d["bins"]) == 4
    csv_r = await client.get("/v1/admin/leaderboards/top-spenders-weekly/export.csv",
                             params={"period": last_week.strftime("%G-W%V")}, headers=admin_headers)
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_r.text)))
    assert rows[0] == ["rank", "user_id", "nickname", "city", "score", "reached_at"]
    assert [(r[0], r[1], r[4]) for r in rows[1:]] == [("1", "D", "40"), ("2", "C", "30"), ("3", "B", "20"),
                                                      ("4", "A", "10")]
    excel = await client.get("/v1/admin/leaderboards/top-spenders-weekly/export.csv",
                             params={"period": last_week.strftime("%G-W%V"), "bom": "true"}, headers=admin_headers)
    assert excel.status_code == 200 and excel.content == b"\xef\xbb\xbf" + csv_r.content, excel.text[:200]
    assert rows[1][2] == "'=cmd()"  # a formula in a nickname is defused
    bad = await client.get("/v1/admin/leaderboards/top-spenders-weekly/top?period=2026-99", headers=admin_headers)
    assert bad.status_code == 422


@pytest.mark.sqlite_too
async def test_board_created_without_status_is_active_for_members(
    client: httpx.AsyncClient, admin_headers: dict[str, str], login: object
) -> None:
    body = board_body()
    del body["status"]
    r = await client.post("/v1/admin/leaderboards", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "active"
    world = World(client, admin_headers, login)
    h = await world.member("m-1")
    assert [b["key"] for b in (await client.get("/v1/leaderboards", headers=h)).json()] == ["top-spenders-weekly"]
    assert (await client.get("/v1/leaderboards/top-spenders-weekly", headers=h)).status_code == 200
    # A replacement that leaves the status out keeps it.
    await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"status": "draft"}, headers=admin_headers)
    replaced = await client.put("/v1/admin/leaderboards/top-spenders-weekly", json={**body, "title": "Renamed"},
                                headers=admin_headers)
    assert replaced.status_code == 200 and replaced.json()["status"] == "draft"


async def test_a_view_filter_the_database_cannot_store_is_a_422_before_an_export_starts(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await make_board(client, admin_headers, key="spend", dimensions=["city", "category"])
    for path in ("/v1/admin/leaderboards/spend/export.csv", "/v1/admin/leaderboards/spend/top"):
        for params in ({"city": "a\x00b"}, {"category": "a\x00b"}):
            r = await client.get(path, params=params, headers=admin_headers)
            assert r.status_code == 422, (path, params, r.text)
            assert r.json()["error"]["code"] == "invalid_value"


@pytest.mark.parametrize("name", ["period", "scope", "limit", "offset", "bins"])
async def test_a_dimension_named_like_a_view_query_parameter_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], name: str
) -> None:
    r = await client.post("/v1/admin/leaderboards", json=board_body(dimensions=[name]), headers=admin_headers)
    assert r.status_code == 422, r.text
    assert "query parameter" in r.text


async def test_a_dimension_name_too_long_to_hold_any_view_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], world: World
) -> None:
    """A view is "<name>:<value>" in at most 160 characters: a 200-character attribute name was accepted, and no event
    could ever land in its view (a member asking for it was told values may be "at most -41 characters")."""
    r = await client.post("/v1/admin/leaderboards", json=board_body(dimensions=["a" * 200]), headers=admin_headers)
    assert r.status_code == 422 and "dimensions" in r.text, r.text
    await make_board(client, admin_headers, dimensions=["b" * 64])
    r = await client.patch("/v1/admin/leaderboards/top-spenders-weekly", json={"dimensions": ["c" * 65]},
                           headers=admin_headers)
    assert r.status_code == 422, r.text
    h = await world.member("A")
    await world.buy("A", 10, **{"b" * 64: "shoes"})
    r = await client.get("/v1/leaderboards/top-spenders-weekly", params={"b" * 64: "shoes"}, headers=h)
    assert r.status_code == 200 and r.json()["total"] == 1, r.text


@pytest.mark.sqlite_too
async def test_events_for_a_board_another_process_deleted_are_taken_not_lost(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], world: World, backend: str
) -> None:
    """Another replica deletes a board this process still has cached: the events that would score it are
    taken without it (the request runs again with the caches dropped), not refused for good or a 500."""
    from sqlalchemy import text

    await make_board(client, admin_headers)
    await world.member("A")
    await world.buy("A", 10)  # the board is cached here now
    async with app.state.db.sessionmaker() as s, s.begin():
        await s.execute(text("DELETE FROM leaderboards WHERE key = 'top-spenders-weekly'"))
    out = await world.buy("A", 20)
    assert out["duplicate"] is False
    await world.buy("A", 1)  # cached again, without the board
    async with app.state.db.sessionmaker() as s, s.begin():
        board_id = (await s.execute(text("SELECT id FROM leaderboards"))).scalar()
        assert board_id is None
    await make_board(client, admin_headers, key="second")
    await world.buy("A", 5)
    async with app.state.db.sessionmaker() as s, s.begin():
        await s.execute(text("DELETE FROM leaderboards WHERE key = 'second'"))
    batch = [{"id": f"b-{i}", "user_id": "A", "type": "purchase", "occurred_at": week_start().isoformat(),
              "attributes": {"amount": 3}} for i in range(3)]
    r = await client.post("/v1/events/batch", json={"events": batch}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
