"""The criterion language: what must happen, how it is measured, over which window.

A criterion is admin-authored JSON stored with a badge (or challenge), e.g.::

    {"event": "visit",
     "where": [{"field": "store_id", "op": "exists"}],
     "aggregate": "count_distinct", "field": "store_id",
     "threshold": 3,
     "window": {"type": "calendar", "unit": "month"}}

Field names are a public contract. Validation happens here, once, so the evaluator can
trust its input; cross-field rules are written as field validators (not model validators)
so that an error's ``loc`` points at the offending part (e.g. ``("window",)`` or
``("where", 0, "value")``) and the admin UI can highlight it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.kit.clock import program_zone
from app.kit.schemas import Instant

#: Attribute path: snake_case segments, dots walk into nested objects ("items.sku").
FIELD_PATTERN = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$"
#: Event type: lowercase dotted name ("visit", "badge.awarded").
EVENT_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
MAX_IN_ITEMS = 100
MAX_CONDITIONS = 20

Aggregate = Literal["count", "sum", "count_distinct", "streak"]
WHOLE_AGGREGATES: frozenset[str] = frozenset({"count", "count_distinct", "streak"})


class Op(StrEnum):
    """Comparison operators usable in ``where`` conditions."""

    eq = "eq"
    ne = "ne"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    in_ = "in"
    not_in = "not_in"
    exists = "exists"
    contains = "contains"


NUMERIC_OPS: frozenset[Op] = frozenset({Op.gt, Op.gte, Op.lt, Op.lte})
LIST_OPS: frozenset[Op] = frozenset({Op.in_, Op.not_in})


# The largest magnitude the engine sums or aims for: beyond it a float (progress, leaderboard scores, JSON
# replies) loses whole units, and a sum of a few 1e308 amounts would overflow to infinity.
MAX_MAGNITUDE = 10**15


def is_number(v: object) -> bool:
    """A real, finite-or-not number; bools are excluded because True == 1 would surprise admins."""
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def is_scalar(v: object) -> bool:
    """String, number or bool: the values a condition may compare against."""
    return isinstance(v, str | bool) or is_number(v)


class Condition(BaseModel):
    """One ``where`` filter on an event attribute."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=64, pattern=FIELD_PATTERN)
    op: Op
    value: Any = Field(default=None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value_fits_op(cls, v: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op is None:  # op itself was invalid; that error is reported on its own
            return v
        # NaN and ±Infinity (1e400 parses as one) are no JSON: stored, they would come back as null and the
        # rule would no longer validate when loaded.
        if any(isinstance(x, float) and not math.isfinite(x) for x in (v if isinstance(v, list) else [v])):
            raise ValueError("values must be finite numbers (not NaN or Infinity)")
        if op == Op.exists:
            if v is not None and not isinstance(v, bool):
                raise ValueError("'exists' takes no value, or true/false")
        elif op in LIST_OPS:
            if not isinstance(v, list) or not v:
                raise ValueError(f"'{op.value}' needs a non-empty list of values")
            if len(v) > MAX_IN_ITEMS:
                raise ValueError(f"'{op.value}' accepts at most {MAX_IN_ITEMS} values")
            if not all(is_scalar(x) for x in v):
                raise ValueError(f"'{op.value}' values must be strings, numbers or booleans")
        elif op in NUMERIC_OPS:
            if not is_number(v) or (isinstance(v, float) and math.isnan(v)):
                raise ValueError(f"'{op.value}' needs a number")
        elif not is_scalar(v):  # eq, ne, contains
            raise ValueError(f"'{op.value}' needs a string, number or boolean")
        return v


class LifetimeWindow(BaseModel):
    """Everything ever recorded."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["lifetime"] = "lifetime"


class CalendarWindow(BaseModel):
    """The current calendar period in the program time zone (resets at each period start)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["calendar"] = "calendar"
    unit: Literal["day", "week", "month", "year"]


class RollingWindow(BaseModel):
    """The last ``days`` calendar days, today included (built from daily buckets)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["rolling"] = "rolling"
    days: int = Field(ge=1, le=366, strict=True)  # strict: true is not 1 day


class FixedWindow(BaseModel):
    """A campaign's fixed interval [start, end); events outside are ignored."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["fixed"] = "fixed"
    start: Instant
    end: Instant

    @model_validator(mode="before")
    @classmethod
    def _dates_are_program_days(cls, data: Any) -> Any:
        """A bare date ("2027-02-06") means that day in the program's time zone; an end date is inclusive."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, extra_day in (("start", 0), ("end", 1)):
            value = out.get(name)
            if isinstance(value, str) and len(value) == 10:
                try:
                    day = date.fromisoformat(value)
                except ValueError:
                    continue  # left for the datetime validator to explain
                tz = program_zone.get()  # the zone of the app serving this save
                if tz is None:
                    from app.config import get_settings  # outside an app: the environment's setting

                    tz = ZoneInfo(get_settings().timezone)
                with contextlib.suppress(OverflowError):  # 9999-12-31 has no next day: the range check refuses it
                    day += timedelta(days=extra_day)
                out[name] = datetime.combine(day, time.min, tzinfo=tz)
        return out

    @model_validator(mode="after")
    def _start_before_end(self) -> FixedWindow:
        if self.start >= self.end:
            raise ValueError("window start must be before end")
        return self


Window = Annotated[
    LifetimeWindow | CalendarWindow | RollingWindow | FixedWindow,
    Field(discriminator="type"),
]


class Criterion(BaseModel):
    """A measurable goal: events of one type, filtered, aggregated over a window, vs. a threshold."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=64, pattern=EVENT_PATTERN)
    where: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    aggregate: Aggregate = "count"
    field: str | None = Field(default=None, max_length=64, pattern=FIELD_PATTERN, validate_default=True)
    # Strict: a string or a boolean is not quietly read as a number. No upper bound here, because stored rules
    # are validated again on every load, and one a later bound refused would stop all ingestion.
    threshold: float = Field(gt=0, allow_inf_nan=False, strict=True)
    window: Window = Field(default_factory=LifetimeWindow, validate_default=True)
    grace: int = Field(default=0, ge=0, le=30, strict=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _grace_in_window(cls, data: Any) -> Any:
        """Accept a streak's `grace` inside its calendar window too (it reads naturally there)."""
        if isinstance(data, dict) and isinstance(data.get("window"), dict) and "grace" in data["window"]:
            window = dict(data["window"])
            grace = window.pop("grace")
            if "grace" in data and data["grace"] != grace:
                raise ValueError("grace is given twice with different values")
            data = {**data, "window": window, "grace": grace}
        return data

    @field_validator("field")
    @classmethod
    def _field_fits_aggregate(cls, v: str | None, info: ValidationInfo) -> str | None:
        agg = info.data.get("aggregate")
        if agg in ("sum", "count_distinct") and v is None:
            raise ValueError(f"aggregate '{agg}' requires 'field'")
        if agg in ("count", "streak") and v is not None:
            raise ValueError(f"aggregate '{agg}' does not take a 'field'")
        return v

    @field_validator("threshold")
    @classmethod
    def _whole_threshold(cls, v: float, info: ValidationInfo) -> float:
        agg = info.data.get("aggregate")
        if agg in WHOLE_AGGREGATES and not float(v).is_integer():
            raise ValueError(f"threshold for aggregate '{agg}' must be a whole number")
        return v

    @field_validator("window")
    @classmethod
    def _streak_window(cls, v: Any, info: ValidationInfo) -> Any:
        if info.data.get("aggregate") == "streak" and not (isinstance(v, CalendarWindow) and v.unit in ("day", "week")):
            raise ValueError("aggregate 'streak' requires a calendar window with unit 'day' or 'week'")
        return v

    @field_validator("grace")
    @classmethod
    def _grace_only_for_streak(cls, v: int, info: ValidationInfo) -> int:
        agg = info.data.get("aggregate")
        if v > 0 and agg is not None and agg != "streak":
            raise ValueError("'grace' is only allowed with aggregate 'streak'")
        return v


# The largest threshold a new rule may have: an event's amount is at most 1e15, and a goal of 1e300 could never
# be reached (and shows as a 301-digit target).
MAX_THRESHOLD = 1e15


class PostedCriterion(Criterion):
    """A criterion as an admin saves it: bounded where stored rules are not (see `threshold`)."""

    @field_validator("threshold")
    @classmethod
    def _reachable(cls, v: float) -> float:
        if v > MAX_THRESHOLD:
            raise ValueError("threshold must be at most 1e15")
        return v


# What a criterion compares its state with, not what the state is: a counter's count, sum, distinct values and
# active periods do not depend on them, so an operator raising "3 stores" to 4 (or giving a streak a grace day)
# keeps every member's progress.
NOT_STATE = frozenset({"threshold", "grace"})


def criterion_key(c: Criterion) -> str:
    """Stable identity of a criterion's counter state: criteria that count the same thing share state, whatever
    their thresholds (see NOT_STATE), and a fixed window is the same whatever offset its instants were written in."""
    dumped = c.model_dump(mode="json", exclude=set(NOT_STATE))
    if isinstance(c.window, FixedWindow):
        dumped["window"] = {**dumped["window"], "start": c.window.start.astimezone(UTC).isoformat(),
                            "end": c.window.end.astimezone(UTC).isoformat()}
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def as_posted(c: Criterion, exclude: set[str] | None = None) -> dict[str, Any]:
    """The stored and returned form of a criterion: what the admin sent, normalised — validated values, only
    the fields given (the defaults it was evaluated with are not spelled out), a whole threshold as an integer.

    Evaluation never reads this form directly: it is parsed back into a Criterion, so its defaults, and so
    `criterion_key`, are the same whether a field was sent or left out."""
    return tidy_numbers(c.model_dump(mode="json", exclude_unset=True, exclude=exclude))


def tidy_numbers(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored criterion's whole-number threshold as an integer (rows stored before `as_posted` hold 3.0)."""
    t = raw.get("threshold")
    if isinstance(t, float) and t.is_integer() and abs(t) < 2**53:
        return {**raw, "threshold": int(t)}
    return raw


def threshold_decimal(c: Criterion) -> Decimal:
    """The threshold as an exact Decimal ("3", not "3.0", for whole numbers)."""
    t = c.threshold
    return Decimal(int(t)) if float(t).is_integer() else Decimal(repr(t))


def criterion_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """JSON-safe list of validation problems ({loc, msg, type}) for API error bodies."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
