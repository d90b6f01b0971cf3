"""The pure evaluator: matching, bucketing, incremental state, and the badge scenarios."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.rules.criteria import Condition, Criterion
from app.rules.evaluator import (
    EMPTY,
    Contribution,
    CounterState,
    apply,
    best_streak,
    bucket_for,
    buckets_after,
    buckets_needed,
    canonical_value,
    condition_holds,
    decisive,
    is_met,
    is_met_at,
    matches,
    measure,
    moved,
    progress,
    retract,
    streak_through,
    value_of,
    window_bounds,
)

SH = ZoneInfo("Asia/Shanghai")


def crit(**kw: Any) -> Criterion:
    return Criterion.model_validate({"threshold": 1, **kw})


def day(d: int, hour: int = 12, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, d, hour, tzinfo=SH)


@dataclass
class Engine:
    """The caller's loop, in memory: what the database layer will do with these functions."""

    c: Criterion
    states: dict[str, CounterState] = field(default_factory=dict)
    now: datetime = datetime(2027, 1, 1, tzinfo=UTC)  # the latest instant an event can carry

    def ingest(self, at: datetime, attrs: dict[str, Any] | None = None, event: str | None = None) -> bool:
        attrs = attrs or {}
        if not matches(self.c, event or self.c.event, attrs):
            return False
        bucket = bucket_for(self.c, at, SH)
        if bucket is None:
            return False
        self.states[bucket] = apply(self.c, self.states.get(bucket, EMPTY), at, attrs, SH)
        reads = [*buckets_needed(self.c, at, SH), *buckets_after(self.c, at, SH, self.now)]
        needed = {k: self.states[k] for k in reads if k in self.states}
        return is_met_at(self.c, needed, at, SH)

    def value(self, at: datetime) -> Decimal:
        return value_of(self.c, self.states, at, SH)


# --------------------------------------------------------------------------- where ops

ATTRS: dict[str, Any] = {
    "tier": "gold",
    "amount": 120,
    "price": 9.5,
    "flag": True,
    "nothing": None,
    "tags": ["vip", "new", 3],
    "note": "hello world",
    "items": {"sku": "A1", "qty": 2},
}


@pytest.mark.parametrize(
    ("field_", "op", "value", "expected"),
    [
        ("tier", "eq", "gold", True),
        ("tier", "eq", "silver", False),
        ("amount", "eq", 120.0, True),
        ("amount", "eq", "120", False),
        ("flag", "eq", 1, False),
        ("flag", "eq", True, True),
        ("missing", "eq", "x", False),
        ("tier", "ne", "silver", True),
        ("tier", "ne", "gold", False),
        ("missing", "ne", "gold", True),
        ("amount", "gt", 100, True),
        ("amount", "gt", 120, False),
        ("amount", "gte", 120, True),
        ("price", "lt", 10, True),
        ("price", "lte", 9, False),
        ("tier", "gt", 1, False),
        ("flag", "gte", 0, False),
        ("missing", "lt", 5, False),
        ("nothing", "lt", 5, False),
        ("tier", "in", ["gold", "silver"], True),
        ("tier", "in", ["silver"], False),
        ("amount", "in", ["120"], False),
        ("missing", "in", ["gold"], False),
        ("tier", "not_in", ["silver"], True),
        ("tier", "not_in", ["gold"], False),
        ("missing", "not_in", ["gold"], True),
        ("tier", "exists", None, True),
        ("tier", "exists", True, True),
        ("tier", "exists", False, False),
        ("missing", "exists", None, False),
        ("missing", "exists", False, True),
        ("nothing", "exists", None, False),
        ("note", "contains", "world", True),
        ("note", "contains", "moon", False),
        ("tags", "contains", "vip", True),
        ("tags", "contains", 3, True),
        ("tags", "contains", "3", False),
        ("amount", "contains", 1, False),
        ("missing", "contains", "x", False),
        ("items.sku", "eq", "A1", True),
        ("items.qty", "gte", 2, True),
        ("items.missing", "exists", None, False),
        ("tier.sub", "eq", "x", False),
    ],
    ids=lambda v: str(v),
)
def test_condition_ops(field_: str, op: str, value: Any, expected: bool) -> None:
    cond = Condition.model_validate({"field": field_, "op": op, "value": value})
    assert condition_holds(cond, ATTRS) is expected


