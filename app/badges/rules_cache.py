"""Active badge rules per database, cached briefly so ingestion does not reload them for every event.

Changes made through this process invalidate at once; other replicas see them within TTL_SECONDS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.badges import repository as badges_repo
from app.models import Badge
from app.rules.criteria import Criterion, criterion_key

TTL_SECONDS = 2.0


@dataclass(frozen=True)
class BadgeRule:
    """What the engine needs of a badge: an immutable snapshot, safe to share between sessions."""

    id: int
    key: str
    name: str
    points: int
    visibility: str
    repeatable: bool
    available_from: datetime | None
    available_until: datetime | None
    criteria: tuple[tuple[str, Criterion], ...]


def rule_of(badge: Badge) -> BadgeRule:
    crits = tuple((scope_of(badge.id, c), c) for c in (Criterion.model_validate(raw) for raw in badge.criteria))
    return BadgeRule(badge.id, badge.key, badge.name, badge.points, badge.visibility, badge.repeatable,
                     badge.available_from, badge.available_until, crits)


def scope_of(badge_id: int, c: Criterion) -> str:
    """Counter scope: per badge and criterion, so a changed criterion starts from zero."""
    return f"b{badge_id}:{criterion_key(c)[:24]}"


_cache: dict[int, tuple[float, list[BadgeRule]]] = {}


def invalidate() -> None:
    _cache.clear()


async def auto_awardable(session: AsyncSession) -> list[BadgeRule]:
    key = id(session.get_bind())
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < TTL_SECONDS:
        return hit[1]
    rules = [rule_of(b) for b in await badges_repo.auto_awardable(session)]
    _cache[key] = (now, rules)
    return rules
