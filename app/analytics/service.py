"""Analytics: what the numbers mean is decided here; the SQL is in the repository."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.analytics import repository as repo
from app.analytics.schemas import (
    BadgeReportRow,
    ChallengeReportRow,
    Overview,
    Retention,
    RetentionGroup,
    TierReportRow,
)
from app.badges import service as badges_service
from app.challenges import service as challenges_service
from app.errors import InvalidInput
from app.kit.clock import utcnow
from app.kit.spreadsheet import cell

DEFAULT_COHORT_DAYS = 90
RETENTION_DEFINITION = (
    "Cohort: members whose first event of their own occurred in [cohort_from, cohort_until). Retained: they had "
    "an event at least `days` days after that first one. Earners: they earned the badge (any badge when none is "
    "named) within those `days` days, timed by the event that completed it (a manual grant or a challenge reward "
    "by its award time); others: the rest of the cohort."
)


def _rate(part: int, whole: int) -> float:
    """Exact (not rounded): a client rounds for display, and compares against its own ratios."""
    return part / whole if whole else 0.0


async def overview(session: AsyncSession) -> Overview:
    now = utcnow()
    await challenges_service.expire_due(session, now)  # participations past their deadline are no longer active
    members = await repo.member_count(session)
    awards, earners = await repo.award_totals(session)
    joined, active = await repo.participants(session)
    return Overview(
        members=members,
        active_members_7d=await repo.active_members(session, now - timedelta(days=7)),
        active_members_30d=await repo.active_members(session, now - timedelta(days=30)),
        members_with_badges=earners,
        awards=awards,
        badges_per_member=_rate(awards, members),
        badges_per_earner=_rate(awards, earners),
        challenge_participants=joined,
        active_challenge_participants=active,
        points_outstanding=await repo.points_outstanding(session),
    )


async def retention(
    session: AsyncSession,
    *,
    days: int,
    badge: str | None,
    tier: str | None = None,
    segment: str | None = None,
    cohort_from: datetime | None,
    cohort_until: datetime | None,
) -> Retention:
    """Do members who earn badges come back more than those who do not? (The seeds' "retention cohorts".)

    By default the cohort is the 90 days ending `days` ago, so every member in it has had the whole horizon to
    return."""
    until = cohort_until or utcnow() - timedelta(days=days)
    since = cohort_from or until - timedelta(days=DEFAULT_COHORT_DAYS)
    if since >= until:
        raise InvalidInput(
            "cohort_from must be before cohort_until",
            details=[{"field": "query.cohort_from", "message": "must be before cohort_until"}],
        )
    badge_id = (await badges_service.get(session, badge)).id if badge is not None else None
    earned = await repo.first_awards(session, badge_id)
    horizon = timedelta(days=days)
    groups = {True: [0, 0], False: [0, 0]}  # earner? → [members, retained]
    cohort = await repo.cohort_activity(session, since, until, tier)
    if segment is not None:
        tagged = await repo.members_in_segment(session, [row[0] for row in cohort], segment)
        cohort = [row for row in cohort if row[0] in tagged]
    for user_id, first_at, last_at in cohort:
        at = earned.get(user_id)
        group = groups[at is not None and at < first_at + horizon]
        group[0] += 1
        group[1] += last_at >= first_at + horizon
    e, o = (RetentionGroup(members=m, retained=r, retention_rate=_rate(r, m) if m else None)
            for m, r in (groups[True], groups[False]))
    # Exact, as the rates are (see _rate): rounded, it no longer equalled the earners' rate minus the others'.
    lift = None if e.retention_rate is None or o.retention_rate is None else e.retention_rate - o.retention_rate
    return Retention(
        days=days, badge=badge, tier=tier, segment=segment, cohort_from=since, cohort_until=until, earners=e,
        others=o, lift=lift,
        horizon_complete=until + horizon <= utcnow(), definition=RETENTION_DEFINITION,
    )


async def tier_report(session: AsyncSession) -> list[TierReportRow]:
    """The seeds' "insights by customer segment and tier", by tier: members without one last."""
    rows = await repo.tier_rows(session, utcnow() - timedelta(days=30))
    return [
        TierReportRow(tier=tier, badges_per_member=_rate(v["awards"], v["members"]), **v)
        for tier, v in sorted(rows.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        if v["members"]
    ]


async def badge_report(session: AsyncSession) -> list[BadgeReportRow]:
    members = await repo.member_count(session)
    return [
        BadgeReportRow(
            key=key, name=name, status=status, visibility=visibility, points=points, holders=holders,
            awards=awards, rarity=_rate(holders, members), first_awarded_at=first, last_awarded_at=last,
        )
        for key, name, status, visibility, points, holders, awards, first, last in sorted(
            await repo.badge_rows(session))  # by key, in code point order whatever the database's collation
    ]


async def challenge_report(session: AsyncSession) -> list[ChallengeReportRow]:
    await challenges_service.expire_due(session, utcnow())  # statuses as of now, as the per-challenge stats
    return [
        ChallengeReportRow(
            key=key, title=title, status=status, schedule_type=schedule, joined=joined, members=members,
            active=active, completed=completed, expired=expired, completion_rate=_rate(completed, joined),
        )
        for key, title, status, schedule, joined, members, active, completed, expired in sorted(
            await repo.challenge_rows(session))  # by key, in code point order whatever the database's collation
    ]


def to_csv(columns: Sequence[str], rows: Iterable[Any]) -> str:
    """Report rows (Pydantic models) as CSV, a header line first."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(getattr(row, c)) for c in columns])
    return buf.getvalue()
