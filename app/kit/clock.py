"""The one source of "now", so tests and the engine agree on time."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo

# The program's time zone, as the app serving this request (or running this worker) has it: set per request by
# main.LaurelAPI and for the worker by the app's lifespan. Responses show datetimes in it; a bare date in a rule
# means that day in it. None outside an app (a script): UTC for showing, the environment's setting for rules.
program_zone: ContextVar[tzinfo | None] = ContextVar("program_zone", default=None)


def utcnow() -> datetime:
    return datetime.now(UTC)


def shown(value: datetime) -> str:
    """An instant as a response shows it: ISO 8601 in the program's time zone, whatever offset it was stored or
    sent with, so that every datetime of the API reads alike (a stored naive value is UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(program_zone.get() or UTC).isoformat()