def test_matches_needs_type_and_all_conditions() -> None:
    c = crit(
        event="purchase",
        where=[
            {"field": "amount", "op": "gte", "value": 100},
            {"field": "tier", "op": "eq", "value": "gold"},
        ],
    )
    assert matches(c, "purchase", ATTRS)
    assert not matches(c, "visit", ATTRS)
    assert not matches(c, "purchase", {**ATTRS, "tier": "silver"})
    assert not matches(c, "purchase", {"amount": "lots", "tier": "gold"})


# --------------------------------------------------------------------------- measure & state


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"amount": 100}, Contribution(amount=Decimal(100))),
        ({"amount": 0.1}, Contribution(amount=Decimal("0.1"))),
        ({"amount": "12.50"}, Contribution(amount=Decimal("12.50"))),
        ({"amount": -30}, Contribution(amount=Decimal(-30))),
        ({"amount": "abc"}, None),
        ({"amount": True}, None),
        ({"amount": float("nan")}, None),
        ({"amount": "Infinity"}, None),
        ({}, None),
    ],
    ids=["int", "float-exact", "numeric-string", "negative", "junk", "bool", "nan", "inf", "missing"],
)
def test_measure_sum(attrs: dict[str, Any], expected: Contribution | None) -> None:
    assert measure(crit(event="purchase", aggregate="sum", field="amount"), attrs) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("s1", "s1"), (7, "7"), ({"b": 1, "a": 2}, '{"a":2,"b":1}'), (None, None)],
    ids=["string", "int", "dict-sorted", "null"],
)
def test_measure_count_distinct(value: Any, expected: str | None) -> None:
    got = measure(crit(event="visit", aggregate="count_distinct", field="store_id"), {"store_id": value})
    assert (got.distinct if got else None) == expected


def test_state_json_round_trip_and_purity() -> None:
    c = crit(event="visit", aggregate="count_distinct", field="store_id")
    s1 = apply(c, EMPTY, day(1), {"store_id": "b"}, SH)
    s2 = apply(c, s1, day(2), {"store_id": "a"}, SH)
    assert s1 == CounterState(count=1, distinct=frozenset({"b"}))  # s1 not mutated by the second apply
    assert s2.to_json() == {"count": 2, "total": "0", "distinct": ["a", "b"], "periods": []}
    assert CounterState.from_json(s2.to_json()) == s2
    assert CounterState.from_json(None) == EMPTY
    assert CounterState.from_json({"total": "1.10", "periods": [3, 1, 3]}) == CounterState(
        total=Decimal("1.10"), periods=(1, 3)
    )


def test_sum_skips_non_numeric_event() -> None:
    c = crit(event="purchase", aggregate="sum", field="amount")
    assert apply(c, EMPTY, day(1), {"amount": "n/a"}, SH) is EMPTY


# --------------------------------------------------------------------------- bucketing


