"""Active badge rules per database, cached briefly so ingestion does not reload them for every event.

Changes made through this process invalidate at once; other replicas see them within the TTL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.badges import repository as badges_repo
from app.kit.cache import DefinitionCache
from app.models import Badge
from app.rules.criteria import Criterion, criterion_key

log = logging.getLogger("laurel.badges")


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
    """Counter scope: per badge and what the criterion counts, so a criterion counting something else starts from
    zero, and one whose threshold (or streak grace) changed keeps its progress."""
    return f"{scope_prefix(badge_id)}{criterion_key(c)[:24]}"


def scope_prefix(badge_id: int) -> str:
    """What the scopes of every criterion a badge has ever had start with."""
    return f"b{badge_id}:"


@dataclass(frozen=True)
class RuleSet:
    """The auto-awardable badges, and per event type the badges with a criterion on it (in id order), so an
    event looks only at the badges it can move."""

    badges: tuple[BadgeRule, ...]
    by_type: dict[str, tuple[BadgeRule, ...]]

    def for_type(self, event_type: str) -> tuple[BadgeRule, ...]:
        return self.by_type.get(event_type, ())


def rule_set(badges: list[BadgeRule]) -> RuleSet:
    by_type: dict[str, list[BadgeRule]] = {}
    for b in badges:
        for t in dict.fromkeys(c.event for _s, c in b.criteria):
            by_type.setdefault(t, []).append(b)
    return RuleSet(tuple(badges), {t: tuple(bs) for t, bs in by_type.items()})


async def criteria_by_scope(session: AsyncSession) -> dict[str, Criterion]:
    """Every badge's criteria (any status) by counter scope, for taking a revoked award's event back out of the
    counters it moved. Not cached: revokes are rare."""
    found: dict[str, Criterion] = {}
    for badge in await badges_repo.list_all(session):
        rule = valid_rule(badge)
        if rule is not None:
            found.update(rule.criteria)
    return found


def valid_rule(badge: Badge) -> BadgeRule | None:
    """`rule_of`, or None for a stored rule that no longer validates (a row written before a stricter check):
    it must not stop ingestion or the collection for every badge, so it is left out, loudly, until an admin
    fixes or deletes it."""
    try:
        return rule_of(badge)
    except ValidationError:
        log.exception("badge %r has a stored rule that does not validate; it is neither awarded nor shown "
                      "with progress", badge.key)
        return None


async def _load(session: AsyncSession) -> RuleSet:
    rules = [valid_rule(b) for b in await badges_repo.auto_awardable(session)]
    return rule_set([r for r in rules if r is not None])


_rules: DefinitionCache[RuleSet] = DefinitionCache(_load)


def invalidate(session: AsyncSession) -> None:
    """Badge rules changed in this transaction: this process stops using the cached ones now and at commit."""
    _rules.invalidate_with(session)


async def auto_awardable(session: AsyncSession) -> RuleSet:
    return await _rules.get(session)
