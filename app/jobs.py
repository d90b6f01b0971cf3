"""Imports every module that registers scheduled jobs."""

from app.challenges import tasks as _challenges_tasks  # noqa: F401
from app.notifications import tasks as _notifications_tasks  # noqa: F401
from app.vouchers import tasks as _vouchers_tasks  # noqa: F401