@pytest.mark.parametrize(
    ("window", "aggregate", "at", "bucket"),
    [
        ({"type": "lifetime"}, "count", day(1), "lifetime"),
        (
            {"type": "calendar", "unit": "month"},
            "count",
            datetime(2026, 11, 30, 16, 30, tzinfo=UTC),
            "2026-12",
        ),
        (
            {"type": "calendar", "unit": "week"},
            "count",
            datetime(2026, 11, 29, 16, 30, tzinfo=UTC),
            "2026-W49",
        ),
        (
            {"type": "calendar", "unit": "day"},
            "count",
            datetime(2026, 11, 29, 15, 59, tzinfo=UTC),
            "2026-11-29",
        ),
        ({"type": "calendar", "unit": "day"}, "streak", day(3), "lifetime"),
        ({"type": "rolling", "days": 7}, "count", datetime(2026, 11, 29, 16, 30, tzinfo=UTC), "2026-11-30"),
        (
            {"type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-20T00:00:00+08:00"},
            "count",
            datetime(2027, 2, 5, 16, 0, tzinfo=UTC),
            "fixed",
        ),
        (
            {"type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-20T00:00:00+08:00"},
            "count",
            datetime(2027, 2, 5, 15, 59, tzinfo=UTC),
            None,
        ),
        (
            {"type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-20T00:00:00+08:00"},
            "count",
            datetime(2027, 2, 20, 0, 0, tzinfo=SH),
            None,
        ),
    ],
    ids=[
        "lifetime",
        "month-shanghai",
        "week-shanghai",
        "day-before-midnight",
        "streak-lifetime",
        "rolling-day",
        "fixed-start-inclusive",
        "fixed-before",
        "fixed-end-exclusive",
    ],
)
def test_bucket_for(window: dict[str, Any], aggregate: str, at: datetime, bucket: str | None) -> None:
    c = crit(event="e", aggregate=aggregate, window=window)
    assert bucket_for(c, at, SH) == bucket


def test_buckets_needed_rolling_covers_the_days_of_the_exact_window() -> None:
    c = crit(event="e", window={"type": "rolling", "days": 3})
    # (Oct 30 12:00, Nov 2 12:00] touches four calendar days
    assert buckets_needed(c, day(2), SH) == ["2026-11-02", "2026-11-01", "2026-10-31", "2026-10-30"]
    midnight = datetime(2026, 11, 2, tzinfo=SH)
    assert buckets_needed(c, midnight, SH) == ["2026-11-02", "2026-11-01", "2026-10-31", "2026-10-30"]


def test_rolling_window_is_exact_to_the_second() -> None:
    e = Engine(Criterion.model_validate(BIG_SPENDER))
    start = datetime(2026, 11, 18, 5, 58, tzinfo=SH)
    e.ingest(start, {"amount": 600})
    # 6 days 23 hours later: still inside "the 7 days up to" the event (8 calendar days apart)
    assert e.ingest(start + timedelta(days=6, hours=23), {"amount": 500})
    f = Engine(Criterion.model_validate(BIG_SPENDER))
    f.ingest(start, {"amount": 600})
    assert not f.ingest(start + timedelta(days=7), {"amount": 500})  # exactly 7 days: the first one left


# --------------------------------------------------------------------------- scenarios


def test_first_purchase() -> None:
    e = Engine(crit(event="purchase"))
    assert e.value(day(1)) == 0
    assert not e.ingest(day(1), event="visit")
    assert e.ingest(day(1))


def test_tenth_order() -> None:
    e = Engine(crit(event="order.placed", threshold=10))
    results = [e.ingest(day(i)) for i in range(1, 11)]
    assert results == [False] * 9 + [True]
    assert e.value(day(20)) == 10


def test_festival_shopper_fixed_window() -> None:
    c = crit(
        event="purchase",
        threshold=2,
        window={"type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-20T00:00:00+08:00"},
    )
    e = Engine(c)
    assert not e.ingest(datetime(2027, 2, 5, 23, 59, tzinfo=SH))  # the eve: outside
    assert not e.ingest(datetime(2027, 2, 20, 0, 0, tzinfo=SH))  # end is exclusive
    assert not e.ingest(datetime(2027, 2, 6, 0, 0, tzinfo=SH))
    assert e.value(datetime(2027, 2, 10, tzinfo=SH)) == 1
    assert e.ingest(datetime(2027, 2, 19, 23, 0, tzinfo=SH))
    assert window_bounds(c, datetime(2027, 3, 1, tzinfo=SH), SH) == (
        datetime(2027, 2, 6, tzinfo=SH),
        datetime(2027, 2, 20, tzinfo=SH),
    )


