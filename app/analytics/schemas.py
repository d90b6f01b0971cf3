"""What the analytics endpoints answer."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.kit.schemas import ProgramTime


class Overview(BaseModel):
    members: int
    active_members_7d: int = Field(description="Members with an event of their own in the last 7 days")
    active_members_30d: int
    members_with_badges: int
    awards: int
    badges_per_member: float = Field(description="Awards per member, all members counted")
    badges_per_earner: float = Field(description="Awards per member holding at least one")
    challenge_participants: int = Field(description="Members who ever joined a challenge")
    active_challenge_participants: int = Field(description="Members with a challenge still in progress")
    points_outstanding: int = Field(description="The sum of every member's balance")


class RetentionGroup(BaseModel):
    members: int
    retained: int
    retention_rate: float | None = Field(description="retained / members; null for an empty group")


class Retention(BaseModel):
    days: int
    badge: str | None = Field(description="The badge whose earners are compared; null for any badge")
    tier: str | None = Field(description="The member tier the cohort is limited to; null for every member")
    segment: str | None = Field(description="The segment tag the cohort is limited to; null for every member")
    cohort_from: ProgramTime
    cohort_until: ProgramTime
    earners: RetentionGroup
    others: RetentionGroup
    lift: float | None = Field(description="The earners' retention rate minus the others'; null if a group is empty")
    horizon_complete: bool = Field(
        description="Whether every member of the cohort has had the whole horizon to return; when not, the latest "
        "ones count as not retained for now"
    )
    definition: str


class BadgeReportRow(BaseModel):
    key: str
    name: str
    status: str
    visibility: str
    points: int
    holders: int
    awards: int
    rarity: float = Field(description="Share of members holding it")
    first_awarded_at: ProgramTime | None
    last_awarded_at: ProgramTime | None


class ChallengeReportRow(BaseModel):
    key: str
    title: str
    status: str
    schedule_type: str
    joined: int = Field(description="Participations, every instance of a recurring challenge counted")
    members: int
    active: int
    completed: int
    expired: int
    completion_rate: float = Field(description="completed / joined")


class TierReportRow(BaseModel):
    tier: str | None = Field(description="null: members without a tier")
    members: int
    active_members_30d: int
    members_with_badges: int
    awards: int
    badges_per_member: float
    challenge_participants: int
