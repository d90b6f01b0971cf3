"""Analytics for the admin web app: overview, retention of badge earners, badge and challenge reports."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api import ADMIN, awarded, badge, event
from tests.challenges.conftest import Member, member, step  # noqa: F401  (member is a fixture)

NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.mark.sqlite_too
async def test_retention_compares_badge_earners_with_the_rest_of_their_cohort(client: httpx.AsyncClient) -> None:
    await badge(client, "first-post", [{"event": "post", "threshold": 1}])
    # Earners: first-post within 7 days of their first event.
    assert awarded(await event(client, "A", "post", ago(40))) == ["first-post"]
    await event(client, "A", "visit", ago(30))  # back 10 days later: retained
    await event(client, "B", "post", ago(40))  # never back
    # Others.
    await event(client, "C", "visit", ago(40))
    await event(client, "C", "visit", ago(20))  # retained
    await event(client, "D", "visit", ago(40))
    await event(client, "E", "visit", ago(41))
    await event(client, "E", "visit", ago(39))  # back after 2 days only: not retained at day 7
    await event(client, "F", "visit", ago(40))
    assert awarded(await event(client, "F", "post", ago(20))) == ["first-post"]  # earned after day 7: "others"
    await event(client, "G", "visit", ago(200))  # first seen before the default cohort
    await event(client, "G", "visit", ago(100))
    await event(client, "H", "visit", ago(3))  # first seen after it: has not had 7 days yet

    r = await client.get("/v1/admin/analytics/retention", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["days"] == 7 and body["badge"] is None
    assert body["earners"] == {"members": 2, "retained": 1, "retention_rate": 0.5}
    assert body["others"] == {"members": 4, "retained": 2, "retention_rate": 0.5}
    assert body["lift"] == 0.0 and body["horizon_complete"] is True

    # Day-15 retention of the same cohort: A came back after 10 days only; C and F after 20.
    r = await client.get("/v1/admin/analytics/retention", params={"days": 15, "badge": "first-post"}, headers=ADMIN)
    body = r.json()
    assert body["badge"] == "first-post"
    assert body["earners"] == {"members": 2, "retained": 0, "retention_rate": 0.0}
    assert body["others"]["retained"] == 2

    # An explicit cohort: only G's first event lies in it, and no earner: no rate, no lift.
    params = {"cohort_from": ago(250).isoformat(), "cohort_until": ago(150).isoformat()}
    body = (await client.get("/v1/admin/analytics/retention", params=params, headers=ADMIN)).json()
    assert body["earners"] == {"members": 0, "retained": 0, "retention_rate": None}
    assert body["others"] == {"members": 1, "retained": 1, "retention_rate": 1.0}
    assert body["lift"] is None

    # A cohort up to now: its latest members have not had 7 days yet, and the reply says so.
    params = {"cohort_from": ago(10).isoformat(), "cohort_until": NOW.isoformat()}
    body = (await client.get("/v1/admin/analytics/retention", params=params, headers=ADMIN)).json()
    assert body["horizon_complete"] is False and body["others"]["members"] == 1  # H


@pytest.mark.sqlite_too
async def test_retention_refuses_an_unknown_badge_and_an_empty_cohort(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/admin/analytics/retention", params={"badge": "nope"}, headers=ADMIN)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "badge_not_found"
    params = {"cohort_from": ago(10).isoformat(), "cohort_until": ago(20).isoformat()}
    r = await client.get("/v1/admin/analytics/retention", params=params, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "query.cohort_from"
    for bad in ({"days": 0}, {"days": 366}, {"cohort_from": "2026-11-01T00:00:00"}):
        r = await client.get("/v1/admin/analytics/retention", params=bad, headers=ADMIN)
        assert r.status_code == 422, (bad, r.text)


@pytest.mark.sqlite_too
async def test_overview_counts_members_activity_awards_and_points(client: httpx.AsyncClient) -> None:
    await badge(client, "first-post", [{"event": "post", "threshold": 1}], points=10)
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], points=5)
    await event(client, "A", "post", ago(2))
    await event(client, "A", "visit", ago(2))
    await event(client, "B", "visit", ago(20))
    await event(client, "C", "comment", ago(60))
    body = (await client.get("/v1/admin/analytics/overview", headers=ADMIN)).json()
    assert body == {
        "members": 3,
        "active_members_7d": 1,
        "active_members_30d": 2,
        "members_with_badges": 2,
        "awards": 3,
        "badges_per_member": 1.0,
        "badges_per_earner": 1.5,
        "challenge_participants": 0,
        "active_challenge_participants": 0,
        "points_outstanding": 20,
    }


@pytest.mark.sqlite_too
async def test_badge_report_as_json_and_as_csv_with_text_defused(client: httpx.AsyncClient) -> None:
    await badge(client, "first-post", [{"event": "post", "threshold": 1}], name="=HYPERLINK(\"x\")")
    await badge(client, "unearned", [{"event": "referral", "threshold": 1}], status="draft")
    await event(client, "A", "post", ago(2))
    await event(client, "B", "post", ago(1))
    await event(client, "C", "visit", ago(1))
    rows = (await client.get("/v1/admin/analytics/badges", headers=ADMIN)).json()
    assert [(r["key"], r["holders"], r["awards"], r["rarity"], r["status"]) for r in rows] == [
        ("first-post", 2, 2, 2 / 3, "active"),
        ("unearned", 0, 0, 0.0, "draft"),
    ]
    assert rows[0]["first_awarded_at"] is not None and rows[1]["last_awarded_at"] is None
    r = await client.get("/v1/admin/analytics/badges.csv", headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="badges.csv"' in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [(t["key"], t["name"], t["holders"]) for t in table] == [
        ("first-post", "'=HYPERLINK(\"x\")", "2"), ("unearned", "Unearned", "0"),
    ]
    assert r.content.startswith(b"key,")  # no byte-order mark unless asked for
    # For Excel (which reads a CSV without one in the local code page, garbling Chinese names): ?bom=true.
    excel = await client.get("/v1/admin/analytics/badges.csv", params={"bom": "true"}, headers=ADMIN)
    assert excel.content.startswith(b"\xef\xbb\xbfkey,") and excel.content[3:] == r.content


async def test_challenge_report_counts_participations_by_status(
    client: httpx.AsyncClient, member: Callable[..., Awaitable[Member]]  # noqa: F811
) -> None:
    for key in ("two-posts", "quiet"):
        body = {"key": key, "title": key.title(), "steps": [step("Post twice", "post", 2)]}
        r = await client.post("/v1/admin/challenges", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        assert (await client.post(f"/v1/admin/challenges/{key}/publish", headers=ADMIN)).status_code == 200
    done, trying = await member(), await member()
    for m in (done, trying):
        r = await client.post("/v1/challenges/two-posts/join", headers=m.headers)
        assert r.status_code in (200, 201), r.text
    for m in (done, done, trying):  # after joining, or they would not count
        await event(client, m.external_id, "post", datetime.now(UTC))
    rows = (await client.get("/v1/admin/analytics/challenges", headers=ADMIN)).json()
    assert [(r["key"], r["joined"], r["active"], r["completed"], r["completion_rate"]) for r in rows] == [
        ("quiet", 0, 0, 0, 0.0),
        ("two-posts", 2, 1, 1, 0.5),
    ]
    overview = (await client.get("/v1/admin/analytics/overview", headers=ADMIN)).json()
    assert overview["challenge_participants"] == 2 and overview["active_challenge_participants"] == 1
    table = list(csv.DictReader(io.StringIO((await client.get("/v1/admin/analytics/challenges.csv",
                                                              headers=ADMIN)).text)))
    assert [(t["key"], t["completed"], t["completion_rate"]) for t in table] == [
        ("quiet", "0", "0.0"), ("two-posts", "1", "0.5"),
    ]


@pytest.mark.parametrize(
    "path", ["overview", "retention", "badges", "badges.csv", "challenges", "challenges.csv", "tiers", "tiers.csv"]
)
async def test_analytics_need_the_analytics_scope(client: httpx.AsyncClient, make_key: Any, path: str) -> None:
    assert (await client.get(f"/v1/admin/analytics/{path}")).status_code == 401
    poster = await make_key("events:write")
    assert (await client.get(f"/v1/admin/analytics/{path}", headers=poster)).status_code == 403
    analyst = await make_key("analytics:read")
    assert (await client.get(f"/v1/admin/analytics/{path}", headers=analyst)).status_code == 200


async def sync(client: httpx.AsyncClient, external_id: str, tier: str, segments: list[str] | None = None) -> None:
    r = await client.put(f"/v1/users/{external_id}", json={"tier": tier, "segments": segments or []}, headers=ADMIN)
    assert r.status_code in (200, 201), r.text


@pytest.mark.sqlite_too
async def test_tier_report_and_retention_limited_to_one_tier(client: httpx.AsyncClient) -> None:
    await badge(client, "first-post", [{"event": "post", "threshold": 1}])
    for who, tier, segments in (("A", "gold", ["vip"]), ("B", "gold", []), ("C", "silver", ["vip", "new"])):
        await sync(client, who, tier, segments)
    await event(client, "A", "post", ago(40))
    await event(client, "A", "visit", ago(20))
    await event(client, "B", "visit", ago(40))
    await event(client, "C", "post", ago(40))
    await event(client, "C", "post", ago(2))
    await event(client, "D", "visit", ago(40))  # no tier
    rows = (await client.get("/v1/admin/analytics/tiers", headers=ADMIN)).json()
    assert rows == [
        {"tier": "gold", "members": 2, "active_members_30d": 1, "members_with_badges": 1, "awards": 1,
         "badges_per_member": 0.5, "challenge_participants": 0},
        {"tier": "silver", "members": 1, "active_members_30d": 1, "members_with_badges": 1, "awards": 1,
         "badges_per_member": 1.0, "challenge_participants": 0},
        {"tier": None, "members": 1, "active_members_30d": 0, "members_with_badges": 0, "awards": 0,
         "badges_per_member": 0.0, "challenge_participants": 0},
    ]
    table = list(csv.DictReader(io.StringIO((await client.get("/v1/admin/analytics/tiers.csv", headers=ADMIN)).text)))
    assert [(t["tier"], t["members"]) for t in table] == [("gold", "2"), ("silver", "1"), ("", "1")]
    body = (await client.get("/v1/admin/analytics/retention", params={"tier": "gold"}, headers=ADMIN)).json()
    assert body["tier"] == "gold"
    assert body["earners"] == {"members": 1, "retained": 1, "retention_rate": 1.0}
    assert body["others"] == {"members": 1, "retained": 0, "retention_rate": 0.0}
    assert body["lift"] == 1.0
    assert (await client.get("/v1/admin/analytics/retention", params={"tier": "bronze"}, headers=ADMIN)).json()[
        "earners"]["retention_rate"] is None
    body = (await client.get("/v1/admin/analytics/retention", params={"segment": "vip"}, headers=ADMIN)).json()
    assert body["segment"] == "vip"  # A (earned, back after 20 days) and C (earned, back after 38)
    assert body["earners"] == {"members": 2, "retained": 2, "retention_rate": 1.0} and body["others"]["members"] == 0


async def test_an_analytics_key_reads_badge_and_challenge_stats_but_changes_nothing(
    client: httpx.AsyncClient, make_key: Any
) -> None:
    await badge(client, "first-post", [{"event": "post", "threshold": 1}])
    body = {"key": "two-posts", "title": "Two posts", "steps": [step("Post twice", "post", 2)]}
    assert (await client.post("/v1/admin/challenges", json=body, headers=ADMIN)).status_code == 201
    analyst = await make_key("analytics:read")
    assert (await client.get("/v1/admin/badges/first-post/stats", headers=analyst)).status_code == 200
    assert (await client.get("/v1/admin/challenges/two-posts/stats", headers=analyst)).status_code == 200
    r = await client.patch("/v1/admin/badges/first-post", json={"points": 5}, headers=analyst)
    assert r.status_code == 403, r.text


@pytest.mark.sqlite_too
async def test_retention_lift_is_the_exact_difference_of_the_two_rates(client: httpx.AsyncClient) -> None:
    """The rates are exact (a client rounds for display): `lift` is their exact difference, not one rounded to four
    places that no longer equals earners' rate minus the others'."""
    await badge(client, "first-post", [{"event": "post", "threshold": 1}])
    for who in ("A", "B", "C"):  # earners: one of three back after 10 days
        await event(client, who, "post", ago(40))
    await event(client, "A", "visit", ago(30))
    await event(client, "D", "visit", ago(40))  # the others: not back
    body = (await client.get("/v1/admin/analytics/retention", headers=ADMIN)).json()
    assert body["earners"] == {"members": 3, "retained": 1, "retention_rate": 1 / 3}
    assert body["others"] == {"members": 1, "retained": 0, "retention_rate": 0.0}
    assert body["lift"] == body["earners"]["retention_rate"] - body["others"]["retention_rate"] == 1 / 3
