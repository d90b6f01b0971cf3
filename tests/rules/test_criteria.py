"""The criterion JSON contract and its validation messages (with precise error locations)."""

from typing import Any

import pytest
from pydantic import ValidationError

from app.rules.criteria import (
    CalendarWindow,
    Condition,
    Criterion,
    FixedWindow,
    LifetimeWindow,
    Op,
    PostedCriterion,
    RollingWindow,
    criterion_errors,
    criterion_key,
    threshold_decimal,
)

STORE_EXPLORER: dict[str, Any] = {
    "event": "visit",
    "where": [{"field": "store_id", "op": "exists"}],
    "aggregate": "count_distinct",
    "field": "store_id",
    "threshold": 3,
    "window": {"type": "calendar", "unit": "month"},
}


def test_contract_example_parses_and_round_trips() -> None:
    c = Criterion.model_validate(STORE_EXPLORER)
    assert c.where == [Condition(field="store_id", op=Op.exists)]
    assert isinstance(c.window, CalendarWindow) and c.window.unit == "month"
    assert Criterion.model_validate(c.model_dump(mode="json")) == c
    assert c.model_dump(mode="json")["where"][0]["op"] == "exists"


def test_defaults() -> None:
    c = Criterion.model_validate({"event": "purchase", "threshold": 1})
    assert c.aggregate == "count" and c.where == [] and c.grace == 0
    assert isinstance(c.window, LifetimeWindow)


@pytest.mark.parametrize(
    "window",
    [
        {"type": "lifetime"},
        {"type": "calendar", "unit": "week"},
        {"type": "rolling", "days": 7},
        {"type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-20T00:00:00+08:00"},
    ],
    ids=["lifetime", "calendar", "rolling", "fixed"],
)
def test_window_union(window: dict[str, Any]) -> None:
    c = Criterion.model_validate({"event": "purchase", "threshold": 1, "window": window})
    expected = {
        "lifetime": LifetimeWindow,
        "calendar": CalendarWindow,
        "rolling": RollingWindow,
        "fixed": FixedWindow,
    }[window["type"]]
    assert isinstance(c.window, expected)


def test_in_op_uses_json_name() -> None:
    cond = Condition.model_validate({"field": "tier", "op": "in", "value": ["gold", "silver"]})
    assert cond.op is Op.in_
    assert cond.model_dump(mode="json")["op"] == "in"


def test_criterion_key_is_stable_and_shared() -> None:
    a = Criterion.model_validate(STORE_EXPLORER)
    b = Criterion.model_validate({**STORE_EXPLORER, "threshold": 3.0})
    assert criterion_key(a) == criterion_key(b)
    assert len(criterion_key(a)) == 32
    # The threshold is what the state is compared with, not part of it: raising it keeps the progress.
    assert criterion_key(a) == criterion_key(Criterion.model_validate({**STORE_EXPLORER, "threshold": 4}))
    assert criterion_key(a) != criterion_key(Criterion.model_validate({**STORE_EXPLORER, "field": "city"}))
    # A fixed window is the same window whatever offset its instants are written in.
    festival = {"event": "purchase", "threshold": 1, "window": {
        "type": "fixed", "start": "2027-02-06T00:00:00+08:00", "end": "2027-02-21T00:00:00+08:00"}}
    in_utc = {**festival, "window": {"type": "fixed", "start": "2027-02-05T16:00:00Z", "end": "2027-02-20T16:00:00Z"}}
    assert criterion_key(Criterion.model_validate(festival)) == criterion_key(Criterion.model_validate(in_utc))
    assert criterion_key(Criterion.model_validate({"event": "x", "threshold": 1})) == criterion_key(
        Criterion.model_validate({"event": "x", "threshold": 1, "where": [], "window": {"type": "lifetime"}})
    )


def test_threshold_decimal() -> None:
    assert str(threshold_decimal(Criterion.model_validate({"event": "x", "threshold": 3}))) == "3"
    c = Criterion.model_validate({"event": "x", "aggregate": "sum", "field": "amount", "threshold": 99.9})
    assert str(threshold_decimal(c)) == "99.9"


