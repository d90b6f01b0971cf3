"""Simulating a badge rule against history before it goes live (nothing is stored or awarded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.kit.periods import period_key
from tests.api import ADMIN, awarded, badge, event

CN = ZoneInfo("Asia/Shanghai")
EXPLORER = {
    "event": "visit", "aggregate": "count_distinct", "field": "store_id", "threshold": 3,
    "window": {"type": "calendar", "unit": "month"},
}


def month_day(months_back: int, day: int) -> datetime:
    """A day `months_back` calendar months before this one, program time."""
    now = datetime.now(CN)
    y, m = now.year, now.month - months_back
    while m < 1:
        y, m = y - 1, m + 12
    return datetime(y, m, day, 12, tzinfo=CN)


async def simulate(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/v1/admin/badges/simulate", json=body, headers=ADMIN)


async def awards_of(client: httpx.AsyncClient, member: str) -> list[Any]:
    r = await client.get(f"/v1/admin/users/{member}/badges", headers=ADMIN)
    return list(r.json())


@pytest.mark.sqlite_too
async def test_store_explorer_is_simulated_over_history_without_awarding_anything(client: httpx.AsyncClient) -> None:
    for i, store in enumerate(("S1", "S2", "S3")):  # A: three stores in one month
        await event(client, "A", "visit", month_day(2, 3 + i), store_id=store)
    await event(client, "B", "visit", month_day(2, 27), store_id="S1")  # B: three stores over two months
    await event(client, "B", "visit", month_day(2, 28), store_id="S2")
    await event(client, "B", "visit", month_day(1, 2), store_id="S3")
    await event(client, "C", "purchase", month_day(1, 2), amount=5)  # another type: not replayed
    r = await simulate(client, criteria=[EXPLORER], points=20, days=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["events_scanned"] == 6 and out["members_scanned"] == 2
    assert out["members_would_earn"] == 1 and out["awards"] == 1 and out["points_budget"] == 20
    assert out["share_of_members"] == round(1 / 3, 4)
    assert out["awards_per_day"] == [{"date": month_day(2, 5).date().isoformat(), "awards": 1}]
    assert out["truncated"] is False and out["already_holding"] is None
    # Nothing was awarded or counted: a live badge with the same rule starts from zero.
    assert await awards_of(client, "A") == []
    await badge(client, "store-explorer", [EXPLORER])
    assert awarded(await event(client, "A", "visit", datetime.now(UTC) - timedelta(minutes=1), store_id="S9")) == []
    # Activating it did not award history; the simulation says who would have had it.
    out = (await simulate(client, criteria=[EXPLORER], days=120, compare_with="store-explorer")).json()
    assert out["members_would_earn"] == 1 and out["already_holding"] == 0


@pytest.mark.sqlite_too
async def test_a_repeatable_rule_counts_each_award_and_a_season_limits_the_replay(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    weekly = {"event": "check_in", "threshold": 1, "window": {"type": "calendar", "unit": "week"}}
    times = [now - timedelta(days=days_back) for days_back in (1, 8, 15, 16)]
    for at in times:
        await event(client, "M", "check_in", at)
    weeks = {period_key("week", at, CN) for at in times}  # 15 and 16 days back share a week unless a Monday splits
    out = (await simulate(client, criteria=[weekly], repeatable=True, points=2, days=30)).json()
    assert out["members_would_earn"] == 1
    assert out["awards"] == len(weeks) and out["points_budget"] == 2 * len(weeks)
    once = (await simulate(client, criteria=[weekly], days=30)).json()
    assert once["awards"] == 1
    season = {"available_from": (now - timedelta(days=10)).isoformat(), "available_until": now.isoformat()}
    out = (await simulate(client, criteria=[weekly], repeatable=True, days=30, **season)).json()
    assert out["awards"] == 2  # only the check-ins 1 and 8 days back are in season


@pytest.mark.sqlite_too
async def test_a_simulation_stops_at_its_event_limit_and_says_so(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.badges.simulation.EVENT_LIMIT", 3)
    now = datetime.now(UTC)
    for member in ("A", "B"):
        for h in (3, 2, 1):
            await event(client, member, "post", now - timedelta(hours=h))
    out = (await simulate(client, criteria=[{"event": "post", "threshold": 3}], days=1)).json()
    assert out["truncated"] is True and out["event_limit"] == 3
    assert out["members_scanned"] == 1 and out["members_would_earn"] == 1  # A whole; B left out whole
    monkeypatch.setattr("app.badges.simulation.EVENT_LIMIT", 100)
    monkeypatch.setattr("app.badges.simulation.MEMBER_EVENT_LIMIT", 2)
    out = (await simulate(client, criteria=[{"event": "post", "threshold": 3}], days=1)).json()
    assert out["truncated"] is True and out["members_scanned"] == 2 and out["events_scanned"] == 4
    assert out["members_would_earn"] == 0  # each member's third post is beyond the per-member limit


@pytest.mark.sqlite_too
async def test_a_simulation_replays_in_arrival_order_like_the_engine(client: httpx.AsyncClient) -> None:
    # Rolling 7 days, sum >= 100: 60 twenty days ago and 50 eleven days ago never meet; 50 twelve days ago,
    # arriving last, completes the window ending at the event of eleven days ago — in the engine and the replay.
    now = datetime.now(UTC)
    rule = {"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 100,
            "window": {"type": "rolling", "days": 7}}
    await badge(client, "big-week", [rule])
    got = []
    for days_back, amount in ((20, 60), (11, 50), (12, 50)):
        got.append(awarded(await event(client, "M", "purchase", now - timedelta(days=days_back), amount=amount)))
    assert got == [[], [], ["big-week"]]
    sim = (await simulate(client, criteria=[rule], days=30)).json()
    assert sim["events_scanned"] == 3 and sim["members_would_earn"] == 1


@pytest.mark.sqlite_too
async def test_a_simulated_collector_does_not_count_revoked_awards(client: httpx.AsyncClient) -> None:
    for key in ("a", "b", "c"):
        await badge(client, key, [{"event": f"task.{key}", "threshold": 1}])
    for key in ("a", "b"):
        await event(client, "M", f"task.{key}", datetime.now(UTC) - timedelta(hours=2))
    r = await client.request("DELETE", "/v1/admin/users/M/badges/b", json={"reason": "fraud"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    await event(client, "M", "task.c", datetime.now(UTC) - timedelta(hours=1))
    collector = [{"event": "badge.awarded", "threshold": 3}]
    out = (await simulate(client, criteria=collector, days=1)).json()
    assert out["events_scanned"] == 2 and out["members_would_earn"] == 0  # a and c stand; b was revoked


@pytest.mark.sqlite_too
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"criteria": []}, 422),
        ({"criteria": [{"event": "visit", "threshold": 1}], "days": 0}, 422),
        ({"criteria": [{"event": "visit", "threshold": 1}], "days": 731}, 422),
        ({"criteria": [{"event": "visit", "threshold": 1}], "available_from": "2026-01-01T00:00:00+08:00"}, 422),
        ({"criteria": [{"event": "visit", "threshold": 1}], "compare_with": "no-such-badge"}, 404),
        ({"criteria": [{"event": "visit", "aggregate": "sum", "threshold": 1}]}, 422),
        ({"criteria": [{"event": "visit", "threshold": 1}], "days": True}, 422),
    ],
    ids=["no-criteria", "days-0", "days-731", "half-a-season", "unknown-badge", "sum-without-field", "days-true"],
)
async def test_a_bad_simulation_is_a_clear_error(client: httpx.AsyncClient, body: Any, status: int) -> None:
    r = await simulate(client, **body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"]
