"""Leaderboard bodies: the admin definition (field names are the admin web app's contract) and member views."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from app.kit.schemas import ProgramTime, ReadModel, WriteModel
from app.rules.criteria import EVENT_PATTERN, FIELD_PATTERN, MAX_CONDITIONS, Condition

MetricType = Literal["sum", "count", "badges", "points"]
PeriodName = Literal["daily", "weekly", "monthly", "all_time"]
Privacy = Literal["public", "anonymous"]
Status = Literal["draft", "active", "archived"]
KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
BUILTIN_DIMENSIONS = frozenset({"city", "friends"})
MAX_DIMENSIONS = 8
# As long as an event field a metric names may be; a view ("<name>:<value>", at most 160 characters) keeps room for
# the value. A much longer name could hold no view at all.
MAX_DIMENSION_NAME = 64


class Metric(BaseModel):
    """What a board ranks: `sum` of an event field, `count` of events, `badges` earned, or `points` credited."""

    model_config = ConfigDict(extra="forbid")

    type: MetricType
    event: str | None = Field(default=None, max_length=64, pattern=EVENT_PATTERN)
    field: str | None = Field(default=None, max_length=64, pattern=FIELD_PATTERN)
    where: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)

    @model_validator(mode="after")
    def _fits_type(self) -> Metric:
        if self.type in ("sum", "count") and self.event is None:
            raise ValueError(f"metric '{self.type}' needs 'event'")
        if self.type == "sum" and self.field is None:
            raise ValueError("metric 'sum' needs 'field' (the numeric event attribute to add up)")
        if self.type != "sum" and self.field is not None:
            raise ValueError(f"metric '{self.type}' does not take 'field'")
        if self.type == "badges" and self.event not in (None, "badge.awarded"):
            raise ValueError("metric 'badges' counts badge.awarded events; leave 'event' out")
        if self.type == "points" and self.event is not None:
            raise ValueError("metric 'points' counts points credits; leave 'event' out")
        return self


class Display(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nickname: StrictBool = True
    avatar: StrictBool = True
    tier: StrictBool = False


# Query parameters of the member and admin views that are not views: a dimension of that name could never be
# selected.
VIEW_QUERY_PARAMETERS = frozenset({"period", "scope", "limit", "offset", "bins"})


def _check_dimensions(value: list[str]) -> list[str]:
    seen: list[str] = []
    for d in value:
        if len(d) > MAX_DIMENSION_NAME:
            raise ValueError(f"dimension names are at most {MAX_DIMENSION_NAME} characters")
        if d not in BUILTIN_DIMENSIONS and not re.match(FIELD_PATTERN, d):
            raise ValueError(f"dimension {d!r} is not 'city', 'friends' or an event attribute name")
        if d in VIEW_QUERY_PARAMETERS:
            raise ValueError(f"dimension {d!r} is a query parameter of the leaderboard view; name it otherwise")
        if d in seen:
            raise ValueError(f"dimension {d!r} is listed twice")
        seen.append(d)
    return seen


class LeaderboardCreate(WriteModel):
    key: str = Field(pattern=KEY_PATTERN)
    title: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    icon: str | None = Field(default=None, max_length=256)
    metric: Metric
    period: PeriodName
    dimensions: list[str] = Field(default_factory=list, max_length=MAX_DIMENSIONS)
    display: Display = Field(default_factory=Display)
    privacy: Privacy = "public"
    min_group_size: int = Field(default=5, ge=1, le=10_000)
    status: Status = Field(default="active", description="Left out: `active` (members see the board at once)")

    _dims = field_validator("dimensions")(_check_dimensions)


class LeaderboardReplace(LeaderboardCreate):
    """PUT body: the whole definition; `key` may be left out (the path names the board)."""

    key: str | None = Field(default=None, pattern=KEY_PATTERN)  # type: ignore[assignment]
    status: Status | None = Field(  # type: ignore[assignment]
        default=None, description="Left out: the board keeps its status"
    )


class LeaderboardUpdate(WriteModel):
    """PATCH body: only the fields sent change."""

    title: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    icon: str | None = Field(default=None, max_length=256)
    metric: Metric | None = None
    period: PeriodName | None = None
    dimensions: list[str] | None = Field(default=None, max_length=MAX_DIMENSIONS)
    display: Display | None = None
    privacy: Privacy | None = None
    min_group_size: int | None = Field(default=None, ge=1, le=10_000)
    status: Status | None = None

    _dims = field_validator("dimensions")(lambda v: None if v is None else _check_dimensions(v))


class LeaderboardOut(ReadModel):
    key: str
    title: str
    description: str
    icon: str | None
    metric: Metric
    period: PeriodName
    dimensions: list[str]
    display: Display
    privacy: Privacy
    min_group_size: int
    status: Status
    current_period: str
    created_at: ProgramTime
    updated_at: ProgramTime


class BoardSummary(BaseModel):
    """A board as members see it in the list."""

    key: str
    title: str
    description: str
    icon: str | None
    metric: MetricType
    period: PeriodName
    current_period: str
    period_start: ProgramTime | None
    period_end: ProgramTime | None
    dimensions: list[str]
    privacy: Privacy


class Me(BaseModel):
    rank: int
    score: int | float
    above: list[dict[str, Any]]
    below: list[dict[str, Any]]


class BoardView(BaseModel):
    """One page of a board. Entries carry `nickname`, `avatar_url` and `tier` only when the board shows them."""

    board: str
    title: str
    period: str
    period_start: ProgramTime | None
    period_end: ProgramTime | None
    filter: dict[str, str]
    entries: list[dict[str, Any]]
    me: Me | None
    total: int
    limit: int
    offset: int


class Preferences(BaseModel):
    leaderboard_opt_out: bool = False


class PreferencesIn(WriteModel):
    """`leaderboard_opt_out` (also read as `opt_out`, `leaderboards_opt_out` or `hide_from_leaderboards`, the
    names a Mini Program is likely to use): out of every public board, still seeing one's own rank."""

    leaderboard_opt_out: StrictBool = Field(
        validation_alias=AliasChoices(
            "leaderboard_opt_out", "leaderboards_opt_out", "opt_out", "hide_from_leaderboards"
        )
    )


class PeriodStat(BaseModel):
    period: str
    period_start: ProgramTime | None
    period_end: ProgramTime | None
    participants: int


class Bin(BaseModel):
    low: int | float
    high: int | float
    count: int


class Distribution(BaseModel):
    board: str
    period: str
    filter: dict[str, str] = Field(default_factory=dict, description="The view counted: {} for the whole board")
    participants: int
    min: int | float | None
    max: int | float | None
    bins: list[Bin]


class AdminEntry(BaseModel):
    rank: int
    user_id: str | None
    nickname: str | None
    city: str | None
    score: int | float
    reached_at: ProgramTime


class AdminTop(BaseModel):
    board: str
    period: str
    filter: dict[str, str] = Field(default_factory=dict, description="The view ranked: {} for the whole board")
    total: int
    entries: list[AdminEntry]


LeaderboardReplace.echoes = LeaderboardOut  # a PUT takes back what a GET returned (see WriteModel.echoes)