STORE_EXPLORER = {
    "event": "visit",
    "where": [{"field": "store_id", "op": "exists"}],
    "aggregate": "count_distinct",
    "field": "store_id",
    "threshold": 3,
    "window": {"type": "calendar", "unit": "month"},
}


def test_store_explorer_three_stores_in_one_month() -> None:
    e = Engine(Criterion.model_validate(STORE_EXPLORER))
    assert not e.ingest(day(3), {"store_id": "s1"})
    assert not e.ingest(day(4), {"store_id": "s2"})
    assert not e.ingest(day(5), {"store_id": "s2"})  # a repeat does not add
    assert not e.ingest(day(6), {})  # no store: filtered out
    assert e.value(day(6)) == 2
    assert e.ingest(day(20), {"store_id": "s3"})


def test_store_explorer_spread_over_two_months_does_not_meet() -> None:
    e = Engine(Criterion.model_validate(STORE_EXPLORER))
    assert not e.ingest(day(28), {"store_id": "s1"})
    assert not e.ingest(day(29), {"store_id": "s2"})
    # 2026-11-30 16:30 UTC is already December in Shanghai: a new month, a new count.
    assert not e.ingest(datetime(2026, 11, 30, 16, 30, tzinfo=UTC), {"store_id": "s3"})
    assert e.value(day(1, month=12)) == 1
    assert e.value(day(30)) == 2


BIG_SPENDER = {
    "event": "purchase",
    "aggregate": "sum",
    "field": "amount",
    "threshold": 1000,
    "window": {"type": "rolling", "days": 7},
}


@pytest.mark.parametrize(("gap_days", "met"), [(0, True), (6, True), (7, False), (8, False)], ids=lambda v: str(v))
def test_big_spender_rolling_sum(gap_days: int, met: bool) -> None:
    e = Engine(Criterion.model_validate(BIG_SPENDER))
    assert not e.ingest(day(1, hour=9), {"amount": 600})
    assert e.ingest(day(1, hour=9) + timedelta(days=gap_days), {"amount": "500"}) is met


def test_big_spender_negative_amounts_reduce() -> None:
    e = Engine(Criterion.model_validate(BIG_SPENDER))
    e.ingest(day(1), {"amount": 600})
    e.ingest(day(2), {"amount": -200})  # a refund
    assert not e.ingest(day(3), {"amount": 500})
    assert e.value(day(3)) == Decimal(900)
    assert e.ingest(day(4), {"amount": 100.5})
    assert e.value(day(4)) == Decimal("1000.5")


@pytest.mark.parametrize(
    ("first", "late", "met"),
    [
        (day(10, hour=10), day(5, hour=10), True),  # the window ending at day 10's purchase holds both
        (day(10, hour=10), day(3, hour=11), True),  # 6 days 23 hours before it
        (day(10, hour=10), day(3, hour=10), False),  # exactly 7 days before: (end - 7 days, end] leaves it out
        (day(10, hour=10), day(1, hour=10), False),
    ],
    ids=["5-days-apart", "just-inside", "exactly-7-days", "9-days-apart"],
)
def test_a_late_purchase_completes_the_rolling_windows_of_later_purchases(
    first: datetime, late: datetime, met: bool
) -> None:
    e = Engine(Criterion.model_validate(BIG_SPENDER))
    assert not e.ingest(first, {"amount": 600})
    assert e.ingest(late, {"amount": 500}) is met


