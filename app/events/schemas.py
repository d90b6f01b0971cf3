"""Event bodies and ingestion results."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.kit.clock import utcnow
from app.kit.schemas import Instant, ProgramTime, ReadModel, WriteModel
from app.rules.criteria import EVENT_PATTERN, MAX_MAGNITUDE
from app.users.schemas import EXTERNAL_ID_PATTERN

MAX_ATTRIBUTES_BYTES = 4096
MAX_ATTRIBUTES_DEPTH = 4
MAX_FUTURE = timedelta(minutes=5)
RESERVED_TYPES = frozenset({"badge.awarded", "level.reached"})
RESERVED_SOURCE = "laurel"  # the source of the award and level events Laurel records itself


def _depth(value: Any, level: int = 0, cap: int = MAX_ATTRIBUTES_DEPTH + 1) -> int:
    """Nesting depth, counted no further than `cap`: a hostile body nested thousands deep costs no stack."""
    if level >= cap:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1, cap) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1, cap) for v in value), default=level + 1)
    return level


class EventAttributes(BaseModel):
    """Free-form attributes; the few with a meaning to the engine are typed so bad values name themselves."""

    model_config = ConfigDict(extra="allow")

    amount: int | float | None = Field(default=None, description="Numeric; negative for refunds")

    @field_validator("amount", mode="before")
    @classmethod
    def _numeric_amount(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):  # NaN or ±Infinity
                raise ValueError("amount must be a finite number")
            if abs(value) > MAX_MAGNITUDE:
                raise ValueError(f"amount must be between -{MAX_MAGNITUDE:.0e} and {MAX_MAGNITUDE:.0e}")
            return value
        raise ValueError("amount must be a number")

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # Depth first: encoding a value nested thousands deep would exhaust the stack.
        flat = not any(isinstance(v, dict | list) for v in data.values())  # the usual case, no walk needed
        if not flat and _depth(data) > MAX_ATTRIBUTES_DEPTH:
            raise ValueError(f"attributes are nested more than {MAX_ATTRIBUTES_DEPTH} levels deep")
        try:
            # NaN and ±Infinity are not JSON (PostgreSQL's jsonb refuses them): refused here, named, up front.
            size = len(json.dumps(data, ensure_ascii=False, default=str, allow_nan=False).encode())
        except ValueError as exc:
            raise ValueError("attributes must not hold NaN or Infinity") from exc
        if size > MAX_ATTRIBUTES_BYTES:
            raise ValueError(f"attributes are {size} bytes; the limit is {MAX_ATTRIBUTES_BYTES}")
        return data

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


RESERVED_ID_PREFIX = "laurel:"


class EventIn(WriteModel):
    id: str = Field(min_length=1, max_length=128, description="The integrator's idempotency key")
    user_id: str = Field(min_length=1, max_length=128, pattern=EXTERNAL_ID_PATTERN, description="Member external_id")
    type: str = Field(min_length=1, max_length=64, pattern=EVENT_PATTERN, description="Dotted lower-case name")
    occurred_at: Instant = Field(description="ISO 8601 with an offset; at most 5 minutes in the future")
    source: str = Field(default="api", min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_.\-]*$",
                        description="The platform (pos, crm, miniprogram, …); any case, stored lower-cased")
    attributes: EventAttributes = Field(default_factory=EventAttributes)

    @field_validator("source", mode="before")
    @classmethod
    def _lower_source(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("source")
    @classmethod
    def _not_laurel(cls, value: str) -> str:
        # Laurel's own events are told apart by this source (history, analytics): a posted one would pass for one.
        if value == RESERVED_SOURCE:
            raise ValueError(f"'{RESERVED_SOURCE}' is the source of the events Laurel records itself")
        return value

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        if isinstance(data, dict | BaseModel):
            return data
        raise ValueError(f"an event must be a JSON object, not {_json_kind(data)}")

    @field_validator("id")
    @classmethod
    def _not_laurels(cls, value: str) -> str:
        # The award and level events Laurel records have ids "laurel:…"; a posted one could take theirs.
        if value.startswith(RESERVED_ID_PREFIX):
            raise ValueError(f"ids starting with '{RESERVED_ID_PREFIX}' are reserved for events Laurel records")
        return value

    @field_validator("type")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_TYPES:
            raise ValueError(f"'{value}' is recorded by Laurel itself and cannot be posted")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _not_future(cls, value: datetime) -> datetime:
        if value - utcnow() > MAX_FUTURE:
            raise ValueError("occurred_at is more than 5 minutes in the future")
        return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


MAX_BATCH = 1000


def _object_or_array(schema: dict[str, Any]) -> None:
    """Document both accepted shapes: `{"events": [...]}` and the bare array."""
    obj = {k: schema.pop(k) for k in ("type", "properties", "required", "additionalProperties") if k in schema}
    obj["properties"]["events"]["items"] = {"type": "object"}
    schema["anyOf"] = [
        obj,
        {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": MAX_BATCH,
         "description": "The events as a bare JSON array"},
    ]


class BatchIn(BaseModel):
    """`{"events": [...]}` or the bare array of events.

    Items are validated one by one (as EventIn), so a bad item — one that is not even a JSON object
    included — is reported on its own and the rest go ahead. Only the batch itself (not a list, empty,
    more than 1,000 items) is refused as a whole."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_object_or_array)

    events: list[Any] = Field(min_length=1, max_length=MAX_BATCH)

    @model_validator(mode="before")
    @classmethod
    def _bare_array(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"events": data}
        if isinstance(data, dict | BaseModel):
            return data
        raise ValueError(f'the body must be {{"events": [...]}} or a JSON array of events, not {_json_kind(data)}')


class IngestResult(BaseModel):
    id: str
    event_id: int
    user_id: str
    status: Literal["accepted", "duplicate"]
    duplicate: bool
    points_credited: int = 0
    badges_awarded: list[dict[str, Any]] = []
    levels_reached: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    challenges: list[dict[str, Any]] = []


class BatchItemResult(BaseModel):
    index: int
    id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    result: IngestResult | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItemResult]


class EventOut(ReadModel):
    id: str = Field(validation_alias="idempotency_key")
    event_id: int = Field(validation_alias="id")
    type: str
    source: str
    occurred_at: ProgramTime
    received_at: ProgramTime
    attributes: dict[str, Any]
    outcome: dict[str, Any] | None = Field(default=None, description="What the event caused (null: nothing)")
