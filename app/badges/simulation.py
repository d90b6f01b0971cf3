"""Replay history through a badge rule before it goes live: who would have earned it, how often, at what cost.

The same pure evaluator and repeat rules as the engine, in memory: nothing is stored, awarded or announced. Each
member's events of the criteria's types in the last N days are replayed in the order they occurred, counters
starting empty, as if the badge had been active from then on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.badges import repository as badges_repo
from app.badges import service as badges_service
from app.badges.rules_cache import BadgeRule
from app.badges.schemas import SimulationIn, SimulationOut
from app.config import Settings
from app.events import repository as events_repo
from app.events.engine import in_season, repeat_key
from app.kit.clock import utcnow
from app.kit.periods import local_date
from app.rules import evaluator as ev
from app.rules.criteria import Criterion

EVENT_LIMIT = 200_000  # events replayed per simulation; beyond, the answer says it is a lower bound


def replay_member(
    rule: BadgeRule, events: Iterable[tuple[str, datetime, dict[str, Any]]], tz: tzinfo
) -> list[datetime]:
    """When one member would have been awarded the rule, given their events in the order they occurred."""
    crits: tuple[tuple[str, Criterion], ...] = rule.criteria
    states: dict[tuple[int, str], ev.CounterState] = {}
    keys: set[str] = set()
    awarded: list[datetime] = []
    for type_, at, attributes in events:
        if not in_season(rule, at):
            continue
        moved = False
        for i, (_scope, c) in enumerate(crits):
            if not ev.matches(c, type_, attributes):
                continue
            bucket = ev.bucket_for(c, at, tz)
            if bucket is not None:
                states[(i, bucket)] = ev.apply(c, states.get((i, bucket), ev.EMPTY), at, attributes, tz)
                moved = True
        if not moved or (awarded and not rule.repeatable):
            continue
        subs = [{b: states.get((i, b), ev.EMPTY) for b in ev.buckets_needed(c, at, tz)} for i, (_s, c) in
                enumerate(crits)]
        if not all(ev.is_met_at(c, sub, at, tz) for (_s, c), sub in zip(crits, subs, strict=True)):
            continue
        evidence = [{"value": ev.value_of(c, sub, at, tz)} for (_s, c), sub in zip(crits, subs, strict=True)]
        key = repeat_key(rule, crits, at, tz, evidence)
        if key not in keys:
            keys.add(key)
            awarded.append(at)
    return awarded


async def simulate(session: AsyncSession, settings: Settings, body: SimulationIn) -> SimulationOut:
    compare = await badges_service.get(session, body.compare_with) if body.compare_with else None
    tz = settings.tz
    until = utcnow()
    since = until - timedelta(days=body.days)
    rule = BadgeRule(
        id=0, key="simulated", name="simulated", points=body.points,
        visibility="seasonal" if body.available_from else "public", repeatable=body.repeatable,
        available_from=body.available_from, available_until=body.available_until,
        criteria=tuple((f"c{i}", c) for i, c in enumerate(body.criteria)),
    )
    types = sorted({c.event for c in body.criteria})
    rows = await events_repo.history_of_types(session, types, since, until, EVENT_LIMIT + 1)
    truncated = len(rows) > EVENT_LIMIT
    if truncated:
        # Drop the last member's events: they may be cut short, and a partial history is no answer for them.
        last = rows[EVENT_LIMIT][0]
        rows = [r for r in rows[:EVENT_LIMIT] if r[0] != last]
    earners: dict[int, list[datetime]] = {}
    members = 0
    start = 0
    for end in range(1, len(rows) + 1):
        if end < len(rows) and rows[end][0] == rows[start][0]:
            continue
        members += 1
        times = replay_member(rule, ((t, at, attrs) for _u, t, at, attrs in rows[start:end]), tz)
        if times:
            earners[rows[start][0]] = times
        start = end
    per_day = Counter(local_date(at, tz).isoformat() for times in earners.values() for at in times)
    holders = None
    if compare is not None:
        holding = await badges_repo.holders_among(session, compare.id, list(earners))
        holders = len(holding)
    awards = sum(len(t) for t in earners.values())
    everyone = await badges_repo.member_count(session)
    return SimulationOut(
        since=since, until=until, events_scanned=len(rows), members_scanned=members,
        members_would_earn=len(earners), share_of_members=round(len(earners) / everyone, 4) if everyone else 0.0,
        awards=awards, points_budget=awards * body.points, already_holding=holders,
        awards_per_day=[{"date": d, "awards": n} for d, n in sorted(per_day.items())],
        truncated=truncated, event_limit=EVENT_LIMIT,
    )
