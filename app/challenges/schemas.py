"""Challenge bodies (admin) and the member's views of challenges and participations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from app.kit.schemas import FieldError, Instant, ProgramTime, ReadModel, WriteModel
from app.rules.criteria import Criterion, LifetimeWindow, PostedCriterion, as_posted, tidy_numbers

KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
MAX_STEPS = 20

Status = Literal["draft", "published", "archived"]


class StepCriterion(PostedCriterion):
    """A step's criterion: the engine's language without a window (the participation is the window)."""

    @field_validator("aggregate")
    @classmethod
    def _no_streak(cls, v: str) -> str:
        if v == "streak":
            raise ValueError("aggregate 'streak' is not available in challenge steps")
        return v

    @field_validator("window", mode="before")
    @classmethod
    def _no_window(cls, v: Any) -> Any:
        if not isinstance(v, LifetimeWindow):  # the default is an instance; anything posted is not
            raise ValueError("a step has no window of its own: only events between joining and the deadline count")
        return v


def criterion_json(c: Criterion) -> dict[str, Any]:
    """Stored/returned form of a step criterion: as posted, normalised (no window, no streak grace)."""
    return as_posted(c, exclude={"window", "grace"})


class StepIn(WriteModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    icon: str | None = Field(default=None, max_length=256)
    criterion: StepCriterion


class Eligibility(WriteModel):
    """Empty lists and nulls mean "everyone"; every rule given must hold."""

    tiers: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=50)
    segments: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=50)
    min_level: str | None = Field(default=None, max_length=64)
    required_badge: str | None = Field(default=None, max_length=64)

    @field_validator("min_level", "required_badge")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        """No requirement is null, not "" beside null."""
        return value.strip() or None if value is not None else None


class Schedule(WriteModel):
    type: Literal["one_time", "recurring"] = "one_time"
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    recurrence: Literal["weekly", "monthly"] | None = Field(default=None, validate_default=True)
    time_limit_days: int | None = Field(default=None, ge=1, le=366)  # true is not 1 day: WriteModel refuses it

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("starts_at")
        if v is not None and start is not None and v <= start:
            raise ValueError("ends_at must be after starts_at")
        return v

    @field_validator("recurrence")
    @classmethod
    def _recurrence_fits_type(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "recurring" and v is None:
            raise ValueError("a recurring challenge needs 'weekly' or 'monthly'")
        if kind == "one_time" and v is not None:
            raise ValueError("a one-time challenge has no recurrence")
        return v


class Rewards(WriteModel):
    # Booleans are refused by WriteModel; not strict, which would also refuse 5.0 (a JSON number like 5).
    points_per_step: int = Field(default=0, ge=0, le=1_000_000)
    bonus_points: int = Field(default=0, ge=0, le=1_000_000)
    badge: str | None = Field(default=None, max_length=64)
    voucher: str | None = Field(default=None, max_length=64)


class ChallengeFields(WriteModel):
    """The definition the admin web app edits (shared by POST and PUT)."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    icon: str | None = Field(default=None, max_length=256)
    steps: list[StepIn] = Field(min_length=1, max_length=MAX_STEPS)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    schedule: Schedule = Field(default_factory=Schedule)
    rewards: Rewards = Field(default_factory=Rewards)


class ChallengeCreate(ChallengeFields):
    key: str = Field(pattern=KEY_PATTERN)
    status: Literal["draft", "published"] = "draft"


class ChallengeReplace(ChallengeFields):
    """PUT body: the whole definition (key, if given, must match the path)."""

    key: str | None = Field(default=None, pattern=KEY_PATTERN)
    status: Literal["draft", "published", "archived"] | None = Field(
        default=None,
        description="Accepted as a GET returns it; a PUT does not change it (POST …/publish and …/archive do), "
        "so another status is a 422 `status_mismatch`",
    )


