"""Base classes for request and response bodies."""

from __future__ import annotations

import gc
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from app.kit.clock import shown

NUL = "\x00"
# A NUL (PostgreSQL text cannot store one) or an unpaired UTF-16 surrogate: Python's JSON parser accepts "\ud800"
# alone, but such a string can be neither stored nor sent back as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _flaw(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "a NUL character (\\u0000)" if found.group() == NUL else "an unpaired surrogate (invalid Unicode)"


_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with unpaired surrogates replaced by U+FFFD, so a caller's odd input can be named in a UTF-8 reply."""
    return _SURROGATE.sub("\ufffd", text)


def unstorable_path(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where a string the database cannot store hides in decoded JSON, and what it holds, else None.

    Walked with a stack of its own, not recursion: a body nested thousands deep must be refused as bad
    input, not exhaust the interpreter's stack."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, str):
            flaw = _flaw(item)
            if flaw:
                return here or "value", flaw
        elif isinstance(item, dict):
            children: list[tuple[str, Any]] = []
            for key, sub in item.items():
                where = f"{here}.{key}" if here else str(key)
                flaw = _flaw(key) if isinstance(key, str) else None
                if flaw:
                    return where, flaw
                children.append((where, sub))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{here}.{i}" if here else str(i), sub) for i, sub in enumerate(item)]))
    return None


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=str)  # built once, not per call


def _surely_storable(data: Any) -> bool:
    """A quick check in C, for the common case: the body encodes as JSON with no NUL escape and no lone
    surrogate in the text. Anything else (a hit, which may be a false one such as an escaped backslash before
    "u0000", a value nested too deep, a key JSON cannot hold) goes to the walk, which names the place.

    The cycle collector is paused while the encoder recurses: a body nested near the recursion limit would
    otherwise let a collection run unrelated finalizers at that depth, where they fail with RecursionError."""
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        text = _ENCODER.encode(data)
    except (RecursionError, TypeError, ValueError):
        return False
    finally:
        if collecting:
            gc.enable()
    return "\\u0000" not in text and (text.isascii() or _SURROGATE.search(text) is None)


class FieldError(ValueError):
    """A cross-field check's error, naming the field it is about: a model validator's own location is the
    whole body, and the admin web app highlights the field an error names (see `validation_details`)."""

    def __init__(self, field: str | tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc: tuple[str | int, ...] = tuple(field.split(".")) if isinstance(field, str) else field


def _members(annotation: Any) -> tuple[Any, ...]:
    """A union's members (`int | None` → int, None), an Annotated type's own type, or the type itself."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if isinstance(annotation, UnionType) or get_origin(annotation) is Union:
        return tuple(m for arg in get_args(annotation) for m in _members(arg))
    return (annotation,)


def _numeric_only(annotation: Any) -> bool:
    """Whether a field's type takes numbers (int, float, Decimal) and not booleans."""
    members = _members(annotation)
    return bool(members) and bool not in members and any(
        isinstance(m, type) and issubclass(m, int | float | Decimal) for m in members
    )


def _numeric_items(annotation: Any) -> bool:
    """Whether a field is a list of numbers only (`list[int]`, possibly optional)."""
    return any(get_origin(m) is list and _numeric_only(get_args(m)[0]) for m in _members(annotation) if get_args(m))


_NUMERIC_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _numeric_fields(model: type[BaseModel]) -> tuple[tuple[str, bool], ...]:
    """A model's fields that take numbers, as (key in the body, is a list of them); worked out once per model (an
    event is validated thousands of times a second, and has none)."""
    found = _NUMERIC_FIELDS.get(model)
    if found is None:
        found = _NUMERIC_FIELDS[model] = tuple(
            (info.alias or name, not _numeric_only(info.annotation))
            for name, info in model.model_fields.items()
            if _numeric_only(info.annotation) or _numeric_items(info.annotation)
        )
    return found


class WriteModel(BaseModel):
    """Request bodies: unknown fields are refused so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)

    # The resource a PUT body replaces, as its GET returns it: the fields that only the server sets there (ids,
    # timestamps, counts) are accepted and ignored, so an admin app can PUT back the object it fetched and edited.
    # Anything else unknown is still refused.
    echoes: ClassVar[type[BaseModel] | None] = None

    @model_validator(mode="before")
    @classmethod
    def _ignore_echoed(cls, data: Any) -> Any:
        if cls.echoes is None or not isinstance(data, dict):
            return data
        server_set = cls.echoes.model_fields.keys() - cls.model_fields.keys()
        if server_set.isdisjoint(data):
            return data
        return {k: v for k, v in data.items() if k not in server_set}

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """`true` where a number belongs is a mistake, not 1: Pydantic's lax mode would store it as 1."""
        if not isinstance(data, dict):
            return data
        for key, items in _numeric_fields(cls):
            value = data.get(key)
            listed = items and isinstance(value, list) and any(isinstance(v, bool) for v in value)
            if isinstance(value, bool) or listed:
                raise FieldError(key, "Input should be a number, not a boolean")
        return data

    @model_validator(mode="before")
    @classmethod
    def _storable_strings(cls, data: Any) -> Any:
        if _surely_storable(data):
            return data
        found = unstorable_path(data)
        if found:
            where, flaw = found
            raise FieldError(where, f"{printable(where)} contains {flaw}, which is not allowed")
        return data


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("datetime is out of range (1970 to 2200)") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError("datetime is out of range (1970 to 2200)")
    return value


_EPOCH = re.compile(r"\s*[+-]?\d+(\.\d*)?([eE][+-]?\d+)?\s*")


def _not_epoch(value: Any) -> Any:
    """A Unix timestamp (number or numeric string) carries no offset: refused, not read as UTC."""
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and _EPOCH.fullmatch(value)
    ):
        raise ValueError("expected an ISO 8601 date-time with an offset (e.g. 2026-11-23T10:15:00+08:00), "
                         "not a number")
    return value


# Every datetime a caller sends: ISO 8601 with an offset, and within years the database and periods handle.
Instant = Annotated[AwareDatetime, BeforeValidator(_not_epoch), AfterValidator(_in_range)]

# Every datetime a response shows: in the program's time zone (kit.clock.shown), so that a deadline, a window's
# end and a creation time all read in one offset, the one the program's days and weeks are counted in.
ProgramTime = Annotated[
    datetime,
    PlainSerializer(shown, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _said(value: str) -> str:
    """Whitespace says nothing: an audited reason (the log's "why") must hold some text; it is kept trimmed."""
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


# A free-text reason that lands in the audit log or the ledger.
Reason = Annotated[str, AfterValidator(_said)]
