"""Pure, incremental evaluation of criteria.

The storage layer keeps one :class:`CounterState` per (user, criterion_key, bucket) and
drives these functions; nothing here does I/O, so every rule is unit-testable. The flow
for an incoming event is::

    if matches(c, event.type, event.attributes):
        bucket = bucket_for(c, event.occurred_at, tz)
        if bucket is not None:
            new = apply(c, load(bucket), event.occurred_at, event.attributes, tz)
            save(bucket, new)
            states = {b: load(b) for b in buckets_needed(c, event.occurred_at, tz)}
            if is_met_at(c, states, event.occurred_at, tz): award()

Buckets are named by calendar period keys in the program zone ("2026-11" for a monthly
window, "2026-11-23" days for rolling windows) or "lifetime"/"fixed". Streaks keep the set
of active period ordinals in the lifetime bucket, so late events can fill holes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from app.kit.periods import (
    local_date,
    ordinal_key,
    period_bounds,
    period_key,
    period_ordinal,
)
from app.rules.criteria import (
    MAX_MAGNITUDE,
    CalendarWindow,
    Condition,
    Criterion,
    FixedWindow,
    LifetimeWindow,
    Op,
    RollingWindow,
    is_number,
    threshold_decimal,
)

LIFETIME = "lifetime"
FIXED = "fixed"


class _Missing:
    """Sentinel for an attribute path that does not resolve (distinct from a JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --------------------------------------------------------------------------- matching


def lookup(attributes: Mapping[str, Any], path: str) -> Any:
    """Resolve a dotted path ("items.sku") through nested mappings; MISSING if any step fails."""
    cur: Any = attributes
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def _scalar_eq(a: Any, b: Any) -> bool:
    """Type-strict equality: numbers compare numerically, but never with bools or strings."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _compare(op: Op, actual: Any, expected: Any) -> bool:
    if not (is_number(actual) and is_number(expected)):
        return False
    try:
        if op == Op.gt:
            return bool(actual > expected)
        if op == Op.gte:
            return bool(actual >= expected)
        if op == Op.lt:
            return bool(actual < expected)
        return bool(actual <= expected)
    except (TypeError, InvalidOperation):  # e.g. Decimal NaN signalling comparisons
        return False


def condition_holds(cond: Condition, attributes: Mapping[str, Any]) -> bool:
    """Whether one ``where`` condition holds; never raises on odd data (it is just False)."""
    actual = lookup(attributes, cond.field)
    op, expected = cond.op, cond.value
    present = actual is not MISSING and actual is not None
    if op == Op.exists:
        return present if expected is None or expected is True else not present
    if actual is MISSING:
        return op in (Op.ne, Op.not_in)
    if op == Op.eq:
        return _scalar_eq(actual, expected)
    if op == Op.ne:
        return not _scalar_eq(actual, expected)
    if op == Op.in_:
        return any(_scalar_eq(actual, v) for v in expected)
    if op == Op.not_in:
        return not any(_scalar_eq(actual, v) for v in expected)
    if op == Op.contains:
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list | tuple):
            return any(_scalar_eq(item, expected) for item in actual)
        return False
    return _compare(op, actual, expected)


def matches(c: Criterion, event_type: str, attributes: Mapping[str, Any]) -> bool:
    """Whether an event counts toward ``c`` at all (type equal and every condition holds)."""
    return event_type == c.event and all(condition_holds(w, attributes) for w in c.where)


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Contribution:
    """What one matching event adds: ``amount`` for sum, ``distinct`` for count_distinct."""

    amount: Decimal | None = None
    distinct: str | None = None


def to_decimal(v: Any) -> Decimal | None:
    """Exact Decimal of a finite number or numeric string within ±MAX_MAGNITUDE; None if it is not one (bools
    excluded). A larger value is no amount: summed, it would overflow the progress and scores shown."""
    if isinstance(v, bool):
        return None
    if isinstance(v, Decimal):
        d = v
    elif isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, float):
        if not math.isfinite(v):
            return None
        d = Decimal(repr(v))  # repr, not the binary expansion: 0.1 -> Decimal("0.1")
    elif isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return d if d.is_finite() and abs(d) <= MAX_MAGNITUDE else None


def canonical_value(v: Any) -> str:
    """Stable string identity of a distinct value: strings as-is, a number by its value (1 and 1.0 are one store,
    as `eq` holds them equal; 7 and "7" are one too, as a POS and a CRM may spell an id either way), anything else
    as sorted JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
        return str(int(v))
    return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def measure(c: Criterion, attributes: Mapping[str, Any]) -> Contribution | None:
    """The event's contribution, or None when it cannot contribute (missing/non-numeric field)."""
    if c.aggregate == "sum":
        amount = to_decimal(lookup(attributes, c.field or ""))
        return None if amount is None else Contribution(amount=amount)
    if c.aggregate == "count_distinct":
        v = lookup(attributes, c.field or "")
        if v is MISSING or v is None:
            return None
        return Contribution(distinct=canonical_value(v))
    return Contribution()


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class CounterState:
    """Aggregated state of one (user, criterion, bucket); immutable so ``apply`` stays pure."""

    count: int = 0
    total: Decimal = Decimal(0)
    distinct: frozenset[str] = field(default_factory=frozenset)
    periods: tuple[int, ...] = ()
    # Rolling windows keep each event of the day — (epoch seconds, amount, distinct value) — so a window
    # of "the N days up to an instant" is exact to the second, not rounded to calendar days.
    entries: tuple[tuple[float, str | None, str | None], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict for storage (Decimal as string to stay exact)."""
        data: dict[str, Any] = {
            "count": self.count,
            "total": str(self.total),
            "distinct": sorted(self.distinct) if self.distinct else [],
            "periods": list(self.periods),
        }
        if self.entries:
            data["entries"] = [list(e) for e in self.entries]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CounterState:
        """Inverse of :meth:`to_json`; tolerant of missing keys (and None) for empty state."""
        if not data:
            return cls()
        return cls(
            count=int(data.get("count", 0)),
            total=Decimal(str(data.get("total", "0"))),
            distinct=frozenset(str(x) for x in data.get("distinct", ())),
            periods=tuple(sorted({int(p) for p in data.get("periods", ())})),
            entries=tuple((float(e[0]), e[1], e[2]) for e in data.get("entries", ())),
        )


EMPTY = CounterState()


def _streak_unit(c: Criterion) -> str:
    assert isinstance(c.window, CalendarWindow), "streak criteria have calendar windows"
    return c.window.unit


def bucket_for(c: Criterion, occurred_at: datetime, tz: tzinfo) -> str | None:
    """The bucket an event at ``occurred_at`` updates, or None if its window ignores it."""
    local_date(occurred_at, tz)  # rejects naive datetimes uniformly, whatever the window
    w = c.window
    if c.aggregate == "streak" or isinstance(w, LifetimeWindow):
        return LIFETIME
    if isinstance(w, CalendarWindow):
        return period_key(w.unit, occurred_at, tz)
    if isinstance(w, RollingWindow):
        return period_key("day", occurred_at, tz)
    if isinstance(w, FixedWindow):
        return FIXED if w.start <= occurred_at < w.end else None
    raise TypeError(f"unsupported window {w!r}")


def apply(
    c: Criterion,
    state: CounterState,
    occurred_at: datetime,
    attributes: Mapping[str, Any],
    tz: tzinfo,
) -> CounterState:
    """A new state with one matching event folded in (unchanged if the event cannot contribute).

    The caller has already checked :func:`matches` and :func:`bucket_for`.
    """
    contrib = measure(c, attributes)
    if contrib is None:
        return state
    # One constructor call rather than a dataclasses.replace per changed field: this runs for every counter an
    # event moves.
    total, distinct, periods, entries = state.total, state.distinct, state.periods, state.entries
    if contrib.amount is not None:
        total = total + contrib.amount
    if contrib.distinct is not None and contrib.distinct not in distinct:
        distinct = distinct | {contrib.distinct}
    if c.aggregate == "streak":
        p = period_ordinal(_streak_unit(c), occurred_at, tz)
        if p not in periods:
            periods = tuple(sorted((*periods, p)))
    if isinstance(c.window, RollingWindow):
        amount = str(contrib.amount) if contrib.amount is not None else None
        entry = (occurred_at.timestamp(), amount, contrib.distinct)
        entries = tuple(sorted((*entries, entry), key=lambda e: e[0]))
    return CounterState(count=state.count + 1, total=total, distinct=distinct, periods=periods, entries=entries)


def moved(c: Criterion, before: CounterState, after: CounterState) -> bool:
    """Whether folding an event in changed what the criterion measures: a distinct value already counted, an
    event without the summed or counted field, a second check-in of a streak's day leave it where it was."""
    if c.aggregate == "streak":
        return before.periods != after.periods
    return _metric(c, before) != _metric(c, after)


def retract(
    c: Criterion,
    state: CounterState,
    occurred_at: datetime,
    attributes: Mapping[str, Any],
    tz: tzinfo,
    standing: Iterable[tuple[datetime, Mapping[str, Any]]] = (),
) -> CounterState:
    """The state with one event that :func:`apply` folded in taken back out (a revoked award's event).

    A distinct value or a streak period stays while another event of the same bucket still supplies it:
    ``standing`` lists those events (occurred_at, attributes), as a set alone cannot tell. The caller retracts
    only from states that counted the event (an award records them); an empty state is left as it is.
    """
    contrib = measure(c, attributes)
    if contrib is None or state == EMPTY:
        return state
    others = [(at, measure(c, attrs)) for at, attrs in standing]
    total, distinct, periods, entries = state.total, state.distinct, state.periods, state.entries
    if contrib.amount is not None:
        total = total - contrib.amount
    if contrib.distinct is not None and contrib.distinct in distinct and not any(
        o is not None and o.distinct == contrib.distinct for _at, o in others
    ):
        distinct = distinct - {contrib.distinct}
    if c.aggregate == "streak":
        unit = _streak_unit(c)
        p = period_ordinal(unit, occurred_at, tz)
        if p in periods and not any(o is not None and period_ordinal(unit, at, tz) == p for at, o in others):
            periods = tuple(x for x in periods if x != p)
    if isinstance(c.window, RollingWindow):
        amount = str(contrib.amount) if contrib.amount is not None else None
        entry = (occurred_at.timestamp(), amount, contrib.distinct)
        if entry in entries:
            kept = list(entries)
            kept.remove(entry)
            entries = tuple(kept)
    return CounterState(
        count=max(state.count - 1, 0), total=total, distinct=distinct, periods=periods, entries=entries
    )


# --------------------------------------------------------------------------- streaks


def _runs(periods: tuple[int, ...], grace: int) -> list[tuple[int, int, int]]:
    """Maximal streak runs as (first, last, active_count); gaps of <= grace missed periods bridge."""
    runs: list[tuple[int, int, int]] = []
    for p in sorted(set(periods)):
        if runs and p - runs[-1][1] - 1 <= grace:
            first, _, n = runs[-1]
            runs[-1] = (first, p, n + 1)
        else:
            runs.append((p, p, 1))
    return runs


def streak_through(c: Criterion, state: CounterState, ordinal: int) -> int:
    """Active periods in the streak run containing active period ``ordinal`` (0 if inactive)."""
    run = streak_run(c, state, ordinal)
    return run[2] if run else 0


def streak_run(c: Criterion, state: CounterState, ordinal: int) -> tuple[int, int, int] | None:
    """(first period, last period, active periods) of the streak run holding active period ``ordinal``; None if
    that period is inactive."""
    if ordinal not in state.periods:
        return None
    for first, last, n in _runs(state.periods, c.grace):
        if first <= ordinal <= last:
            return first, last, n
    return None


def current_streak(c: Criterion, state: CounterState, ordinal: int) -> int:
    """The streak still alive at period ``ordinal``, ignoring later periods.

    Alive means its last active period is ``ordinal`` or can still be bridged to it: at most
    ``grace`` missed periods lie between them (so yesterday's streak still shows today).
    """
    past = tuple(p for p in state.periods if p <= ordinal)
    runs = _runs(past, c.grace)
    if not runs:
        return 0
    _, last, n = runs[-1]
    return n if ordinal - last - 1 <= c.grace else 0


def best_streak(c: Criterion, state: CounterState) -> int:
    """The longest streak (active periods, grace-bridged) anywhere in history."""
    return max((n for _, _, n in _runs(state.periods, c.grace)), default=0)


# --------------------------------------------------------------------------- values


def _metric(c: Criterion, state: CounterState) -> Decimal:
    if c.aggregate == "sum":
        return state.total
    if c.aggregate == "count_distinct":
        return Decimal(len(state.distinct))
    return Decimal(state.count)


@lru_cache(maxsize=8192)
def _rolling_day_keys(days: int, at: datetime, tz: tzinfo) -> tuple[str, ...]:
    """Day buckets that can hold events of (at - days, at]: up to days + 1 calendar days, newest first."""
    today = local_date(at, tz).toordinal()
    first = local_date(at - timedelta(days=days), tz).toordinal()
    return tuple(ordinal_key("day", d) for d in range(today, first - 1, -1))


def _rolling_value(c: Criterion, parts: list[CounterState], at: datetime) -> Decimal:
    """The exact measure over (at - days, at] from the events kept in the day buckets."""
    assert isinstance(c.window, RollingWindow)
    hi = at.timestamp()
    lo = hi - c.window.days * 86400
    count = 0
    total = Decimal(0)
    distinct: set[str] = set()
    for part in parts:
        for ts, amount, value in part.entries:
            if lo < ts <= hi:
                count += 1
                if amount is not None:
                    total += Decimal(amount)
                if value is not None:
                    distinct.add(value)
    if c.aggregate == "count_distinct":
        return Decimal(len(distinct))
    if c.aggregate == "sum":
        return total
    return Decimal(count)


def buckets_needed(c: Criterion, at: datetime, tz: tzinfo) -> list[str]:
    """Bucket keys :func:`value_of` reads to evaluate ``c`` as of ``at`` (newest first for rolling)."""
    w = c.window
    if c.aggregate == "streak" or isinstance(w, LifetimeWindow):
        return [LIFETIME]
    if isinstance(w, CalendarWindow):
        return [period_key(w.unit, at, tz)]
    if isinstance(w, RollingWindow):
        return list(_rolling_day_keys(w.days, at, tz))
    if isinstance(w, FixedWindow):
        return [FIXED]
    raise TypeError(f"unsupported window {w!r}")


def buckets_after(c: Criterion, at: datetime, tz: tzinfo, until: datetime) -> list[str]:
    """Later buckets an award decision at ``at`` reads (see :func:`decisive`): for a rolling window, the days after
    ``at``'s up to ``at`` + N days and no later than ``until`` (the latest instant an event can carry), whose
    events' windows hold ``at``. Empty for every other window, and for an event that is not late."""
    w = c.window
    if c.aggregate == "streak" or not isinstance(w, RollingWindow):
        return []
    first = local_date(at, tz).toordinal() + 1
    last = local_date(min(at + timedelta(days=w.days), until), tz).toordinal()
    return [ordinal_key("day", d) for d in range(first, last + 1)]


def _rolling_decision(
    c: Criterion, parts: Iterable[CounterState], at: datetime, skip: Callable[[datetime], bool] | None = None
) -> tuple[Decimal, datetime]:
    """Among the rolling windows that hold ``at`` — the one ending at ``at`` and those ending at each later event
    less than N days after it — the first that meets the threshold, else the best. The first, not the best: in
    time order the award would have come at that window's end, so a repeatable badge keys its award there;
    ``skip`` passes over window ends already rewarded (their day's award is held). One pass over the events in
    time order (two pointers): a late event of a busy member costs its week once."""
    assert isinstance(c.window, RollingWindow)
    span = c.window.days * 86400
    start = at.timestamp()
    target = threshold_decimal(c)
    events = sorted((e for part in parts for e in part.entries if start - span < e[0] < start + span),
                    key=lambda e: e[0])
    ends = [start, *dict.fromkeys(e[0] for e in events if e[0] > start)]
    count, total, seen = 0, Decimal(0), Counter[str]()
    left = right = 0
    best: tuple[Decimal, float] | None = None
    for end in ends:
        while right < len(events) and events[right][0] <= end:
            _ts, amount, value = events[right]
            count += 1
            total += Decimal(amount) if amount is not None else 0
            if value is not None:
                seen[value] += 1
            right += 1
        while left < right and events[left][0] <= end - span:
            _ts, amount, value = events[left]
            count -= 1
            total -= Decimal(amount) if amount is not None else 0
            if value is not None:
                seen[value] -= 1
                if not seen[value]:
                    del seen[value]
            left += 1
        measure = (Decimal(len(seen)) if c.aggregate == "count_distinct"
                   else total if c.aggregate == "sum" else Decimal(count))
        if skip is not None and measure >= target and skip(_instant(end, at, start)):
            continue
        if best is None or measure > best[0]:
            best = (measure, end)
        if measure >= target:
            break
    if best is None:  # every window that holds `at` is met and already rewarded
        return Decimal(0), at
    return best[0], _instant(best[1], at, start)


def _instant(end: float, at: datetime, start: float) -> datetime:
    return at if end == start else datetime.fromtimestamp(end, UTC)


def decisive(
    c: Criterion, states: Mapping[str, CounterState], at: datetime, tz: tzinfo, later: bool = True,
    skip: Callable[[datetime], bool] | None = None,
) -> tuple[Decimal, datetime]:
    """What an award decision on an event at ``at`` compares with the threshold, and the instant it is measured at.

    A late event counts where it belongs: a streak takes the run holding ``at``'s period, even one that is no
    longer current; with ``later``, a rolling window takes the first window holding ``at`` that meets the
    threshold (else the best) among the one ending at ``at`` and those ending at later events (``states`` must
    then hold the :func:`buckets_after` too). Anything else is its value as of ``at``. An award's evidence records
    this value, so it never contradicts the decision. The caller passes ``later=False`` for a badge of several
    criteria (no later windows: see the README's Known limits), and ``skip`` to pass over met windows whose
    award is already held (a repeatable badge's day)."""
    if c.aggregate == "streak":
        state = states.get(LIFETIME, EMPTY)
        return Decimal(streak_through(c, state, period_ordinal(_streak_unit(c), at, tz))), at
    if later and isinstance(c.window, RollingWindow):
        return _rolling_decision(c, states.values(), at, skip)
    return value_of(c, states, at, tz), at


def value_of(c: Criterion, states: Mapping[str, CounterState], at: datetime, tz: tzinfo) -> Decimal:
    """The criterion's current measure as of instant ``at``; absent buckets count as empty.

    For streaks this is the *current* streak (see :func:`current_streak`); use
    :func:`is_met_at` to decide awards, which also credits late events that complete a run.
    """
    keys = buckets_needed(c, at, tz)
    if c.aggregate == "streak":
        state = states.get(LIFETIME, EMPTY)
        return Decimal(current_streak(c, state, period_ordinal(_streak_unit(c), at, tz)))
    if isinstance(c.window, RollingWindow):
        return _rolling_value(c, [states.get(k, EMPTY) for k in keys], at)
    return _metric(c, states.get(keys[0], EMPTY))


def is_met(c: Criterion, value: Decimal) -> bool:
    """Whether a measured value reaches the threshold."""
    return value >= threshold_decimal(c)


def is_met_at(
    c: Criterion, states: Mapping[str, CounterState], at: datetime, tz: tzinfo, later: bool = True
) -> bool:
    """Award decision on ingesting an event at ``at`` (after its state was applied): see :func:`decisive`."""
    return is_met(c, decisive(c, states, at, tz, later)[0])


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Progress:
    """Live progress of a user toward a criterion, for display."""

    current: Decimal
    target: Decimal
    met: bool
    window_start: datetime | None
    window_end: datetime | None


def window_bounds(c: Criterion, at: datetime, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """The [start, end) window that ``value_of(c, ..., at)`` measures; (None, None) for lifetime.

    Rolling windows are the N days up to ``at`` (exact: (at - N days, at]). Streaks report the
    current period.
    """
    w = c.window
    if isinstance(w, LifetimeWindow):
        return None, None
    if isinstance(w, CalendarWindow):
        return period_bounds(w.unit, period_key(w.unit, at, tz), tz)
    if isinstance(w, RollingWindow):
        return at - timedelta(days=w.days), at
    if isinstance(w, FixedWindow):
        return w.start, w.end
    raise TypeError(f"unsupported window {w!r}")


def progress(c: Criterion, states: Mapping[str, CounterState], now: datetime, tz: tzinfo) -> Progress:
    """Progress toward ``c`` as of ``now`` (raw current value, not capped at the target)."""
    current = value_of(c, states, now, tz)
    target = threshold_decimal(c)
    start, end = window_bounds(c, now, tz)
    return Progress(current=current, target=target, met=current >= target, window_start=start, window_end=end)


__all__ = [
    "EMPTY",
    "FIXED",
    "LIFETIME",
    "MISSING",
    "Contribution",
    "CounterState",
    "Progress",
    "apply",
    "best_streak",
    "bucket_for",
    "buckets_after",
    "buckets_needed",
    "canonical_value",
    "condition_holds",
    "current_streak",
    "decisive",
    "is_met",
    "is_met_at",
    "lookup",
    "matches",
    "measure",
    "progress",
    "retract",
    "streak_run",
    "streak_through",
    "to_decimal",
    "value_of",
    "window_bounds",
]
