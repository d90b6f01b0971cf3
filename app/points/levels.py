"""The level ladder: which level a points total reaches, and what is next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.cache import DefinitionCache
from app.kit.dialect import lock_key
from app.models import BadgeLevel

MAX_LEVELS = 9

# The product's default 9-level ladder; the first migration installs the same rows.
DEFAULT_LADDER: list[tuple[str, int]] = [
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


@dataclass(frozen=True)
class Level:
    """One rung of the ladder, detached from any session (it is cached between requests)."""

    rank: int
    name: str
    icon: str | None
    points_required: int


@dataclass(frozen=True)
class LevelStatus:
    level: Level | None
    next_level: Level | None
    points_to_next: int | None


async def _load(session: AsyncSession) -> tuple[Level, ...]:
    rows = (await session.execute(select(BadgeLevel).order_by(BadgeLevel.rank))).scalars().all()
    return tuple(Level(r.rank, r.name, r.icon, r.points_required) for r in rows)


# Every points credit checks the ladder; it changes only through replace_ladder below.
_LADDER: DefinitionCache[tuple[Level, ...]] = DefinitionCache(_load)


async def ladder(session: AsyncSession) -> tuple[Level, ...]:
    return await _LADDER.get(session)


async def ladder_locked(session: AsyncSession) -> tuple[Level, ...]:
    """The ladder as committed, read under the ladder's lock (held to the end of the transaction): a definition
    checked against it cannot race a ladder replacement (see points.service.replace_ladder)."""
    await lock_key(session, "badge-levels")
    return await _load(session)


def status_in(levels: Sequence[Level], points: int) -> LevelStatus:
    current: Level | None = None
    nxt: Level | None = None
    for lvl in levels:
        if points >= lvl.points_required:
            current = lvl
        elif nxt is None:
            nxt = lvl
    return LevelStatus(current, nxt, (nxt.points_required - points) if nxt else None)


async def status_for(session: AsyncSession, points: int) -> LevelStatus:
    return status_in(await ladder(session), points)


def crossed(levels: Sequence[Level], before: int, after: int) -> list[Level]:
    """Levels reached by moving from `before` to `after` points, lowest first."""
    return [lvl for lvl in levels if before < lvl.points_required <= after]


async def replace_ladder(session: AsyncSession, items: Sequence[tuple[str, str | None, int]]) -> None:
    await lock_key(session, "badge-levels")  # two admins saving at once: the later one wins, neither fails
    await session.execute(delete(BadgeLevel))
    session.add_all(
        BadgeLevel(rank=i + 1, name=name, icon=icon, points_required=pts) for i, (name, icon, pts) in enumerate(items)
    )
    await session.flush()
    _LADDER.invalidate_with(session)


async def install_default(session: AsyncSession) -> None:
    await replace_ladder(session, [(name, f"level-{i + 1}", pts) for i, (name, pts) in enumerate(DEFAULT_LADDER)])
