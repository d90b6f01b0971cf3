"""Replay history through a badge rule before it goes live: who would have earned it, how often, at what cost.

The same pure evaluator and repeat rules as the engine, in memory: nothing is stored, awarded or announced. Each
member's events of the criteria's types that occurred in the last N days are replayed in the order they arrived
(the order the engine evaluated them), counters starting empty, as if the badge had been active from then on.
Rows are streamed member by member, so memory holds one member's events, and the event loop is given back
between members.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.badges import repository as badges_repo
from app.badges import service as badges_service
from app.badges.rules_cache import BadgeRule
from app.badges.schemas import SimulationIn, SimulationOut
from app.config import Settings
from app.events import repository as events_repo
from app.events.engine import BADGE_AWARDED, in_season, reads, repeat_key
from app.events.schemas import MAX_FUTURE
from app.kit.clock import utcnow
from app.kit.periods import local_date
from app.rules import evaluator as ev
from app.rules.criteria import Criterion

EVENT_LIMIT = 200_000  # events replayed per simulation; beyond, the answer says it is a lower bound
MEMBER_EVENT_LIMIT = 1_000  # per member: a rolling window re-reads its entries per event, so a member costs n²


def replay_member(
    rule: BadgeRule, events: Iterable[tuple[str, datetime, dict[str, Any]]], tz: tzinfo
) -> list[datetime]:
    """When one member would have been awarded the rule, given their events in the order they arrived."""
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
        later = len(crits) == 1
        subs = [{b: states.get((i, b), ev.EMPTY) for b in reads(c, at, tz, later)} for i, (_s, c) in enumerate(crits)]
        if not all(ev.is_met_at(c, sub, at, tz, later) for (_s, c), sub in zip(crits, subs, strict=True)):
            continue
        key = repeat_key(rule, crits, subs, at, tz, keys)
        if key is not None and key not in keys:
            keys.add(key)
            awarded.append(at)
    return awarded


def rule_of(body: SimulationIn) -> BadgeRule:
    return BadgeRule(
        id=0, key="simulated", name="simulated", points=body.points,
        visibility="seasonal" if body.available_from else "public", repeatable=body.repeatable,
        available_from=body.available_from, available_until=body.available_until,
        criteria=tuple((f"c{i}", c) for i, c in enumerate(body.criteria)),
    )


async def simulate(session: AsyncSession, settings: Settings, body: SimulationIn) -> SimulationOut:
    compare = await badges_service.get(session, body.compare_with) if body.compare_with else None
    tz = settings.tz
    now = utcnow()
    since = now - timedelta(days=body.days)
    rule = rule_of(body)
    types = sorted({c.event for c in body.criteria})
    # A revoked award's badge.awarded event stays in the log, but no longer counts (the revoke took it back out).
    revoked = await audit.revoked_award_ids(session) if BADGE_AWARDED in types else set()
    earners: dict[int, list[datetime]] = {}
    scanned = members = 0
    truncated = False
    current: int | None = None
    history: list[tuple[str, datetime, dict[str, Any]]] = []

    async def settle_member() -> None:
        nonlocal members
        if current is None:
            return
        members += 1
        times = replay_member(rule, history, tz)
        if times:
            earners[current] = times
        history.clear()
        if members % 50 == 0:
            await asyncio.sleep(0)  # let requests waiting on this worker's event loop through

    async for user_id, type_, at, attributes in events_repo.history_of_types(session, types, since, now + MAX_FUTURE):
        if user_id != current:
            if scanned >= EVENT_LIMIT:
                truncated = True
                break
            await settle_member()
            current = user_id
        if type_ == BADGE_AWARDED and attributes.get("award_id") in revoked:
            continue
        if len(history) >= MEMBER_EVENT_LIMIT:
            truncated = True  # this member's later events are left out
            continue
        history.append((type_, at, attributes))
        scanned += 1
    await settle_member()
    per_day = Counter(local_date(at, tz).isoformat() for times in earners.values() for at in times)
    holders = len(await badges_repo.holders_among(session, compare.id, list(earners))) if compare else None
    awards = sum(len(t) for t in earners.values())
    everyone = await badges_repo.member_count(session)
    return SimulationOut(
        since=since, until=now, events_scanned=scanned, members_scanned=members,
        members_would_earn=len(earners), share_of_members=round(len(earners) / everyone, 4) if everyone else 0.0,
        awards=awards, points_budget=awards * body.points, already_holding=holders,
        awards_per_day=[{"date": d, "awards": n} for d, n in sorted(per_day.items())],
        truncated=truncated, event_limit=EVENT_LIMIT, member_event_limit=MEMBER_EVENT_LIMIT,
    )
