"""API-key scopes. `admin` implies every other scope."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    admin = "admin"
    events_write = "events:write"
    users_write = "users:write"
    analytics_read = "analytics:read"


ALL_SCOPES = frozenset(s.value for s in Scope)