@pytest.mark.parametrize(
    ("cond", "ok"),
    [
        ({"field": "store_id", "op": "exists"}, True),
        ({"field": "store_id", "op": "exists", "value": False}, True),
        ({"field": "store_id", "op": "exists", "value": "yes"}, False),
        ({"field": "tier", "op": "in", "value": ["gold"]}, True),
        ({"field": "tier", "op": "in", "value": "gold"}, False),
        ({"field": "tier", "op": "in", "value": []}, False),
        ({"field": "tier", "op": "not_in", "value": list(range(101))}, False),
        ({"field": "tier", "op": "in", "value": [{"a": 1}]}, False),
        ({"field": "amount", "op": "gte", "value": 10}, True),
        ({"field": "amount", "op": "gt", "value": "10"}, False),
        ({"field": "amount", "op": "lt", "value": True}, False),
        ({"field": "tier", "op": "eq", "value": "gold"}, True),
        ({"field": "tier", "op": "eq"}, False),
        ({"field": "tier", "op": "ne", "value": [1]}, False),
        ({"field": "tags", "op": "contains", "value": "vip"}, True),
        ({"field": "tags", "op": "contains", "value": None}, False),
        ({"field": "items.sku", "op": "eq", "value": "A1"}, True),
        ({"field": "Store", "op": "exists"}, False),
        ({"field": "a..b", "op": "exists"}, False),
        ({"field": "x" * 65, "op": "exists"}, False),
        ({"field": "tier", "op": "like", "value": "g%"}, False),
    ],
    ids=[
        "exists",
        "exists-false",
        "exists-bad-value",
        "in-list",
        "in-scalar",
        "in-empty",
        "in-too-many",
        "in-nonscalar",
        "gte-number",
        "gt-string",
        "lt-bool",
        "eq-string",
        "eq-missing-value",
        "ne-list",
        "contains",
        "contains-null",
        "dotted-field",
        "uppercase-field",
        "empty-segment",
        "field-too-long",
        "unknown-op",
    ],
)
def test_condition_validation(cond: dict[str, Any], ok: bool) -> None:
    if ok:
        Condition.model_validate(cond)
    else:
        with pytest.raises(ValidationError):
            Condition.model_validate(cond)


BASE: dict[str, Any] = {"event": "purchase", "threshold": 1}


@pytest.mark.parametrize(
    ("patch", "loc", "msg"),
    [
        ({"aggregate": "sum"}, ("field",), "requires 'field'"),
        ({"aggregate": "count_distinct"}, ("field",), "requires 'field'"),
        ({"field": "amount"}, ("field",), "does not take a 'field'"),
        ({"aggregate": "streak"}, ("window",), "calendar window"),
        (
            {"aggregate": "streak", "window": {"type": "calendar", "unit": "month"}},
            ("window",),
            "'day' or 'week'",
        ),
        ({"aggregate": "streak", "window": {"type": "rolling", "days": 7}}, ("window",), "calendar window"),
        ({"grace": 1}, ("grace",), "only allowed with aggregate 'streak'"),
        ({"event": "Bad Event"}, ("event",), "pattern"),
        ({"event": "badge..awarded"}, ("event",), "pattern"),
        ({"event": "e" * 65}, ("event",), "at most 64"),
        (
            {"where": [{"field": "tier", "op": "in", "value": "gold"}]},
            ("where", 0, "value"),
            "non-empty list",
        ),
        ({"where": [{"field": "a", "op": "exists"}] * 21}, ("where",), "at most 20"),
        (
            {
                "window": {
                    "type": "fixed",
                    "start": "2027-02-20T00:00:00+08:00",
                    "end": "2027-02-06T00:00:00+08:00",
                }
            },
            ("window", "fixed"),
            "start must be before end",
        ),
        (
            {"window": {"type": "fixed", "start": "2027-02-06T00:00:00", "end": "2027-02-20T00:00:00+08:00"}},
            ("window", "fixed", "start"),
            "timezone",
        ),
        ({"window": {"type": "rolling", "days": 0}}, ("window", "rolling", "days"), "greater than or equal"),
        ({"window": {"type": "hourly"}}, ("window",), "tag"),
        ({"bogus": 1}, ("bogus",), "Extra inputs"),
        ({"where": [{"field": "a", "op": "exists", "extra": 1}]}, ("where", 0, "extra"), "Extra inputs"),
        ({"window": {"type": "lifetime", "unit": "day"}}, ("window", "lifetime", "unit"), "Extra inputs"),
        ({"threshold": 0}, ("threshold",), "greater than 0"),
        ({"threshold": 2.5}, ("threshold",), "whole number"),
        ({"threshold": "3"}, ("threshold",), "valid number"),  # a string is not quietly read as a number
        ({"threshold": True}, ("threshold",), "valid number"),
        (
            {"aggregate": "streak", "window": {"type": "calendar", "unit": "day"}, "grace": 31},
            ("grace",),
            "less than or equal",
        ),
        ({"aggregate": "median"}, ("aggregate",), "Input should be"),
        (
            {"aggregate": "streak", "window": {"type": "calendar", "unit": "day"}, "grace": True},
            ("grace",),
            "valid integer",
        ),
        ({"window": {"type": "rolling", "days": True}}, ("window", "rolling", "days"), "valid integer"),
    ],
    ids=[
        "sum-without-field",
        "distinct-without-field",
        "count-with-field",
        "streak-lifetime",
        "streak-month",
        "streak-rolling",
        "grace-without-streak",
        "bad-event-name",
        "empty-event-segment",
        "event-too-long",
        "in-without-list",
        "too-many-conditions",
        "fixed-start-after-end",
        "fixed-naive",
        "rolling-zero-days",
        "unknown-window-type",
        "unknown-field",
        "unknown-condition-field",
        "unknown-window-field",
        "zero-threshold",
        "fractional-count-threshold",
        "string-threshold",
        "boolean-threshold",
        "grace-too-big",
        "unknown-aggregate",
        "boolean-grace",
        "boolean-days",
    ],
)
def test_criterion_validation_errors(patch: dict[str, Any], loc: tuple[Any, ...], msg: str) -> None:
    with pytest.raises(ValidationError) as info:
        Criterion.model_validate({**BASE, **patch})
    errors = info.value.errors()
    assert any(e["loc"] == loc and msg in e["msg"] for e in errors), errors


