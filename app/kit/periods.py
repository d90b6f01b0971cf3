"""Calendar periods (day, week, month, year) in a program's time zone.

Badges such as "3 stores in one month" or "7-day check-in streak" are judged by the
calendar of the loyalty program (e.g. Asia/Shanghai), not by UTC, so every instant is
converted to the program zone before it is bucketed. Weeks are ISO weeks (Monday start,
ISO week-numbering year), so 2027-01-01 belongs to ``2026-W53``.

Keys are human-readable strings (stored as bucket names); ordinals are consecutive
integers per unit (used for streak arithmetic: period N+1 follows period N).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Literal, get_args

Unit = Literal["day", "week", "month", "year"]
UNITS: tuple[str, ...] = get_args(Unit)

# ASCII digits only: `\d` also matches other scripts' digits ("٢٠٢٦-W48"), which int() reads, so such a key would
# parse as a period without being its key. `\Z`, not `$`, which lets a trailing newline through.
_DAY_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_WEEK_RE = re.compile(r"^([0-9]{4})-W([0-9]{2})\Z")
_MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")
_YEAR_RE = re.compile(r"^([0-9]{4})\Z")


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ValueError(f"unknown period unit {unit!r}; expected one of {', '.join(UNITS)}")


@lru_cache(maxsize=4096)
def local_date(at: datetime, tz: tzinfo) -> date:
    """The calendar date of an aware instant in ``tz`` (naive datetimes are ambiguous: rejected).

    Cached: the engine asks it for the same instant once per criterion and bucket (~0.4 µs each uncached)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return at.astimezone(tz).date()


def _start_date(unit: str, d: date) -> date:
    """First calendar date of the period of ``unit`` containing ``d``."""
    if unit == "day":
        return d
    if unit == "week":
        return d - timedelta(days=d.weekday())
    if unit == "month":
        return d.replace(day=1)
    return d.replace(month=1, day=1)


def _date_ordinal(unit: str, d: date) -> int:
    if unit == "day":
        return d.toordinal()
    if unit == "week":
        # date(1, 1, 1) is a Monday with ordinal 1, so Mondays are 1 (mod 7).
        return (_start_date("week", d).toordinal() - 1) // 7
    if unit == "month":
        return d.year * 12 + d.month - 1
    return d.year


def _ordinal_start_date(unit: str, ordinal: int) -> date:
    if unit == "day":
        return date.fromordinal(ordinal)
    if unit == "week":
        return date.fromordinal(ordinal * 7 + 1)
    if unit == "month":
        return date(ordinal // 12, ordinal % 12 + 1, 1)
    return date(ordinal, 1, 1)


def _date_key(unit: str, d: date) -> str:
    if unit == "day":
        return d.isoformat()
    if unit == "week":
        iso = d.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if unit == "month":
        return f"{d.year:04d}-{d.month:02d}"
    return f"{d.year:04d}"


def _key_start_date(unit: str, key: str) -> date:
    """Parse a period key back to the first date of its period (ValueError if malformed)."""
    try:
        if unit == "day" and (m := _DAY_RE.match(key)):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if unit == "week" and (m := _WEEK_RE.match(key)):
            return date.fromisocalendar(int(m[1]), int(m[2]), 1)
        if unit == "month" and (m := _MONTH_RE.match(key)):
            return date(int(m[1]), int(m[2]), 1)
        if unit == "year" and (m := _YEAR_RE.match(key)):
            return date(int(m[1]), 1, 1)
    except ValueError as exc:
        raise ValueError(f"invalid {unit} period key {key!r}: {exc}") from None
    raise ValueError(f"invalid {unit} period key {key!r}")


def _midnight(d: date, tz: tzinfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz)


@lru_cache(maxsize=16384)
def period_key(unit: str, at: datetime, tz: tzinfo) -> str:
    """Key of the period containing ``at`` in ``tz``: "2026-11-23", "2026-W48", "2026-11", "2026".

    Memoised: the engine asks it for every criterion of every event (and a batch holds many instants twice).
    """
    _check_unit(unit)
    return _date_key(unit, local_date(at, tz))


def period_ordinal(unit: str, at: datetime, tz: tzinfo) -> int:
    """Consecutive integer of the period containing ``at`` (next period = ordinal + 1); for streaks."""
    _check_unit(unit)
    return _date_ordinal(unit, local_date(at, tz))


def key_ordinal(unit: str, key: str) -> int:
    """Ordinal of a period given its key."""
    _check_unit(unit)
    return _date_ordinal(unit, _key_start_date(unit, key))


def ordinal_key(unit: str, ordinal: int) -> str:
    """Key of a period given its ordinal."""
    _check_unit(unit)
    return _date_key(unit, _ordinal_start_date(unit, ordinal))


def ordinal_bounds(unit: str, ordinal: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """Aware [start, end) of the period with this ordinal, in ``tz``."""
    _check_unit(unit)
    return (
        _midnight(_ordinal_start_date(unit, ordinal), tz),
        _midnight(_ordinal_start_date(unit, ordinal + 1), tz),
    )


def period_bounds(unit: str, key: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """Aware [start, end) of the period named by ``key``, in ``tz``."""
    return ordinal_bounds(unit, key_ordinal(unit, key), tz)


def previous_key(unit: str, key: str, tz: tzinfo | None = None) -> str:
    """Key of the period just before ``key`` (``tz`` is accepted for symmetry; keys are zone-free)."""
    return ordinal_key(unit, key_ordinal(unit, key) - 1)


def next_key(unit: str, key: str, tz: tzinfo | None = None) -> str:
    """Key of the period just after ``key``."""
    return ordinal_key(unit, key_ordinal(unit, key) + 1)
