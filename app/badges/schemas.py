"""Badge bodies (admin web app contract) and the member's view."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, field_validator, model_validator

from app.kit.schemas import FieldError, Instant, ProgramTime, ReadModel, Reason, WriteModel
from app.rules.criteria import PostedCriterion, tidy_numbers

BADGE_KEY = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Visibility = Literal["public", "invite_only", "seasonal"]
Status = Literal["draft", "active", "archived"]


class Translation(WriteModel):
    name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    how_to_earn: str | None = Field(default=None, max_length=500)


class BadgeFields(WriteModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    how_to_earn: str = Field(default="", max_length=500)
    icon: str | None = Field(default=None, max_length=256)
    criteria: list[PostedCriterion] = Field(default_factory=list, max_length=10)
    points: int = Field(default=0, ge=0, le=1_000_000)
    visibility: Visibility = "public"
    available_from: Instant | None = None
    available_until: Instant | None = None
    repeatable: StrictBool = False
    status: Status = Field(default="active", description="Left out: `active` (awarded from now on)")
    translations: dict[Literal["zh-CN", "en"], Translation] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> BadgeFields:
        if self.visibility != "invite_only" and not self.criteria:
            raise FieldError("criteria", "at least one criterion is required unless visibility is invite_only")
        if self.visibility == "seasonal":
            if self.available_from is None or self.available_until is None:
                missing = "available_from" if self.available_from is None else "available_until"
                raise FieldError(missing, "seasonal badges need available_from and available_until")
            if self.available_from >= self.available_until:
                raise FieldError("available_until", "available_from must be before available_until")
        else:
            # A season on a public or invite-only badge would be shown but never applied.
            for name in ("available_from", "available_until"):
                if getattr(self, name) is not None:
                    raise FieldError(name, f"{name} applies to seasonal badges only (visibility 'seasonal')")
        return self


class BadgeCreate(BadgeFields):
    key: str = Field(pattern=BADGE_KEY)


class BadgeUpdate(BadgeFields):
    """Full replacement (PUT); `key` may be repeated but not changed."""

    key: str | None = Field(default=None, pattern=BADGE_KEY)
    status: Status | None = Field(  # type: ignore[assignment]
        default=None, description="Left out: the badge keeps its status"
    )


class BadgePatch(WriteModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    how_to_earn: str | None = Field(default=None, max_length=500)
    icon: str | None = Field(default=None, max_length=256)
    criteria: list[PostedCriterion] | None = Field(default=None, max_length=10)
    points: int | None = Field(default=None, ge=0, le=1_000_000)
    visibility: Visibility | None = None
    available_from: Instant | None = None
    available_until: Instant | None = None
    repeatable: StrictBool | None = None
    status: Status | None = None
    translations: dict[Literal["zh-CN", "en"], Translation] | None = None


class BadgeAdmin(ReadModel):
    id: int
    key: str
    name: str
    description: str
    how_to_earn: str
    icon: str | None
    icon_url: str | None = None
    criteria: list[dict[str, Any]] = Field(description="As posted (normalised): fields left out are not filled in")
    points: int
    visibility: str
    available_from: ProgramTime | None
    available_until: ProgramTime | None
    repeatable: bool
    status: str
    translations: dict[str, Any]
    activated_at: ProgramTime | None
    created_at: ProgramTime
    updated_at: ProgramTime

    @field_validator("criteria")
    @classmethod
    def _whole_thresholds(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [tidy_numbers(c) for c in value]


class ProgressOut(ReadModel):
    current: int | float  # whole numbers stay integers, as in an event's reply and a challenge step's progress
    target: int | float
    percent: float
    window_start: ProgramTime | None
    window_end: ProgramTime | None
    text: str


class MemberBadge(ReadModel):
    key: str
    name: str
    description: str
    how_to_earn: str
    icon: str | None
    icon_url: str | None
    icon_alt: str
    visibility: str
    repeatable: bool
    points: int
    earned: bool
    earned_at: ProgramTime | None
    times_earned: int
    progress: ProgressOut | None
    criteria_progress: list[ProgressOut] = []
    rarity: float = Field(description="Share of members who hold it (0..1)")
    rarity_percent: float
    available_from: ProgramTime | None = None
    available_until: ProgramTime | None = None
    available_now: bool = True


class ShareOut(ReadModel):
    title: str
    path: str
    image_url: str | None
    query: str
    timeline: dict[str, Any]


class GrantIn(WriteModel):
    reason: Reason = Field(min_length=1, max_length=500)


class RevokeIn(GrantIn):
    reset_progress: StrictBool = Field(
        default=False,
        description="Also clear the member's progress toward the badge, so only new activity can earn it again "
        "(by default the counters stay, and the next matching event can re-award it)",
    )


class AwardOut(ReadModel):
    award_id: int
    badge: str
    user_id: str | None
    awarded_at: ProgramTime
    source: str
    points_credited: int
    levels_reached: list[dict[str, Any]] = []


class BadgeStats(ReadModel):
    key: str
    holders: int
    awards: int
    members: int
    rarity: float
    first_awarded_at: ProgramTime | None
    last_awarded_at: ProgramTime | None
    awards_per_day: list[dict[str, Any]]


class AwardEvidence(ReadModel):
    award_id: int
    badge: str
    awarded_at: ProgramTime
    source: str
    event_id: int | None
    evidence: dict[str, Any]


class SimulationIn(WriteModel):
    """A badge rule to try against history before it goes live (nothing is stored or awarded)."""

    criteria: list[PostedCriterion] = Field(min_length=1, max_length=10)
    points: int = Field(default=0, ge=0, le=1_000_000, strict=True)
    repeatable: StrictBool = False
    available_from: Instant | None = Field(default=None, description="A season: only events inside it count")
    available_until: Instant | None = None
    days: int = Field(
        default=90, ge=1, le=730, strict=True, description="How far back to replay: the events of the last N days"
    )
    compare_with: str | None = Field(
        default=None, pattern=BADGE_KEY, description="An existing badge: how many simulated earners already hold it"
    )

    @model_validator(mode="after")
    def _season(self) -> SimulationIn:
        if (self.available_from is None) != (self.available_until is None):
            missing = "available_from" if self.available_from is None else "available_until"
            raise FieldError(missing, "a season needs both available_from and available_until")
        if self.available_from and self.available_until and self.available_from >= self.available_until:
            raise FieldError("available_until", "available_from must be before available_until")
        return self


class SimulationOut(BaseModel):
    since: ProgramTime = Field(description="Replayed from here to now, counters starting empty")
    until: ProgramTime
    events_scanned: int
    members_scanned: int = Field(description="Members with at least one event of the criteria's types")
    members_would_earn: int
    share_of_members: float = Field(description="members_would_earn / every member of the program")
    awards: int = Field(description="Awards the rule would have made (more than members for a repeatable badge)")
    points_budget: int = Field(description="awards × points")
    already_holding: int | None = Field(description="Of those who would earn it, how many hold `compare_with`")
    awards_per_day: list[dict[str, Any]] = Field(description="{date, awards} by the day (program time) of the award")
    truncated: bool = Field(
        description="The replay stopped at `event_limit` events (members in id order), or left out the events of a "
        "member beyond `member_event_limit`: the figures are a lower bound"
    )
    event_limit: int
    member_event_limit: int


BadgeUpdate.echoes = BadgeAdmin  # a PUT takes back what a GET returned (see WriteModel.echoes)
