"""The one source of "now", so tests and the engine agree on time."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo

# The zone a response shows its datetimes in: the program's (set per request by the app, see main.LaurelAPI).
shown_zone: ContextVar[tzinfo] = ContextVar("shown_zone", default=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def shown(value: datetime) -> str:
    """An instant as a response shows it: ISO 8601 in the program's time zone, whatever offset it was stored or
    sent with, so that every datetime of the API reads alike (a stored naive value is UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(shown_zone.get()).isoformat()
