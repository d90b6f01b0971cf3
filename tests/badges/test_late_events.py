"""Late events earn what the same events earn in time order: no more (no second award for what is already
held), and no less except where one late event completes several rewardable windows (see the README's Known
limits). Each test posts the same events in time order and with one arriving late."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.api import ADMIN, awarded, badge, event
from tests.badges.test_rules import day

STREAK3 = {"event": "check_in", "aggregate": "streak", "threshold": 3, "window": {"type": "calendar", "unit": "day"}}


Post = tuple[str, datetime, dict[str, Any]]


async def _awards(client: httpx.AsyncClient, member: str, posts: list[Post]) -> list[str]:
    got: list[str] = []
    for type_, at, attributes in posts:
        got += awarded(await event(client, member, type_, at, **attributes))
    return got


async def _both_orders(
    client: httpx.AsyncClient, in_order: list[Post], late: int
) -> tuple[list[str], list[str]]:
    """Awards for the events in time order, and for the same events with the `late`-th arriving last."""
    arrival = [*in_order[:late], *in_order[late + 1:], in_order[late]]
    return await _awards(client, "IN-ORDER", in_order), await _awards(client, "LATE", arrival)


@pytest.mark.parametrize(
    ("days", "late", "awards"),
    [
        ((13, 12, 11, 10), 0, 1),  # the late check-in extends a rewarded run backwards
        ((17, 16, 15, 14, 13, 12, 11), 3, 2),  # the late check-in joins two rewarded runs into one of 7
        ((30, 29, 28, 20, 19, 18, 17, 16, 15), 8, 3),  # a new run earns again; its 6th day arrives late
    ],
    ids=["extends-a-run", "joins-two-runs", "second-run"],
)
async def test_a_repeatable_streak_earns_once_per_multiple_within_each_run(
    client: httpx.AsyncClient, days: tuple[int, ...], late: int, awards: int
) -> None:
    await badge(client, "streak-3", [STREAK3], points=10, repeatable=True)
    in_order, with_late = await _both_orders(client, [("check_in", day(n), {}) for n in days], late)
    assert in_order == with_late == ["streak-3"] * awards


async def test_a_late_purchase_does_not_earn_a_rolling_window_already_rewarded(client: httpx.AsyncClient) -> None:
    two_a_day = {"event": "purchase", "aggregate": "count", "threshold": 2, "window": {"type": "rolling", "days": 1}}
    await badge(client, "two-a-day", [two_a_day], repeatable=True)
    posts = [("purchase", day(6, hour=23), {}), ("purchase", day(5, hour=1), {}), ("purchase", day(5, hour=2), {})]
    in_order, with_late = await _both_orders(client, posts, 0)
    assert in_order == with_late == ["two-a-day"]


async def test_a_late_purchase_the_rewarded_window_did_not_need_earns_nothing(client: httpx.AsyncClient) -> None:
    big = {"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 1000,
           "window": {"type": "rolling", "days": 7}}
    await badge(client, "big-spender", [big], repeatable=True)
    posts = [("purchase", day(12), {"amount": 1}), ("purchase", day(9, hour=8), {"amount": 500}),
             ("purchase", day(9, hour=9), {"amount": 600})]
    in_order, with_late = await _both_orders(client, posts, 0)
    assert in_order == with_late == ["big-spender"]


async def test_criteria_of_one_badge_must_hold_at_one_instant_even_for_a_late_event(
    client: httpx.AsyncClient,
) -> None:
    two_purchases = {"event": "purchase", "threshold": 2, "window": {"type": "rolling", "days": 7}}
    review_today = {"event": "review", "threshold": 1, "window": {"type": "calendar", "unit": "day"}}
    await badge(client, "busy-reviewer", [two_purchases, review_today])
    posts = [("review", day(12), {}), ("purchase", day(10), {}), ("purchase", day(9), {})]
    in_order, with_late = await _both_orders(client, posts, 0)
    assert in_order == with_late == []


async def test_a_streak_badge_edited_from_days_to_weeks_keeps_awarding(client: httpx.AsyncClient) -> None:
    await badge(client, "streak", [STREAK3], repeatable=True)
    assert await _awards(client, "M", [("check_in", day(n), {}) for n in (30, 29, 28)]) == ["streak"]
    weekly = {**STREAK3, "threshold": 2, "window": {"type": "calendar", "unit": "week"}}
    r = await client.patch("/v1/admin/badges/streak", json={"criteria": [weekly]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    # The daily awards name days, which are no weeks: they belong to no run of the new criterion.
    assert await _awards(client, "M", [("check_in", day(n), {}) for n in (14, 7)]) == ["streak"]


async def test_a_late_purchase_earns_a_later_window_when_its_first_met_window_is_already_rewarded(
    client: httpx.AsyncClient,
) -> None:
    two_in_two_days = {"event": "purchase", "threshold": 2, "window": {"type": "rolling", "days": 2}}
    await badge(client, "two-in-two", [two_in_two_days], repeatable=True)
    # Time order rewards day 10 (its second purchase) and day 8 (the window ending there holds day 10 23:00 too).
    posts = [("purchase", day(10, hour=h), {}) for h in (1, 2, 23)] + [("purchase", day(8), {})]
    in_order, with_late = await _both_orders(client, posts, 2)
    assert in_order == with_late == ["two-in-two"] * 2
    r = await client.get("/v1/admin/users/LATE/badges", headers=ADMIN)
    ends = sorted(a["evidence"]["criteria"][0]["window_end"] for a in r.json())
    assert [datetime.fromisoformat(e) for e in ends] == [day(10, hour=2), day(8)]  # the windows keyed