class ChallengeUpdate(WriteModel):
    """PATCH body: only the fields given change."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    icon: str | None = Field(default=None, max_length=256)
    steps: list[StepIn] | None = Field(default=None, min_length=1, max_length=MAX_STEPS)
    eligibility: Eligibility | None = None
    schedule: Schedule | None = None
    rewards: Rewards | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ChallengeUpdate:
        """A field sent as null is refused, not skipped: a challenge always has a title, steps, eligibility, a
        schedule and rewards (`{"eligibility": null}` answered 200 and kept a tier-only challenge tier-only).
        Only `icon` can be cleared with null."""
        for name in ("title", "description", "steps", "eligibility", "schedule", "rewards"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise FieldError(name, f"{name} cannot be null; leave it out to keep it")
        return self


class StepOut(BaseModel):
    title: str
    description: str
    icon: str | None
    criterion: dict[str, Any] = Field(description="As posted (normalised): fields left out are not filled in")

    @field_validator("criterion")
    @classmethod
    def _whole_threshold(cls, value: dict[str, Any]) -> dict[str, Any]:
        return tidy_numbers(value)


class EligibilityOut(BaseModel):
    tiers: list[str]
    segments: list[str]
    min_level: str | None
    required_badge: str | None


class ScheduleOut(BaseModel):
    type: str
    starts_at: ProgramTime | None
    ends_at: ProgramTime | None
    recurrence: str | None
    time_limit_days: int | None


class RewardsOut(BaseModel):
    points_per_step: int
    bonus_points: int
    badge: str | None
    voucher: str | None


class ChallengeOut(BaseModel):
    key: str
    title: str
    description: str
    icon: str | None
    steps: list[StepOut]
    eligibility: EligibilityOut
    schedule: ScheduleOut
    rewards: RewardsOut
    status: Status
    published_at: ProgramTime | None
    archived_at: ProgramTime | None
    created_at: ProgramTime
    updated_at: ProgramTime


class Reason(BaseModel):
    """An eligibility rule the member does not meet, as data and as display text."""

    rule: Literal["tier", "segment", "min_level", "required_badge"]
    required: Any
    text: str


class MemberChallenge(BaseModel):
    """A published challenge as the Mini Program shows it to the caller."""

    key: str
    title: str
    description: str
    icon: str | None
    steps: list[StepOut]
    schedule: ScheduleOut
    rewards: RewardsOut
    open: bool
    instance: str | None
    deadline: ProgramTime | None
    eligible: bool
    reasons: list[Reason]
    reason_text: str | None
    joined: bool
    participation_status: str | None


class StepProgress(BaseModel):
    step: int
    title: str
    description: str
    icon: str | None
    current: int | float
    target: int | float
    done: bool
    done_at: ProgramTime | None


class Participation(BaseModel):
    """One joined challenge instance with the member's progress."""

    key: str
    title: str
    description: str
    icon: str | None
    instance: str
    status: Literal["active", "completed", "expired"]
    joined_at: ProgramTime
    completed_at: ProgramTime | None
    deadline: ProgramTime | None
    time_left_seconds: int | None
    percent: int
    steps_done: int
    steps_total: int
    steps: list[StepProgress]
    rewards: RewardsOut


class StepStats(BaseModel):
    step: int
    title: str
    reached: int = Field(description="Participants who have done this step")
    rate: float = Field(description="reached / joined")
    drop_off: int = Field(description="Participants who got as far as the step before (joined, for the first step) "
                                      "but have not done this one")
    drop_off_rate: float = Field(description="drop_off / those who got as far as the step before")


class InstanceStats(BaseModel):
    instance: str
    current: bool
    joined: int
    active: int
    completed: int
    expired: int
    completion_rate: float
    median_time_to_complete_seconds: float | None
    steps: list[StepStats]


class VoucherHealth(ReadModel):
    key: str
    pending_count: int
    codes_available: int | None
    warning: str | None


class ChallengeStats(BaseModel):
    key: str
    joined: int
    active: int
    completed: int
    expired: int
    completion_rate: float
    median_time_to_complete_seconds: float | None
    steps: list[StepStats]
    instances: list[InstanceStats]
    voucher: VoucherHealth | None


ChallengeReplace.echoes = ChallengeOut  # a PUT takes back what a GET returned (see WriteModel.echoes)