def test_a_saved_threshold_is_reachable_but_a_stored_one_still_loads() -> None:
    """1e300 can never be reached (events hold at most 1e15): refused on save; a rule stored before the bound
    still loads, or one old rule would stop all ingestion."""
    with pytest.raises(ValidationError) as info:
        PostedCriterion.model_validate({**BASE, "threshold": 1e300})
    assert [(e["loc"], "at most 1e15" in e["msg"]) for e in info.value.errors()] == [(("threshold",), True)]
    assert PostedCriterion.model_validate({**BASE, "threshold": 1e15}).threshold == 1e15
    assert Criterion.model_validate({**BASE, "threshold": 1e300}).threshold == 1e300


def test_valid_streak_and_sum() -> None:
    Criterion.model_validate(
        {
            "event": "checkin",
            "aggregate": "streak",
            "threshold": 7,
            "grace": 1,
            "window": {"type": "calendar", "unit": "day"},
        }
    )
    c = Criterion.model_validate(
        {
            "event": "purchase",
            "aggregate": "sum",
            "field": "amount",
            "threshold": 999.5,
            "window": {"type": "rolling", "days": 7},
        }
    )
    assert c.threshold == 999.5


def test_criterion_errors_are_json_safe() -> None:
    with pytest.raises(ValidationError) as info:
        Criterion.model_validate({**BASE, "aggregate": "sum"})
    assert criterion_errors(info.value) == [
        {"loc": ["field"], "msg": "Value error, aggregate 'sum' requires 'field'", "type": "value_error"}
    ]


def test_streak_grace_may_sit_inside_the_calendar_window() -> None:
    c = Criterion.model_validate({"event": "check_in", "aggregate": "streak", "threshold": 7,
                                  "window": {"type": "calendar", "unit": "day", "grace": 1}})
    assert c.grace == 1 and c.window.model_dump() == {"type": "calendar", "unit": "day"}


def test_fixed_window_accepts_program_dates_with_an_inclusive_end() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    c = Criterion.model_validate({"event": "purchase", "threshold": 1,
                                  "window": {"type": "fixed", "start": "2027-02-06", "end": "2027-02-20"}})
    cn = ZoneInfo("Asia/Shanghai")
    assert c.window.start == datetime(2027, 2, 6, tzinfo=cn)  # type: ignore[union-attr]
    assert c.window.end == datetime(2027, 2, 21, tzinfo=cn)  # type: ignore[union-attr]


def test_a_last_date_end_is_refused_naming_the_end() -> None:
    """"9999-12-31" (a common "no end" placeholder) has no next midnight: the refusal names window.fixed.end and
    says why, as every other out-of-range date does, rather than escaping validation as an unnamed OverflowError."""
    with pytest.raises(ValidationError) as info:
        Criterion.model_validate({"event": "purchase", "threshold": 1,
                                  "window": {"type": "fixed", "start": "2027-02-06", "end": "9999-12-31"}})
    (error,) = criterion_errors(info.value)
    assert error["loc"] == ["window", "fixed", "end"] and "out of range" in error["msg"]
