"""Points ledger, manual adjustments, the level ladder and the member's level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.api import ADMIN, badge, event

NOW = datetime.now(UTC) - timedelta(minutes=1)


async def test_fresh_install_has_default_ladder(client: httpx.AsyncClient) -> None:
    ladder = (await client.get("/v1/admin/badge-levels", headers=ADMIN)).json()
    assert [(lv["name"], lv["points_required"]) for lv in ladder] == [
        ("Community Starter", 5),
        ("Community Contributor", 15),
        ("Active Member", 25),
        ("Engaged Member", 50),
        ("Community Champion", 100),
        ("Community Leader", 250),
        ("Community Hero", 500),
        ("Community Legend", 1000),
        ("Community Icon", 2500),
    ]


@pytest.mark.parametrize(
    "levels",
    [
        [{"name": f"L{i}", "points_required": i + 1} for i in range(10)],
        [{"name": "A", "points_required": 10}, {"name": "B", "points_required": 10}],
        [{"name": "A", "points_required": 10}, {"name": "B", "points_required": 5}],
        [],
        [{"name": "A", "points_required": 10}, {"name": "  ", "points_required": 20}],
        [{"name": "A", "points_required": 10}, {"name": "A ", "points_required": 20}],
    ],
    ids=["ten-levels", "equal", "decreasing", "empty", "blank-name", "same-name-but-a-space"],
)
async def test_invalid_ladders_are_refused(client: httpx.AsyncClient, levels: list[dict[str, Any]]) -> None:
    r = await client.put("/v1/admin/badge-levels", json={"levels": levels}, headers=ADMIN)
    assert r.status_code == 422, r.text
    if len(levels) == 2:  # the level that breaks the order (or has a blank or repeated name) is the one named
        assert r.json()["error"]["details"][0]["field"] in ("body.levels.1.points_required", "body.levels.1.name")
    assert len((await client.get("/v1/admin/badge-levels", headers=ADMIN)).json()) == 9


async def test_custom_ladder_and_member_level(client: httpx.AsyncClient, login: Any) -> None:
    r = await client.put(
        "/v1/admin/badge-levels",
        headers=ADMIN,
        json=[
            {"name": "Bronze", "icon": "medal", "points_required": 10},
            {"name": "Silver", "icon": "medal", "points_required": 30},
        ],
    )
    assert r.status_code == 200 and [lv["rank"] for lv in r.json()] == [1, 2]
    await client.put("/v1/users/L1", json={"openid": "o-l1"}, headers=ADMIN)
    me_headers = await login(openid="o-l1")
    me = (await client.get("/v1/me", headers=me_headers)).json()
    assert (me["points"], me["level"], me["next_level"]["name"], me["points_to_next"]) == (0, None, "Bronze", 10)
    r = await client.post("/v1/admin/users/L1/points", json={"amount": 12, "reason": "welcome"}, headers=ADMIN)
    assert r.json()["levels_reached"] == [{"rank": 1, "name": "Bronze"}]
    me = (await client.get("/v1/me", headers=me_headers)).json()
    assert (me["points"], me["level"]["name"], me["next_level"]["name"], me["points_to_next"]) == (
        12,
        "Bronze",
        "Silver",
        18,
    )


async def test_crossing_several_levels_at_once_reaches_each_once(client: httpx.AsyncClient) -> None:
    await badge(client, "big", [{"event": "visit", "threshold": 1}], points=60)
    out = await event(client, "M", "visit", NOW)
    assert [lv["name"] for lv in out["levels_reached"]] == [
        "Community Starter",
        "Community Contributor",
        "Active Member",
        "Engaged Member",
    ]


async def test_adjustments_are_idempotent_audited_and_never_negative(client: httpx.AsyncClient, login: Any) -> None:
    await client.put("/v1/users/P1", json={"openid": "o-p1"}, headers=ADMIN)
    body = {"amount": 7, "reason": "survey", "idempotency_key": "survey-42"}
    first = (await client.post("/v1/admin/users/P1/points", json=body, headers=ADMIN)).json()
    second = (await client.post("/v1/admin/users/P1/points", json=body, headers=ADMIN)).json()
    assert first["applied"] is True and second["applied"] is False and second["balance"] == 7
    r = await client.post("/v1/admin/users/P1/points", json={"amount": -8, "reason": "oops"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"
    assert (
        await client.post("/v1/admin/users/P1/points", json={"amount": 0, "reason": "x"}, headers=ADMIN)
    ).status_code == 422
    assert (
        await client.post("/v1/admin/users/NOPE/points", json={"amount": 1, "reason": "x"}, headers=ADMIN)
    ).status_code == 404
    ledger = (await client.get("/v1/me/points", headers=await login(openid="o-p1"))).json()
    assert ledger["total"] == 1 and ledger["items"][0]["amount"] == 7
    assert ledger["items"][0]["source_type"] == "manual"
    audit = (await client.get("/v1/admin/audit?action=points.adjust", headers=ADMIN)).json()
    assert audit["total"] == 1 and audit["items"][0]["reason"] == "survey"


async def test_badge_points_land_in_ledger_with_source(client: httpx.AsyncClient, login: Any) -> None:
    await client.put("/v1/users/P2", json={"openid": "o-p2"}, headers=ADMIN)
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    await event(client, "P2", "visit", NOW)
    ledger = (await client.get("/v1/me/points", headers=await login(openid="o-p2"))).json()
    assert [(e["amount"], e["source_type"], e["balance_after"]) for e in ledger["items"]] == [(5, "badge", 5)]


async def test_the_ladder_a_get_returns_can_be_put_back_unchanged(client: httpx.AsyncClient) -> None:
    before = (await client.get("/v1/admin/badge-levels", headers=ADMIN)).json()
    r = await client.put("/v1/admin/badge-levels", json={"levels": before}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == before
    # rank is read-only: the order of the list decides it
    swapped = [{**lv, "rank": 9 - i} for i, lv in enumerate(before)]
    assert (await client.put("/v1/admin/badge-levels", json=swapped, headers=ADMIN)).json() == before


@pytest.mark.sqlite_too
async def test_an_operator_reads_a_members_profile_balance_level_and_ledger(
    client: httpx.AsyncClient, login: Any
) -> None:
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    await badge(client, "first-post", [{"event": "post", "threshold": 1}], points=10)
    r = await client.put("/v1/users/OP-1", json={"openid": "o-op-1", "city": "Shanghai"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    await event(client, "OP-1", "visit", datetime.now(UTC) - timedelta(hours=2))
    await event(client, "OP-1", "post", datetime.now(UTC) - timedelta(hours=1))
    m = (await client.get("/v1/admin/users/OP-1", headers=ADMIN)).json()
    assert (m["external_id"], m["openid"], m["city"], m["points"], m["awards_held"]) == ("OP-1", "o-op-1", "Shanghai",
                                                                                          15, 2)
    assert m["level"]["name"] == "Community Contributor" and m["points_to_next"] == 10
    ledger = (await client.get("/v1/admin/users/OP-1/points", params={"limit": 1}, headers=ADMIN)).json()
    assert ledger["total"] == 2 and [e["amount"] for e in ledger["items"]] == [10]  # newest first
    assert (await client.get("/v1/admin/users/nobody", headers=ADMIN)).json()["error"]["code"] == "user_not_found"
    assert (await client.get("/v1/admin/users/nobody/points", headers=ADMIN)).status_code == 404
    member = await login("o-op-1")
    assert (await client.get("/v1/admin/users/OP-1", headers=member)).status_code in (401, 403)


async def test_a_debit_retried_with_its_key_is_a_replay_and_the_key_cannot_be_reused_for_another_amount(
    client: httpx.AsyncClient,
) -> None:
    await client.put("/v1/users/ADJ-2", json={}, headers=ADMIN)
    url = "/v1/admin/users/ADJ-2/points"
    assert (await client.post(url, json={"amount": 10, "reason": "gift"}, headers=ADMIN)).status_code == 200
    body = {"amount": -10, "reason": "fix", "idempotency_key": "debit-1"}
    first = await client.post(url, json=body, headers=ADMIN)
    assert first.status_code == 200 and first.json()["applied"] is True and first.json()["balance"] == 0
    again = await client.post(url, json=body, headers=ADMIN)
    assert again.status_code == 200, again.text  # not 409 insufficient_points: the debit is already done
    assert again.json() | {"levels_reached": []} == first.json() | {"applied": False, "levels_reached": []}
    other = await client.post(url, json={**body, "amount": -7}, headers=ADMIN)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    ledger = (await client.get("/v1/admin/users/ADJ-2/points", headers=ADMIN)).json()
    assert [e["amount"] for e in ledger["items"]] == [-10, 10]


@pytest.mark.sqlite_too
async def test_a_balance_beyond_32_bits_keeps_crediting(app: Any, client: httpx.AsyncClient) -> None:
    # A long-running program with generous repeatable badges: the balance outgrows a 32-bit integer.
    await client.put("/v1/users/RICH", json={}, headers=ADMIN)
    async with app.state.db.sessionmaker() as session, session.begin():
        await session.execute(text("UPDATE users SET points = 2147000000 WHERE external_id = 'RICH'"))
    await badge(client, "big", [{"event": "purchase", "threshold": 1}], points=1_000_000)
    out = await event(client, "RICH", "purchase", datetime.now(UTC) - timedelta(minutes=1), amount=1)
    assert out["points_credited"] == 1_000_000
    r = await client.post("/v1/admin/users/RICH/points", json={"amount": 1_000_000, "reason": "bonus"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["balance"] == 2_149_000_000
    member = (await client.get("/v1/admin/users/RICH", headers=ADMIN)).json()
    assert member["points"] == 2_149_000_000
    ledger = (await client.get("/v1/admin/users/RICH/points", headers=ADMIN)).json()["items"]
    assert [e["balance_after"] for e in ledger] == [2_149_000_000, 2_148_000_000]


@pytest.mark.sqlite_too
async def test_a_reason_of_only_spaces_or_an_amount_given_as_text_is_refused_and_nothing_is_audited(
    client: httpx.AsyncClient,
) -> None:
    """The audit log's "why" must say something: a grant, revoke or adjustment whose reason is whitespace is a 422,
    as an empty one is; an amount must be a JSON integer ("5" is not read as 5)."""
    await badge(client, "vip", [{"event": "never", "threshold": 1}], visibility="invite_only")
    await client.put("/v1/users/R1", json={"nickname": "R"}, headers=ADMIN)
    refused = [
        await client.post("/v1/admin/users/R1/badges/vip", json={"reason": "   "}, headers=ADMIN),
        await client.post("/v1/admin/users/R1/points", json={"amount": 5, "reason": " \t "}, headers=ADMIN),
        await client.post("/v1/admin/users/R1/points", json={"amount": "5", "reason": "survey"}, headers=ADMIN),
    ]
    assert [r.status_code for r in refused] == [422, 422, 422], [r.text for r in refused]
    assert refused[0].json()["error"]["details"][0]["field"] == "body.reason"
    assert refused[2].json()["error"]["details"][0]["field"] == "body.amount"
    r = await client.post("/v1/admin/users/R1/badges/vip", json={"reason": "  launch guest  "}, headers=ADMIN)
    assert r.status_code == 201, r.text
    for revoke in (
        client.request("DELETE", "/v1/admin/users/R1/badges/vip?reason=%20%20", headers=ADMIN),
        client.request("DELETE", "/v1/admin/users/R1/badges/vip", json={"reason": "  "}, headers=ADMIN),
    ):
        r = await revoke
        assert r.status_code == 422, r.text
    audit = (await client.get("/v1/admin/audit?user_id=R1", headers=ADMIN)).json()
    assert [(e["action"], e["reason"]) for e in audit["items"]] == [("badge.grant", "launch guest")]


@pytest.mark.sqlite_too
async def test_a_level_a_live_challenge_requires_cannot_be_renamed_or_dropped(client: httpx.AsyncClient) -> None:
    """A challenge names its minimum level; a ladder without that name would lock everyone out of it."""
    r = await client.post("/v1/admin/challenges", headers=ADMIN, json={
        "key": "gated", "title": "Gated", "status": "published", "eligibility": {"min_level": "Engaged Member"},
        "steps": [{"title": "Visit", "criterion": {"event": "visit", "threshold": 1}}]})
    assert r.status_code == 201, r.text
    ladder = (await client.get("/v1/admin/badge-levels", headers=ADMIN)).json()
    renamed = [{**lv, "name": "Engaged Fan"} if lv["name"] == "Engaged Member" else lv for lv in ladder]
    dropped = [lv for lv in ladder if lv["name"] != "Engaged Member"]
    for body in (renamed, dropped):
        r = await client.put("/v1/admin/badge-levels", json=body, headers=ADMIN)
        assert r.status_code == 409 and r.json()["error"]["code"] == "level_in_use", r.text
        assert r.json()["error"]["details"] == {"levels": {"Engaged Member": ["gated"]}}
    assert (await client.get("/v1/admin/badge-levels", headers=ADMIN)).json() == ladder
    other = [{**lv, "name": "Starter"} if lv["rank"] == 1 else lv for lv in ladder]
    assert (await client.put("/v1/admin/badge-levels", json=other, headers=ADMIN)).status_code == 200
    assert (await client.post("/v1/admin/challenges/gated/archive", headers=ADMIN)).status_code == 200
    assert (await client.put("/v1/admin/badge-levels", json=dropped, headers=ADMIN)).status_code == 200


async def test_a_blank_level_icon_is_no_icon(client: httpx.AsyncClient) -> None:
    ladder = (await client.get("/v1/admin/badge-levels", headers=ADMIN)).json()
    body = [{**ladder[0], "icon": ""}, {**ladder[1], "icon": "  "}, ladder[2]]
    r = await client.put("/v1/admin/badge-levels", json=body, headers=ADMIN)
    assert r.status_code == 200 and [lv["icon"] for lv in r.json()] == [None, None, ladder[2]["icon"]]