def test_the_decisive_rolling_window_is_the_first_holding_the_late_event_that_meets_the_threshold() -> None:
    c = Criterion.model_validate(BIG_SPENDER)
    e = Engine(c)
    for at, amount in ((day(8), 300), (day(10), 600), (day(13), 900)):
        e.ingest(at, {"amount": amount})
    e.ingest(day(7), {"amount": 200})  # late: windows ending at day 7, 8, 10 and 13 hold it
    # (day 3, day 10] holds 200 + 300 + 600 = 1,100: met there first, where the award would have come in time order.
    assert decisive(c, e.states, day(7), SH) == (Decimal(1100), day(10))
    assert value_of(c, e.states, day(7), SH) == Decimal(200)  # as of its own instant, only itself
    assert decisive(c, e.states, day(7), SH, later=False) == (Decimal(200), day(7))


def test_an_unmet_decisive_rolling_window_reports_the_best_one() -> None:
    c = Criterion.model_validate(BIG_SPENDER)
    e = Engine(c)
    for at, amount in ((day(8), 300), (day(12), 400)):
        e.ingest(at, {"amount": amount})
    assert not e.ingest(day(7), {"amount": 200})
    assert decisive(c, e.states, day(7), SH) == (Decimal(900), day(12))  # (day 5, day 12]: all three


def test_buckets_after_are_the_later_days_of_a_late_rolling_event_up_to_now() -> None:
    c = Criterion.model_validate(BIG_SPENDER)
    assert buckets_after(c, day(5), SH, day(25)) == [f"2026-11-{d:02d}" for d in range(6, 13)]
    assert buckets_after(c, day(5), SH, day(7, hour=1)) == ["2026-11-06", "2026-11-07"]
    assert buckets_after(c, day(5), SH, day(5, hour=13)) == []  # not late
    assert buckets_after(crit(event="visit"), day(5), SH, day(25)) == []  # lifetime: nothing later to read


def test_rolling_count_distinct_unions_days() -> None:
    c = crit(
        event="visit",
        aggregate="count_distinct",
        field="store_id",
        threshold=2,
        window={"type": "rolling", "days": 2},
    )
    e = Engine(c)
    e.ingest(day(1), {"store_id": "a"})
    e.ingest(day(2), {"store_id": "a"})
    assert e.value(day(2)) == 1
    assert e.ingest(day(2), {"store_id": "b"})
    assert e.value(day(3)) == 2  # day 1 dropped: {a, b} from day 2 only
    assert e.value(day(4)) == 0


CHECKIN = {
    "event": "checkin",
    "aggregate": "streak",
    "threshold": 7,
    "grace": 1,
    "window": {"type": "calendar", "unit": "day"},
}


def test_checkin_streak_with_grace_bridges_one_missed_day() -> None:
    e = Engine(Criterion.model_validate(CHECKIN))
    for d in [1, 2, 3, 5, 6, 7]:
        assert not e.ingest(day(d))
    assert e.ingest(day(8))  # 7 active days, the gap on day 4 is bridged
    assert e.value(day(8)) == 7
    assert e.value(day(9)) == 7  # still current the next day (and with grace, the day after)
    assert e.value(day(10)) == 7
    assert e.value(day(11)) == 0  # two missed days: broken


def test_checkin_streak_gap_of_two_breaks() -> None:
    e = Engine(Criterion.model_validate(CHECKIN))
    for d in [1, 2, 3, 6, 7, 8, 9]:
        assert not e.ingest(day(d))
    assert e.value(day(9)) == 4
    assert best_streak(e.c, e.states["lifetime"]) == 4


def test_checkin_streak_late_event_fills_hole() -> None:
    c = Criterion.model_validate({**CHECKIN, "threshold": 5, "grace": 0})
    e = Engine(c)
    for d in [1, 2, 4, 5]:
        assert not e.ingest(day(d))
    assert e.value(day(5)) == 2
    assert e.ingest(day(3))  # arrives late (occurred on day 3): joins both runs
    assert e.value(day(5)) == 5
    assert e.value(day(3)) == 3  # as of day 3, later days do not count yet
    state = e.states["lifetime"]
    assert streak_through(c, state, state.periods[0]) == 5
    assert best_streak(c, state) == 5


