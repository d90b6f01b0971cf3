"""Extension points of an engine run, so challenges and leaderboards ride the same transaction.

Listeners are registered at import time by their packages (see app/plugins.py) and are called inside
the ingestion transaction, under the member's lock, for every event the run processes (the posted one
and the award events it causes) and for every points credit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.events.engine import EngineRun
    from app.events.record import CreditRecord, EventRecord

EventListener = Callable[["EngineRun", "EventRecord"], Awaitable[None]]
PointsListener = Callable[["EngineRun", "CreditRecord"], Awaitable[None]]

EVENT_LISTENERS: list[EventListener] = []
POINTS_LISTENERS: list[PointsListener] = []
# An award event taken back (a revoked badge): listeners undo what counting it did, where that can be undone.
WITHDRAW_LISTENERS: list[EventListener] = []


def on_event(fn: EventListener) -> EventListener:
    EVENT_LISTENERS.append(fn)
    return fn


def on_points(fn: PointsListener) -> PointsListener:
    POINTS_LISTENERS.append(fn)
    return fn


def on_withdraw(fn: EventListener) -> EventListener:
    WITHDRAW_LISTENERS.append(fn)
    return fn
