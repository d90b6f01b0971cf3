"""Calendar periods are judged in the program zone, with ISO weeks."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.kit.periods import (
    key_ordinal,
    next_key,
    ordinal_bounds,
    ordinal_key,
    period_bounds,
    period_key,
    period_ordinal,
    previous_key,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
P8 = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("unit", "at", "key"),
    [
        ("day", datetime(2026, 11, 23, 12, tzinfo=SH), "2026-11-23"),
        ("week", datetime(2026, 11, 23, 12, tzinfo=SH), "2026-W48"),
        ("month", datetime(2026, 11, 23, 12, tzinfo=SH), "2026-11"),
        ("year", datetime(2026, 11, 23, 12, tzinfo=SH), "2026"),
        ("week", datetime(2026, 11, 29, 23, 59, tzinfo=P8), "2026-W48"),
        ("week", datetime(2026, 11, 30, 0, 0, tzinfo=P8), "2026-W49"),
        # Sunday 16:30 UTC is Monday 00:30 in Shanghai: already the new week there.
        ("week", datetime(2026, 11, 29, 16, 30, tzinfo=UTC), "2026-W49"),
        ("day", datetime(2026, 11, 29, 16, 30, tzinfo=UTC), "2026-11-30"),
        # ISO week-numbering year: 2027-01-01 (a Friday) still belongs to 2026's week 53.
        ("week", datetime(2027, 1, 1, 12, tzinfo=SH), "2026-W53"),
        ("year", datetime(2027, 1, 1, 12, tzinfo=SH), "2027"),
        ("month", datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "2027-01"),
    ],
    ids=[
        "day",
        "week",
        "month",
        "year",
        "sunday-late-w48",
        "monday-midnight-w49",
        "utc-sunday-is-shanghai-monday",
        "utc-day-rolls-over",
        "iso-year-boundary",
        "calendar-year-not-iso",
        "month-rolls-in-zone",
    ],
)
def test_period_key(unit: str, at: datetime, key: str) -> None:
    assert period_key(unit, at, SH) == key


def test_timezone_is_honoured_new_york() -> None:
    at = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Sunday 22:00 in New York, Monday in Shanghai
    assert period_key("day", at, NY) == "2026-11-29"
    assert period_key("week", at, NY) == "2026-W48"
    assert period_key("week", at, SH) == "2026-W49"


def test_new_york_dst_day_bounds() -> None:
    start, end = period_bounds("day", "2026-03-08", NY)  # spring forward: a 23-hour day
    assert start.isoformat() == "2026-03-08T00:00:00-05:00"
    assert end.isoformat() == "2026-03-09T00:00:00-04:00"
    assert end - start == timedelta(hours=24)  # wall-clock arithmetic in the same zone
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def test_naive_datetime_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        period_key("day", datetime(2026, 1, 1), SH)


def test_unknown_unit_rejected() -> None:
    with pytest.raises(ValueError, match="unknown period unit"):
        period_key("quarter", datetime(2026, 1, 1, tzinfo=SH), SH)


@pytest.mark.parametrize(
    ("unit", "key", "start", "end"),
    [
        ("day", "2026-11-23", datetime(2026, 11, 23, tzinfo=SH), datetime(2026, 11, 24, tzinfo=SH)),
        ("week", "2026-W48", datetime(2026, 11, 23, tzinfo=SH), datetime(2026, 11, 30, tzinfo=SH)),
        ("week", "2026-W53", datetime(2026, 12, 28, tzinfo=SH), datetime(2027, 1, 4, tzinfo=SH)),
        ("month", "2026-02", datetime(2026, 2, 1, tzinfo=SH), datetime(2026, 3, 1, tzinfo=SH)),
        ("month", "2026-12", datetime(2026, 12, 1, tzinfo=SH), datetime(2027, 1, 1, tzinfo=SH)),
        ("year", "2026", datetime(2026, 1, 1, tzinfo=SH), datetime(2027, 1, 1, tzinfo=SH)),
    ],
    ids=["day", "week", "week-53", "february", "december", "year"],
)
def test_period_bounds(unit: str, key: str, start: datetime, end: datetime) -> None:
    s, e = period_bounds(unit, key, SH)
    assert (s, e) == (start, end)
    assert s.tzinfo is SH and e.tzinfo is SH
    assert period_key(unit, s, SH) == key
    assert period_key(unit, e - timedelta(microseconds=1), SH) == key
    assert period_key(unit, e, SH) != key


@pytest.mark.parametrize(
    ("unit", "key", "prev"),
    [
        ("day", "2026-03-01", "2026-02-28"),
        ("week", "2027-W01", "2026-W53"),
        ("month", "2027-01", "2026-12"),
        ("year", "2027", "2026"),
    ],
    ids=["day", "week", "month", "year"],
)
def test_previous_and_next_key(unit: str, key: str, prev: str) -> None:
    assert previous_key(unit, key, SH) == prev
    assert next_key(unit, prev) == key


@pytest.mark.parametrize("unit", ["day", "week", "month", "year"])
def test_ordinals_are_consecutive(unit: str) -> None:
    at = datetime(2026, 11, 23, 12, tzinfo=SH)
    o = period_ordinal(unit, at, SH)
    start, end = ordinal_bounds(unit, o, SH)
    assert period_ordinal(unit, end, SH) == o + 1
    assert period_ordinal(unit, start - timedelta(seconds=1), SH) == o - 1
    assert key_ordinal(unit, period_key(unit, at, SH)) == o
    assert ordinal_key(unit, o + 1) == period_key(unit, end, SH)


def test_week_ordinal_across_iso_year() -> None:
    w53 = period_ordinal("week", datetime(2027, 1, 3, tzinfo=SH), SH)  # Sunday of 2026-W53
    w01 = period_ordinal("week", datetime(2027, 1, 4, tzinfo=SH), SH)  # Monday of 2027-W01
    assert w01 == w53 + 1


@pytest.mark.parametrize("key", ["2026-13", "2026-1", "x", "2026-11-31"], ids=str)
def test_bad_keys_rejected(key: str) -> None:
    unit = "day" if key.count("-") == 2 else "month"
    with pytest.raises(ValueError, match="invalid"):
        period_bounds(unit, key, SH)