def test_duplicate_checkins_same_day_count_once() -> None:
    c = Criterion.model_validate({**CHECKIN, "threshold": 2, "grace": 0})
    e = Engine(c)
    assert not e.ingest(day(1, hour=8))
    assert not e.ingest(day(1, hour=20))
    assert e.ingest(day(2))


def test_weekly_streak_across_iso_year() -> None:
    c = crit(event="checkin", aggregate="streak", threshold=2, window={"type": "calendar", "unit": "week"})
    e = Engine(c)
    assert not e.ingest(datetime(2026, 12, 30, tzinfo=SH))  # 2026-W53
    assert e.ingest(datetime(2027, 1, 5, tzinfo=SH))  # 2027-W01


def test_collector_badge_awarded_count() -> None:
    e = Engine(crit(event="badge.awarded", threshold=5))
    results = [e.ingest(day(i), {"badge_id": f"b{i}"}) for i in range(1, 6)]
    assert results == [False, False, False, False, True]


# --------------------------------------------------------------------------- progress


def test_progress_calendar_month() -> None:
    c = Criterion.model_validate(STORE_EXPLORER)
    e = Engine(c)
    e.ingest(day(3), {"store_id": "s1"})
    p = progress(c, e.states, day(15), SH)
    assert (p.current, p.target, p.met) == (Decimal(1), Decimal(3), False)
    assert (p.window_start, p.window_end) == (
        datetime(2026, 11, 1, tzinfo=SH),
        datetime(2026, 12, 1, tzinfo=SH),
    )


def test_progress_lifetime_is_uncapped() -> None:
    c = crit(event="purchase", threshold=2)
    e = Engine(c)
    for i in range(1, 4):
        e.ingest(day(i))
    p = progress(c, e.states, day(10), SH)
    assert (p.current, p.met, p.window_start, p.window_end) == (Decimal(3), True, None, None)


def test_progress_rolling_window_is_the_days_up_to_now() -> None:
    c = Criterion.model_validate(BIG_SPENDER)
    p = progress(c, {}, datetime(2026, 11, 10, 15, 30, tzinfo=SH), SH)
    assert p.current == 0 and not p.met
    assert (p.window_start, p.window_end) == (
        datetime(2026, 11, 3, 15, 30, tzinfo=SH),
        datetime(2026, 11, 10, 15, 30, tzinfo=SH),
    )


def test_is_met_threshold() -> None:
    c = crit(event="purchase", aggregate="sum", field="amount", threshold=99.9)
    assert is_met(c, Decimal("99.9"))
    assert not is_met(c, Decimal("99.89"))


# --------------------------------------------------------------------------- retracting (a revoked award)


def _fold(c: Criterion, events: list[tuple[datetime, dict[str, Any]]]) -> CounterState:
    state = EMPTY
    for at, attrs in events:
        state = apply(c, state, at, attrs, SH)
    return state


