"""Webhook endpoint and delivery bodies."""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import AliasChoices, Field, StrictBool, computed_field, field_validator, model_validator

from app.kit.schemas import FieldError, ProgramTime, ReadModel, WriteModel

# Every kind the engine, challenges, vouchers and leaderboards write to the outbox.
KNOWN_EVENTS = (
    "badge.awarded",
    "badge.revoked",
    "level.reached",
    "points.credited",
    "challenge.step_completed",
    "challenge.completed",
    "challenge.expired",
    "challenge.published",
    "leaderboard.rank_improved",
    "voucher.issued",
)
DeliveryState = Literal["pending", "delivering", "delivered", "dead"]


def _check_url(value: str) -> str:
    """An address the dispatcher can actually send to: http(s), a host, a port in range, no whitespace."""
    if not value.startswith(("https://", "http://")):
        raise ValueError("url must be http(s)")
    if any(ch.isspace() for ch in value):
        raise ValueError("url must not contain whitespace")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"url is not a valid address: {exc}") from None
    if not url.host:
        raise ValueError("url has no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError("url port must be between 1 and 65535")
    return value


class WebhookCreate(WriteModel):
    url: str = Field(min_length=8, max_length=2048)
    events: list[str] = Field(
        min_length=1,
        max_length=50,
        validation_alias=AliasChoices("events", "event_kinds", "kinds"),
        description=f"Outbox kinds such as {', '.join(KNOWN_EVENTS)}, or '*' (also accepted as event_kinds)",
    )
    secret: str | None = Field(default=None, min_length=1, max_length=128, description="Generated when omitted")
    description: str = Field(default="", max_length=500)
    enabled: StrictBool = True

    _url = field_validator("url")(_check_url)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        for e in value:
            if e != "*" and e not in KNOWN_EVENTS:
                raise ValueError(f"{e!r} is not an event kind; use one of {', '.join(KNOWN_EVENTS)} or '*'")
        return sorted(set(value))


class WebhookReplace(WebhookCreate):
    """PUT: the whole definition; an omitted secret keeps the current one."""


class WebhookPatch(WriteModel):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    events: list[str] | None = Field(
        default=None, min_length=1, max_length=50, validation_alias=AliasChoices("events", "event_kinds", "kinds")
    )
    secret: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=500)
    enabled: StrictBool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else WebhookCreate._events(value)

    @model_validator(mode="after")
    def _no_nulls(self) -> WebhookPatch:
        """A field sent as null is refused, not skipped: an endpoint always has a URL, events, a secret, a state
        and a description (empty clears it), and a PATCH answering 200 while changing nothing would hide it."""
        for name in ("url", "events", "secret", "enabled", "description"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise FieldError(name, f"{name} cannot be null; leave it out to keep it")
        return self


class WebhookOut(ReadModel):
    id: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    secret_hint: str = Field(description="Last characters of the secret (at most four, at most a quarter of it)")
    created_at: ProgramTime
    updated_at: ProgramTime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once: verify X-Laurel-Signature with it")


class AttemptOut(ReadModel):
    attempted_at: ProgramTime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(ReadModel):
    delivery_id: str
    event: str
    status: DeliveryState
    attempts: int
    user_id: int | None
    next_attempt_at: ProgramTime
    retry_until: ProgramTime
    last_status_code: int | None
    last_error: str | None
    created_at: ProgramTime
    delivered_at: ProgramTime | None
    payload: dict[str, Any]
    history: list[AttemptOut] = Field(default_factory=list)

    @computed_field(description="The endpoint's last HTTP response code (the same as last_status_code)")
    def response_code(self) -> int | None:
        return self.last_status_code


class DeliveriesPage(ReadModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int


WebhookReplace.echoes = WebhookOut  # a PUT takes back what a GET returned (see WriteModel.echoes)
