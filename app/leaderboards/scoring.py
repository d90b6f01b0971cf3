"""Pure scoring: which views of which boards an event or a points credit moves, by how much, in which period.

No I/O here, so the rules (metric matching, the event's own period, dimension views) are unit-testable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from app.kit.periods import key_ordinal, period_bounds, period_key, previous_key
from app.leaderboards.repository import ScoreChange
from app.leaderboards.schemas import Metric
from app.rules import evaluator as ev

ALL_TIME = "all"
UNITS = {"daily": "day", "weekly": "week", "monthly": "month"}
MAX_DIM_LENGTH = 160
BADGE_EVENT = "badge.awarded"


@dataclass(frozen=True)
class ActiveBoard:
    id: int
    key: str
    period: str
    metric: Metric
    city: bool
    attributes: tuple[str, ...]  # attribute dimensions, e.g. ("category",)


_PARSED: dict[tuple[int, datetime], ActiveBoard] = {}


def parse(row: Any) -> ActiveBoard:
    """An active board from its row (id, key, metric, period, dimensions, updated_at); cached per version."""
    cache_key = (row.id, row.updated_at)
    hit = _PARSED.get(cache_key)
    if hit is None:
        if len(_PARSED) > 10_000:
            _PARSED.clear()
        dims = list(row.dimensions or [])
        hit = ActiveBoard(
            id=row.id, key=row.key, period=row.period, metric=Metric.model_validate(row.metric),
            city="city" in dims, attributes=tuple(d for d in dims if d not in ("city", "friends")),
        )
        _PARSED[cache_key] = hit
    return hit


# --------------------------------------------------------------------------- periods


def period_of(period: str, at: datetime, tz: tzinfo) -> str:
    """Period id containing `at`: "2026-11-23", "2026-W48", "2026-11", or "all"."""
    if period == "all_time":
        return ALL_TIME
    return period_key(UNITS[period], at, tz)


def resolve_period(period: str, requested: str, now: datetime, tz: tzinfo) -> str:
    """`current`, `previous` or a period id of this board's kind; ValueError when it is not one."""
    current = period_of(period, now, tz)
    if requested == "current":
        return current
    if period == "all_time":
        if requested == ALL_TIME:
            return ALL_TIME
        raise ValueError("an all-time board has one period: 'current' (or 'all')")
    unit = UNITS[period]
    if requested == "previous":
        return previous_key(unit, current)
    key_ordinal(unit, requested)  # raises ValueError when malformed
    try:
        start: datetime | None = period_bounds(unit, requested, tz)[0]
    except (ValueError, OverflowError):  # the last period a date can hold ends past year 9999
        start = None
    if start is None or not 1970 <= start.year < 2200:
        # Events are taken from 1970 to 2200 (kit.schemas), and before 1970 zones read oddly (+08:05 in Shanghai).
        raise ValueError("period must be between 1970 and 2199")
    return requested


def bounds(period: str, period_id: str, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    if period == "all_time":
        return None, None
    return period_bounds(UNITS[period], period_id, tz)


# --------------------------------------------------------------------------- views


def attribute_view(name: str, value: Any) -> str | None:
    """The dim of an attribute value ("category:shoes"), or None when the value cannot name a view."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    text = value if isinstance(value, str) else str(value)
    dim = f"{name}:{text}"
    return dim if text and len(dim) <= MAX_DIM_LENGTH else None


def city_view(city: str | None) -> str | None:
    """The dim of a city's view ("city:Shanghai"), None for a member with no city."""
    return f"city:{city}" if city else None


def views(board: ActiveBoard, city: str | None, attributes: Mapping[str, Any]) -> list[str]:
    """Every view a contribution lands in: the whole board, the member's city, each attribute dimension."""
    out = [""]
    in_city = city_view(city) if board.city else None
    if in_city:
        out.append(in_city)
    for name in board.attributes:
        dim = attribute_view(name, ev.lookup(attributes, name))
        if dim is not None:
            out.append(dim)
    return out


def _amount(metric: Metric, event_type: str, attributes: Mapping[str, Any]) -> Decimal | None:
    if metric.type == "points":
        return None
    wanted = BADGE_EVENT if metric.type == "badges" else metric.event
    if event_type != wanted or not all(ev.condition_holds(w, attributes) for w in metric.where):
        return None
    if metric.type == "sum":
        return ev.to_decimal(ev.lookup(attributes, metric.field or ""))
    return Decimal(1)


def event_changes(
    boards: Iterable[ActiveBoard], event_type: str, attributes: Mapping[str, Any], occurred_at: datetime,
    city: str | None, tz: tzinfo,
) -> list[ScoreChange]:
    """Score moves for one event; each lands in the period the event occurred in (late events included)."""
    out: list[ScoreChange] = []
    for board in boards:
        amount = _amount(board.metric, event_type, attributes)
        if amount is None or amount == 0:
            continue
        period = period_of(board.period, occurred_at, tz)
        out.extend(ScoreChange(board.id, period, dim, amount, occurred_at) for dim in views(board, city, attributes))
    return out


def points_changes(
    boards: Sequence[ActiveBoard], amount: int, attributes: Mapping[str, Any], at: datetime, city: str | None,
    tz: tzinfo,
) -> list[ScoreChange]:
    """Score moves for one points credit (debits lower the score unless the board's `where` excludes them)."""
    out: list[ScoreChange] = []
    if amount == 0:
        return out
    for board in boards:
        if board.metric.type != "points" or not all(ev.condition_holds(w, attributes) for w in board.metric.where):
            continue
        period = period_of(board.period, at, tz)
        out.extend(ScoreChange(board.id, period, dim, Decimal(amount), at) for dim in views(board, city, attributes))
    return out