@pytest.mark.parametrize(
    ("criterion", "events", "gone", "standing_value"),
    [
        # count: one fewer, whatever else stands
        (crit(event="badge.awarded"), [(day(1), {}), (day(2), {})], 0, Decimal(1)),
        # sum: the amount comes off the total
        (crit(event="p", aggregate="sum", field="amount"), [(day(1), {"amount": 5}), (day(2), {"amount": 7})],
         1, Decimal(5)),
        # count_distinct: a value another standing event supplies stays
        (crit(event="badge.awarded", aggregate="count_distinct", field="badge"),
         [(day(1), {"badge": "a"}), (day(2), {"badge": "a"}), (day(3), {"badge": "b"})], 0, Decimal(2)),
        # count_distinct: a value nothing else supplies goes
        (crit(event="badge.awarded", aggregate="count_distinct", field="badge"),
         [(day(1), {"badge": "a"}), (day(3), {"badge": "b"})], 1, Decimal(1)),
        # streak: a period another standing event keeps active stays (two awards on day 2)...
        (crit(event="e", aggregate="streak", window={"type": "calendar", "unit": "day"}),
         [(day(1), {}), (day(2, 9), {}), (day(2, 18), {}), (day(3), {})], 1, Decimal(3)),
        # ...and a period only the retracted event made active goes, breaking the streak
        (crit(event="e", aggregate="streak", window={"type": "calendar", "unit": "day"}),
         [(day(1), {}), (day(2), {}), (day(3), {})], 1, Decimal(1)),
        # rolling: exactly the retracted event's entry leaves the window
        (crit(event="p", aggregate="sum", field="amount", window={"type": "rolling", "days": 7}),
         [(day(3), {"amount": 5}), (day(3, 13), {"amount": 5})], 1, Decimal(5)),
    ],
    ids=["count", "sum", "distinct-kept", "distinct-gone", "streak-kept", "streak-broken", "rolling"],
)
def test_retract_takes_one_counted_event_back_out(
    criterion: Criterion, events: list[tuple[datetime, dict[str, Any]]], gone: int, standing_value: Decimal
) -> None:
    state = _fold(criterion, events)
    at, attrs = events[gone]
    standing = events[:gone] + events[gone + 1:]
    after = retract(criterion, state, at, attrs, SH, standing)
    bucket = bucket_for(criterion, at, SH)  # every event of a case lands in one bucket
    assert bucket is not None
    assert value_of(criterion, {bucket: after}, day(3, 20), SH) == standing_value
    assert after.count == state.count - 1
    # The same as never having counted it (rolling entries and distinct sets included).
    assert after == _fold(criterion, standing)


def test_retract_leaves_an_empty_state_and_an_event_that_could_not_contribute() -> None:
    c = crit(event="p", aggregate="sum", field="amount")
    assert retract(c, EMPTY, day(1), {"amount": 5}, SH) == EMPTY
    state = _fold(c, [(day(1), {"amount": 5})])
    assert retract(c, state, day(1), {"amount": "n/a"}, SH) == state


DISTINCT = crit(event="visit", aggregate="count_distinct", field="store_id", threshold=3)
SUM = crit(event="purchase", aggregate="sum", field="amount", threshold=100)
STREAK = crit(event="check_in", aggregate="streak", threshold=3, window={"type": "calendar", "unit": "day"})


@pytest.mark.parametrize(
    ("c", "first", "second", "moves"),
    [
        (DISTINCT, {"store_id": "S1"}, {"store_id": "S2"}, True),
        (DISTINCT, {"store_id": "S1"}, {"store_id": "S1"}, False),  # already counted
        (DISTINCT, {"store_id": "S1"}, {}, False),  # no store to count
        (SUM, {"amount": 5}, {"amount": 7}, True),
        (SUM, {"amount": 5}, {"amount": 0}, False),
        (crit(event="visit"), {}, {}, True),  # every matching event counts
    ],
)
def test_moved_says_whether_an_event_changed_what_the_criterion_measures(
    c: Criterion, first: dict[str, Any], second: dict[str, Any], moves: bool
) -> None:
    before = apply(c, EMPTY, day(2), first, SH)
    assert moved(c, before, apply(c, before, day(3), second, SH)) is moves


def test_a_second_check_in_of_a_streak_day_moves_nothing() -> None:
    one = apply(STREAK, EMPTY, day(2, 9), {}, SH)
    assert moved(STREAK, one, apply(STREAK, one, day(2, 18), {}, SH)) is False
    assert moved(STREAK, one, apply(STREAK, one, day(3, 9), {}, SH)) is True


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [(1, 1.0, True), (7, "7", True), (1.5, 1.5, True), (1, 2, False), ("S1", "s1", False), (True, "true", True)],
)
def test_a_distinct_value_is_one_value_however_a_number_is_spelt(a: object, b: object, same: bool) -> None:
    assert (canonical_value(a) == canonical_value(b)) is same
