"""Imports the packages that register engine listeners (challenges, leaderboards)."""

from app.challenges import listeners as _challenges  # noqa: F401
from app.leaderboards import listeners as _leaderboards  # noqa: F401
